package mux

// Held returns how many bytes of stream data the session holds, unread.
func (s *Session) Held() int64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.held
}

// Tracked returns how many streams the session tracks (not finished), and
// how many of those the peer opened.
func (s *Session) Tracked() (all, peer int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.streams), s.peerStreams
}

// WriteControl is what yamux's writes reach.
func (s *Session) WriteControl(p []byte) (int, error) { return s.writeControl(p) }

// Window returns the receive window the stream keeps open.
func (s *Stream) Window() int64 {
	s.sess.mu.Lock()
	defer s.sess.mu.Unlock()
	return int64(s.target)
}
