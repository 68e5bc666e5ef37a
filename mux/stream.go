package mux

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"sync"
	"time"

	"github.com/hashicorp/yamux"

	wsplexv1 "github.com/wsplex/wsplex/proto/wsplex/v1"
)

// Stream is one ordered, flow-controlled byte stream of a Session. It is a
// net.Conn: Close ends it in both directions and unblocks pending calls,
// CloseWrite ends only the sending half (the peer reads io.EOF), and Reset
// ends it with a status that the peer sees. Every Stream must be closed.
// All methods are safe for concurrent use.
//
// How a stream ended is always visible to both ends: io.EOF after the
// peer's CloseWrite, a *ResetError after a reset (data sent before it is
// still delivered first), and an error matching ErrSessionClosed when the
// session went away.
//
// A Stream is kept small, since a server may hold many thousands of idle
// ones: what only some streams need (a context, a write deadline, a reset
// in progress) lives in a streamExtra made on first use.
type Stream struct {
	ys   *yamux.Stream // set, with sess, before Open or Accept returns it
	sess *Session

	mu          sync.Mutex
	reset       *ResetError
	cause       error        // why the stream ended, for Context
	x           *streamExtra // nil until needed
	closed      closeState
	sawEOF      bool
	writeClosed bool

	frame uint8 // localFIN, remoteFIN, peerOpened; guarded by frameConn.mu
	id    uint32
}

// closeState says whether Close was called and has finished.
type closeState uint8

const (
	notClosed closeState = iota
	closing              // Close is running; a second Close waits for it
	closed
)

// streamExtra holds the state of a Stream that only some streams need.
type streamExtra struct {
	ctx       context.Context // made on the first call to Context
	cancel    context.CancelCauseFunc
	wdl       time.Time     // the write deadline
	resetSent chan struct{} // closed once a local reset's frame is written
	closeDone chan struct{} // made by a Close that waits for another
}

// extra returns s.x, making it if needed. s.mu is held.
func (s *Stream) extra() *streamExtra {
	if s.x == nil {
		s.x = new(streamExtra)
	}
	return s.x
}

var _ net.Conn = (*Stream)(nil)

var past = time.Unix(1, 0)

// ID returns the yamux stream ID: odd for streams the client opened, even
// for the server's.
func (s *Stream) ID() uint32 { return s.id }

// Session returns the session the stream belongs to.
func (s *Stream) Session() *Session { return s.sess }

// Context returns a context that is cancelled when the stream is closed or
// reset by either side, or its session ends; context.Cause says which.
func (s *Stream) Context() context.Context {
	s.mu.Lock()
	defer s.mu.Unlock()
	x := s.extra()
	if x.ctx == nil {
		parent := s.sess.ctx
		if s.cause != nil {
			// The stream ended first: its cause must win over the
			// session's, should the session have ended since.
			parent = context.WithoutCancel(parent)
		}
		ctx, cancel := context.WithCancelCause(parent)
		if s.cause != nil {
			cancel(s.cause)
		}
		x.ctx, x.cancel = ctx, cancel
	}
	return x.ctx
}

// end records why the stream ended, once, and cancels its context if it
// was made. If the session ended first, that is why.
func (s *Stream) end(cause error) {
	s.mu.Lock()
	if s.cause != nil {
		s.mu.Unlock()
		return
	}
	if s.sess != nil && s.sess.ctx.Err() != nil {
		cause = context.Cause(s.sess.ctx)
	}
	s.cause = cause
	var cancel context.CancelCauseFunc
	if s.x != nil {
		cancel = s.x.cancel
	}
	s.mu.Unlock()
	if cancel != nil {
		cancel(cause)
	}
}

// LocalAddr returns the local address of the session's TCP connection.
func (s *Stream) LocalAddr() net.Addr { return s.sess.LocalAddr() }

// RemoteAddr returns the remote address of the session's TCP connection.
func (s *Stream) RemoteAddr() net.Addr { return s.sess.RemoteAddr() }

// Read reads from the stream. It returns io.EOF after the peer's CloseWrite
// (or Close), and the *ResetError after the peer's Reset once the data sent
// before it is read.
func (s *Stream) Read(p []byte) (int, error) {
	s.mu.Lock()
	switch {
	case s.closed != notClosed:
		s.mu.Unlock()
		return 0, s.opError("read", net.ErrClosed)
	case s.reset != nil && !s.reset.Remote:
		r := s.reset
		s.mu.Unlock()
		return 0, r
	}
	s.mu.Unlock()
	n, err := s.ys.Read(p)
	if err != nil {
		err = s.readError(err)
	}
	return n, err
}

func (s *Stream) readError(err error) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	switch {
	case s.closed != notClosed:
		return s.opError("read", net.ErrClosed)
	case s.reset != nil && !s.reset.Remote:
		return s.reset
	case err == io.EOF && !s.sess.fc.remoteFIN(s.id) && s.sess.ys.IsClosed():
		// yamux reads EOF on every stream when the session ends.
		return s.sess.closedError()
	case err == io.EOF:
		s.sawEOF = true
		if s.reset != nil && s.reset.Code != wsplexv1.Code_CODE_OK {
			return s.reset
		}
		return io.EOF
	}
	return s.sess.translate("read", err)
}

// Write writes to the stream, blocking while the peer's window is full.
func (s *Stream) Write(p []byte) (int, error) {
	s.mu.Lock()
	err := s.writable()
	s.mu.Unlock()
	if err != nil {
		return 0, err
	}
	n, err := s.ys.Write(p)
	if err != nil {
		s.mu.Lock()
		if werr := s.writable(); werr != nil {
			err = werr
		} else {
			err = s.sess.translate("write", err)
		}
		s.mu.Unlock()
	}
	return n, err
}

// writable says why a write cannot proceed, if it cannot. s.mu is held.
func (s *Stream) writable() error {
	switch {
	case s.closed != notClosed:
		return s.opError("write", net.ErrClosed)
	case s.reset != nil:
		return s.reset
	case s.writeClosed:
		return ErrWriteClosed
	case s.x != nil && !s.x.wdl.IsZero() && !time.Now().Before(s.x.wdl):
		return timeoutError{"write"}
	}
	return nil
}

// CloseWrite ends the sending half: the peer reads io.EOF once it has read
// everything written before. Reading goes on.
func (s *Stream) CloseWrite() error {
	s.mu.Lock()
	if s.writeClosed || s.closed != notClosed {
		s.mu.Unlock()
		return nil
	}
	s.writeClosed = true
	s.mu.Unlock()
	if err := s.ys.Close(); err != nil {
		return s.sess.translate("close", err)
	}
	return nil
}

// Reset ends the stream in both directions with a status. The peer's
// pending and later reads return a *ResetError carrying code and message
// once the data sent before it has been read; its writes fail at once and
// its Context is cancelled. Locally, pending and later reads and writes
// return the same *ResetError. Reset after Close or another Reset does
// nothing. The stream must still be closed.
func (s *Stream) Reset(code wsplexv1.Code, message string) error {
	r := &ResetError{Code: code, Message: message}
	s.mu.Lock()
	if s.closed != notClosed || (s.reset != nil && !s.reset.Remote) {
		s.mu.Unlock()
		return nil
	}
	s.reset = r
	resetSent := make(chan struct{})
	s.extra().resetSent = resetSent
	_ = s.ys.SetDeadline(past) // unblock our own pending calls
	s.mu.Unlock()
	err := s.sess.fc.writeReset(s.id, &wsplexv1.Status{Code: code, Message: message})
	close(resetSent)
	_ = s.ys.Close()
	s.end(r)
	if err != nil {
		return s.sess.translate("reset", err)
	}
	return nil
}

// Close ends the stream in both directions and releases it. Pending reads
// and writes return net.ErrClosed. If the peer may still be sending, it is
// told to stop (a reset with CODE_OK): its reads still end with io.EOF. Close
// is idempotent.
func (s *Stream) Close() error {
	s.mu.Lock()
	switch s.closed {
	case closing:
		// Another Close is running: return once it is done, as if this
		// one had done the work.
		x := s.extra()
		if x.closeDone == nil {
			x.closeDone = make(chan struct{})
		}
		done := x.closeDone
		s.mu.Unlock()
		<-done
		return nil
	case closed:
		s.mu.Unlock()
		return nil
	}
	s.closed = closing
	tellPeer := s.reset == nil && !s.sawEOF
	var resetSent chan struct{}
	if s.x != nil {
		resetSent = s.x.resetSent
	}
	_ = s.ys.SetDeadline(past)
	s.mu.Unlock()
	if tellPeer {
		_ = s.sess.fc.writeReset(s.id, &wsplexv1.Status{Code: wsplexv1.Code_CODE_OK})
	}
	if resetSent != nil {
		// A Reset on another goroutine unblocked a Write whose caller
		// now closes: yamux's FIN must not overtake the reset frame,
		// or the peer would read a clean end of truncated data.
		<-resetSent
	}
	_ = s.ys.Close()
	s.end(net.ErrClosed)
	s.sess.streamClosed(s)
	s.mu.Lock()
	s.closed = closed
	var done chan struct{}
	if s.x != nil {
		done = s.x.closeDone
	}
	s.mu.Unlock()
	if done != nil {
		close(done)
	}
	return nil
}

// Shrink releases the stream's receive buffer if everything received has
// been read. The buffer grows to fit the data that arrives and is kept for
// the next, which suits streams that keep receiving; call Shrink when a
// stream that received some data goes quiet, such as a subscription after
// its request. Package stream calls it after the open handshake.
func (s *Stream) Shrink() { s.ys.Shrink() }

// SetDeadline sets the read and write deadlines.
func (s *Stream) SetDeadline(t time.Time) error {
	s.SetReadDeadline(t)
	return s.SetWriteDeadline(t)
}

// SetReadDeadline sets the deadline for pending and future Reads; once it
// passes they fail with an error matching os.ErrDeadlineExceeded.
func (s *Stream) SetReadDeadline(t time.Time) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed == notClosed && (s.reset == nil || s.reset.Remote) {
		_ = s.ys.SetReadDeadline(t)
	}
	return nil
}

// SetWriteDeadline sets the deadline for pending and future Writes; once it
// passes they fail with an error matching os.ErrDeadlineExceeded.
func (s *Stream) SetWriteDeadline(t time.Time) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.x != nil || !t.IsZero() {
		s.extra().wdl = t
	}
	if s.closed == notClosed && s.reset == nil {
		_ = s.ys.SetWriteDeadline(t)
	}
	return nil
}

// peerReset records the peer's reset. It runs on yamux's receive goroutine
// and must not block.
func (s *Stream) peerReset(r *ResetError) {
	s.mu.Lock()
	if s.reset == nil {
		s.reset = r
	}
	if s.ys != nil { // else Open or Accept will, when it adopts the stream
		_ = s.ys.SetWriteDeadline(past) // our writes fail now
	}
	s.mu.Unlock()
	s.end(r)
}

func (s *Stream) opError(op string, err error) error {
	return &net.OpError{Op: op, Net: "wsplex", Source: s.LocalAddr(), Addr: s.RemoteAddr(), Err: err}
}

// translate maps yamux's errors to ours, so yamux stays out of our API.
func (s *Session) translate(op string, err error) error {
	if s.ys.IsClosed() {
		return s.closedError()
	}
	switch {
	case errors.Is(err, yamux.ErrTimeout):
		return timeoutError{op}
	case errors.Is(err, yamux.ErrConnectionReset):
		// yamux resets streams itself only when its accept backlog is full
		// or it is going away.
		return &ResetError{Code: wsplexv1.Code_CODE_UNAVAILABLE, Message: "stream refused by peer", Remote: true}
	case errors.Is(err, yamux.ErrStreamClosed):
		return ErrWriteClosed
	case errors.Is(err, yamux.ErrRemoteGoAway):
		return ErrGoAway
	case errors.Is(err, yamux.ErrSessionShutdown), errors.Is(err, net.ErrClosed):
		return s.closedError()
	}
	select {
	case <-s.done:
		return s.closedError()
	default:
	}
	return fmt.Errorf("wsplex/mux: %s: %s", op, err.Error())
}
