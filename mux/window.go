package mux

// A stream's receive window must cover what its peer sends in one round
// trip, or the peer waits for every Window Update. The round trip is not
// the network's alone: a browser reads a Window Update only when its page's
// thread gets to it, after what that thread was doing, so it can take
// milliseconds on loopback. The session therefore measures it, as HTTP/2
// implementations estimate the bandwidth-delay product: when a stream
// whose window can still grow is granted more, the session sends a Ping
// along and counts that stream's data until the answer comes; if at least
// half the stream's window arrived meanwhile, the window was what limited
// it, and it grows to twice what arrived, up to Options.WindowSize. Only
// streams that need Window Updates are measured, one at a time; a peer
// that never answers only loses the growth.

// rttSample is the measurement in progress. It is guarded by Session.mu.
type rttSample struct {
	st      *Stream // the stream measured; nil when no Ping is in flight
	value   uint32  // the Ping's value
	arrived uint32  // bytes st received since the Ping left
}

// sampleData counts n bytes of data that arrived on st. s.mu is held.
func (s *Session) sampleData(st *Stream, n uint32) {
	if r := &s.rtt; r.st == st {
		r.arrived += min(n, ^uint32(0)-r.arrived)
	}
}

// sampleWindow starts a measurement of st, which was just granted more
// window, unless one runs or st's window cannot grow. s.mu is held.
func (s *Session) sampleWindow(st *Stream) {
	r := &s.rtt
	if r.st != nil || st.target >= s.maxWindow || s.grown >= s.growLimit {
		return
	}
	r.value++
	if s.out.control(makeHeader(typePing, flagSYN, 0, r.value), nil) {
		r.st, r.arrived = st, 0
	}
}

// pingAnswered ends the measurement that the Ping with value started, and
// widens its stream's window if the window limited it. It ignores answers
// to Pings it did not send.
func (s *Session) pingAnswered(value uint32) {
	s.mu.Lock()
	defer s.mu.Unlock()
	r := &s.rtt
	st := r.st
	if st == nil || value != r.value {
		return
	}
	r.st = nil
	if !st.receiving() || r.arrived < st.target/2 {
		return
	}
	st.target = max(st.target, uint32(min(2*uint64(r.arrived), uint64(s.maxWindow))))
	st.grant()
}
