package mux

import (
	"context"
	"fmt"
	"io"
	"net"
	"os"
	"time"

	"github.com/hashicorp/yamux"

	"github.com/wsplex/wsplex"
	"github.com/wsplex/wsplex/internal/deadline"
	"github.com/wsplex/wsplex/internal/wire"
)

// Stream is one ordered, flow-controlled byte stream of a Session. It is a
// net.Conn: Close ends it in both directions and unblocks pending calls,
// CloseWrite ends only the sending half (the peer reads io.EOF), and Reset
// ends it with a status that the peer sees. Every Stream must be closed.
// All methods are safe for concurrent use; concurrent Writes do not
// interleave their bytes.
//
// How a stream ended is always visible to both ends: io.EOF after the
// peer's CloseWrite, a *wsplex.Error after a reset (data sent before it is
// still delivered first), wsplex.ErrPeerClosed on writes after the peer
// closed the stream without reading all of it, and an error matching
// ErrSessionClosed when the session went away.
//
// A Stream holds no buffer while it has nothing unread, and no channel or
// timer while nobody waits on it: a server may hold many thousands of idle
// ones.
type Stream struct {
	sess *Session
	ys   *yamux.Stream // set before Open or Accept returns the stream
	x    *streamExtra  // made on first use; guarded by sess.mu

	// The rest is guarded by sess.mu.
	buf recvBuffer

	// Receive window (SPEC.md §4.4): the peer may send allow more bytes;
	// allow plus what is buffered is the window open. held and grown are
	// what the stream counts in the session's held and grown.
	allow, target uint32 // target: the window to keep open; grows with use
	held, grown   uint32
	sendWindow    uint32 // bytes this side may still send

	id      uint32
	flags   streamFlags
	closing closeState
	hold    holdMode
}

// holdMode says whether a stream's frames wait in the session's queue,
// unsent, so that they leave together (see Hold).
type holdMode uint8

const (
	holdNone      holdMode = iota
	holdNextWrite          // until the end of the next Write: a new stream's SYN or ACK waits for its first data
	holdOn                 // until Flush
)

type streamFlags uint16

const (
	peerOpened  streamFlags = 1 << iota // the peer sent the SYN
	tracked                             // in Session.streams: not finished
	accepted                            // Accept returned it (peer streams)
	acked                               // yamux acknowledged it, or Accept returned it
	localFIN                            // this side sent its FIN
	remoteFIN                           // the peer sent its FIN
	rstIn                               // a yamux RST arrived: the stream is gone
	overflow                            // its data would have overflowed the session's window
	writeClosed                         // CloseWrite was called
	writing                             // a Write, Close or Reset holds the write turn
)

// closeState says whether Close was called and has finished.
type closeState uint8

const (
	notClosed closeState = iota
	closing              // Close is running; a second Close waits for it
	closed
)

// streamExtra holds what only some streams need: a stream that nobody
// waits on, that ended cleanly or not at all, has none.
type streamExtra struct {
	ctx       context.Context // made on the first call to Context
	cancel    context.CancelCauseFunc
	rdl, wdl  *deadline.Deadline
	rwait     chan struct{} // closed to wake readers; made by the first to wait
	wwait     chan struct{} // closed to wake writers and whoever waits for the write turn
	closeDone chan struct{} // closed when Close has finished

	localReset *wsplex.Error // the status this side ended the stream with
	owed       *wsplex.Error // a reset frame to send before this side's FIN
	peerReset  *wsplex.Error // the peer's reset; Code may be CodeOK
	cause      error         // why the stream ended, for Context
	demand     int           // bytes a Peek waits to have buffered
	peek       *[]byte       // the copy the last Peek returned, if it made one
}

func newStream(sess *Session, id uint32, flags streamFlags) *Stream {
	return &Stream{
		sess:       sess,
		id:         id,
		flags:      flags | tracked,
		allow:      initialWindow,
		target:     initialWindow,
		sendWindow: initialWindow,
		hold:       holdNextWrite,
	}
}

// localReset returns the status this side reset the stream with, or nil.
func (s *Stream) localReset() *wsplex.Error {
	if s.x == nil {
		return nil
	}
	return s.x.localReset
}

// peerReset returns the status the peer reset the stream with, or nil.
func (s *Stream) peerReset() *wsplex.Error {
	if s.x == nil {
		return nil
	}
	return s.x.peerReset
}

func (s *Stream) wakeReaders() {
	if s.x != nil {
		wake(&s.x.rwait)
	}
}

func (s *Stream) wakeWriters() {
	if s.x != nil {
		wake(&s.x.wwait)
	}
}

var _ net.Conn = (*Stream)(nil)

// extra returns s.x, making it if needed. sess.mu is held.
func (s *Stream) extra() *streamExtra {
	if s.x == nil {
		s.x = new(streamExtra)
	}
	return s.x
}

func (s *Stream) has(f streamFlags) bool { return s.flags&f != 0 }

// ID returns the yamux stream ID: odd for streams the client opened, even
// for the server's.
func (s *Stream) ID() uint32 { return s.id }

// Session returns the session the stream belongs to.
func (s *Stream) Session() *Session { return s.sess }

// LocalAddr returns the local address of the session's TCP connection.
func (s *Stream) LocalAddr() net.Addr { return s.sess.LocalAddr() }

// RemoteAddr returns the remote address of the session's TCP connection.
func (s *Stream) RemoteAddr() net.Addr { return s.sess.RemoteAddr() }

// Context returns a context that is cancelled when the stream is closed,
// reset by this side, reset by the peer with a status other than CodeOK,
// refused by yamux, or its session ends; context.Cause says which. The
// peer's Close (a CodeOK reset, SPEC.md §5) stops only this side's writes:
// the context lives on, so that a handler can read what the peer sent.
func (s *Stream) Context() context.Context {
	s.sess.mu.Lock()
	defer s.sess.mu.Unlock()
	x := s.extra()
	if x.ctx == nil {
		parent := s.sess.ctx
		if x.cause != nil {
			// The stream ended first: its cause must win over the
			// session's, should the session have ended since.
			parent = context.WithoutCancel(parent)
		}
		x.ctx, x.cancel = context.WithCancelCause(parent)
		if x.cause != nil {
			x.cancel(x.cause)
		}
	}
	return x.ctx
}

// end records why the stream ended, once, and returns the func that
// cancels its context, to be called without sess.mu. If the session ended
// first, that is why. sess.mu is held.
func (s *Stream) end(cause error) func() {
	x := s.extra()
	if x.cause != nil {
		return func() {}
	}
	if s.sess.ctx.Err() != nil {
		cause = context.Cause(s.sess.ctx)
	}
	x.cause = cause
	if x.cancel == nil {
		return func() {}
	}
	cancel := x.cancel
	return func() { cancel(cause) }
}

// wake closes *ch, waking whoever waits on it.
func wake(ch *chan struct{}) {
	if *ch != nil {
		close(*ch)
		*ch = nil
	}
}

// waitChan returns the channel that wakes the stream's readers, or its
// writers, making it if needed. sess.mu is held.
func (s *Stream) waitChan(readers bool) <-chan struct{} {
	x := s.extra()
	ch := &x.wwait
	if readers {
		ch = &x.rwait
	}
	if *ch == nil {
		*ch = make(chan struct{})
	}
	return *ch
}

// writeStop returns the channel that wakes a Write waiting for room in the
// send queue: made only when one has to wait, since most writes find room
// and a channel per write cost a quarter of a busy server's CPU. A reset or
// close that came before the channel existed shows in writeErr, so then
// the channel is closed already.
func (s *Stream) writeStop() <-chan struct{} {
	s.sess.mu.Lock()
	defer s.sess.mu.Unlock()
	if s.writeErr() != nil {
		return closedChan
	}
	return s.waitChan(false)
}

// closedChan is a closed channel.
var closedChan = func() chan struct{} {
	c := make(chan struct{})
	close(c)
	return c
}()

// wait blocks until the stream's readers (or writers) are woken, dl or
// extra is closed, or the session ends. sess.mu is held on entry and on
// return, but not while waiting.
func (s *Stream) wait(readers bool, dl, extra <-chan struct{}) {
	c := s.waitChan(readers)
	s.sess.mu.Unlock()
	select {
	case <-c:
	case <-dl:
	case <-extra:
	case <-s.sess.ys.CloseChan():
	}
	s.sess.mu.Lock()
}

func (s *Stream) readDeadline() <-chan struct{} {
	if s.x == nil {
		return nil
	}
	return s.x.rdl.Wait()
}

func (s *Stream) writeDeadline() <-chan struct{} {
	if s.x == nil {
		return nil
	}
	return s.x.wdl.Wait()
}

// discarding reports that data arriving for the stream is dropped: this
// side closed or reset it, or yamux reset it.
func (s *Stream) discarding() bool {
	return s.closing != notClosed || s.localReset() != nil || s.has(rstIn|overflow)
}

// receiving reports that the peer may still send data.
func (s *Stream) receiving() bool {
	return !s.discarding() && !s.has(remoteFIN) && s.peerReset() == nil
}

// account updates what the stream counts in the session: the memory its
// buffer holds, and the window it granted beyond initialWindow while the
// peer may still send. sess.mu is held.
func (s *Stream) account() {
	var grown uint32
	if open := s.open(); s.receiving() && open > initialWindow {
		grown = open - initialWindow
	}
	held := s.buf.mem
	s.sess.count(int64(held)-int64(s.held), int64(grown)-int64(s.grown))
	s.held, s.grown = held, grown
}

// open returns the window open to the peer: what it may still send, plus
// what it sent that is buffered. sess.mu is held.
func (s *Stream) open() uint32 { return s.allow + s.buf.n }

// grant sends the peer more window when the stream's reader has consumed
// half of it, or a Peek needs more than is open. The window to keep open
// starts at initialWindow and doubles, up to Options.WindowSize, whenever
// the peer nearly used it up, so that a bulk stream gets a large window
// and a quiet one keeps a small one; the window granted beyond
// initialWindow over all streams stays within the session's limit (see
// Session.grow). It reports false if a Peek's demand cannot be covered
// now. sess.mu is held.
func (s *Stream) grant() bool {
	if !s.receiving() {
		return true
	}
	demand := uint32(0)
	if s.x != nil {
		demand = uint32(s.x.demand)
	}
	open := s.open()
	need := max(s.target, demand)
	if open > need/2 && open >= demand {
		return true
	}
	sess := s.sess
	if s.allow < s.target/4 && s.target < sess.maxWindow {
		s.target = min(2*s.target, sess.maxWindow)
		need = max(s.target, demand)
	}
	need = uint32(min(int64(need), initialWindow+sess.growLimit-sess.grown+int64(s.grown)))
	if need > open {
		delta := need - open
		s.allow += delta
		s.account()
		sess.out.control(makeHeader(typeWindow, 0, s.id, delta), nil)
		sess.sampleWindow(s)
	}
	return s.open() >= demand
}

// Read reads from the stream. It returns io.EOF after the peer's CloseWrite
// or Close, and the peer's *wsplex.Error after its Reset, once the data
// sent before either is read.
func (s *Stream) Read(p []byte) (int, error) {
	sess := s.sess
	sess.mu.Lock()
	defer sess.mu.Unlock()
	for {
		if err := s.readErr(); err != nil {
			return 0, err
		}
		if s.buf.len() > 0 {
			s.dropPeek()
			n := s.buf.read(p)
			s.consumed()
			return n, nil
		}
		if err := s.readEnd(); err != nil {
			return 0, err
		}
		if len(p) == 0 {
			return 0, nil
		}
		if s.flushHeld() {
			continue // sess.mu was released: look again
		}
		s.wait(true, s.readDeadline(), nil)
	}
}

// Peek returns the next bytes without consuming them, waiting until at
// least n have arrived; it returns more when more are at hand in one piece.
// Discard consumes them. The bytes are valid until the next Read, Peek or
// Discard. If the stream ends first, Peek returns what there is and the
// error Read would return (io.EOF after a clean end). Peek
// widens the stream's receive window as needed for n bytes to arrive,
// waiting while the session cannot grant that much; n over 256 KiB plus
// half of Options.SessionWindow fails with CodeResourceExhausted. Peek is meant for
// framing layers, such as package stream's messages: a frame waits here,
// counted in the session's window, until it is whole.
func (s *Stream) Peek(n int) ([]byte, error) {
	sess := s.sess
	sess.mu.Lock()
	defer sess.mu.Unlock()
	if int64(n) > initialWindow+sess.growLimit {
		return nil, &wsplex.Error{Code: wsplex.CodeResourceExhausted,
			Message: fmt.Sprintf("wsplex/mux: cannot wait for %d bytes: over the session's receive window", n)}
	}
	s.dropPeek()
	defer func() {
		if s.x != nil {
			s.x.demand = 0
		}
	}()
	for {
		if err := s.readErr(); err != nil {
			return nil, err
		}
		if s.buf.len() >= n {
			return s.peekAt(n), nil
		}
		if err := s.readEnd(); err != nil {
			if s.buf.len() == 0 {
				return nil, err
			}
			return s.peekAt(s.buf.len()), err
		}
		s.extra().demand = n
		var freed <-chan struct{}
		if !s.grant() {
			freed = sess.windowFreed()
		}
		if s.flushHeld() {
			continue
		}
		s.wait(true, s.readDeadline(), freed)
	}
}

// peekAt returns at least the first n buffered bytes, contiguous: the rest
// of the first chunk if it holds them, else a copy of exactly n bytes,
// kept until the reader's next call. sess.mu is held.
func (s *Stream) peekAt(n int) []byte {
	if b := s.buf.first(); len(b) >= n {
		return b
	}
	x := s.extra()
	x.peek = getPeekBuf(n)
	*x.peek = s.buf.copyTo((*x.peek)[:0], n)
	return *x.peek
}

// dropPeek returns the copy the last Peek made, if any: the reader has
// moved on. sess.mu is held.
func (s *Stream) dropPeek() {
	if s.x != nil && s.x.peek != nil {
		putPeekBuf(s.x.peek)
		s.x.peek = nil
	}
}

// Discard consumes up to n buffered bytes without waiting and returns how
// many it consumed.
func (s *Stream) Discard(n int) int {
	s.sess.mu.Lock()
	defer s.sess.mu.Unlock()
	s.dropPeek()
	n = min(n, s.buf.len())
	if n > 0 {
		s.buf.consume(n)
		s.consumed()
	}
	return n
}

// consumed records that the reader took bytes. sess.mu is held.
func (s *Stream) consumed() {
	s.account()
	s.grant()
}

// readErr says why reading cannot go on whatever was buffered: this side
// closed or reset the stream, or the deadline passed. sess.mu is held.
func (s *Stream) readErr() error {
	switch {
	case s.closing != notClosed:
		return s.opError("read", net.ErrClosed)
	case s.localReset() != nil:
		return s.localReset()
	case deadline.Passed(s.readDeadline()):
		return timeoutError{"read"}
	}
	return nil
}

// readEnd says how reading ends once nothing is buffered, or nil if more
// may come. sess.mu is held.
func (s *Stream) readEnd() error {
	pr := s.peerReset()
	switch {
	case pr != nil && pr.Code != wsplex.CodeOK:
		return pr
	case pr != nil:
		return io.EOF // a RST after it changes nothing (SPEC.md §4.7)
	case s.has(rstIn):
		return errRefused
	case s.has(remoteFIN):
		return io.EOF
	case s.sess.ys.IsClosed():
		return s.sess.closedErrorLocked()
	}
	return nil
}

// errRefused is what a yamux RST (SPEC.md §4.7) ends a stream with.
var errRefused = &wsplex.Error{Code: wsplex.CodeUnavailable, Message: "stream refused by peer", Remote: true}

// PeerStatus returns the status the peer ended the stream with: nil while
// it has not reset the stream, and a *wsplex.Error whose Code is CodeOK
// (with the peer's trailers, if any) after it closed the stream cleanly
// with a reset.
func (s *Stream) PeerStatus() *wsplex.Error {
	s.sess.mu.Lock()
	defer s.sess.mu.Unlock()
	return s.peerReset()
}

// Write writes to the stream. It waits while the peer's window is full or
// the session's output queue holds a message already, and returns once all
// of p is queued to be sent, or with the number of bytes queued and the
// reason it stopped: the write deadline, CloseWrite, a reset by either
// side, the peer's Close (wsplex.ErrPeerClosed) or the session's end.
func (s *Stream) Write(p []byte) (n int, err error) {
	sess := s.sess
	sess.mu.Lock()
	defer sess.mu.Unlock()
	if err := s.takeTurn(true); err != nil {
		return 0, err
	}
	defer s.giveTurn()
	defer func() {
		if s.hold == holdNextWrite {
			s.flushHeld()
		}
	}()
	for n < len(p) {
		if err := s.writeErr(); err != nil {
			return n, err
		}
		if s.sendWindow == 0 {
			if !s.flushHeld() {
				s.wait(false, s.writeDeadline(), nil)
			}
			continue
		}
		k := min(len(p)-n, int(s.sendWindow), sess.maxBody)
		s.sendWindow -= uint32(k)
		// A write with no deadline may block in the kernel; one with a
		// deadline waits only for the queue, where the deadline holds.
		if s.hold == holdNone && s.writeDeadline() == nil && sess.out.tryDirect(2*k > sess.out.limit) {
			sess.mu.Unlock()
			err := sess.out.writeDirect(makeHeader(typeData, 0, s.id, uint32(k)), p[n:n+k])
			sess.mu.Lock()
			if err != nil {
				return n, sess.writeError(err)
			}
			n += k
			continue
		}
		dl := s.writeDeadline()
		kick := s.hold == holdNone
		sess.mu.Unlock()
		ok, err := sess.out.reserve(headerSize+k, s.writeStop, dl)
		if ok {
			sess.out.data(makeHeader(typeData, 0, s.id, uint32(k)), p[n:n+k], kick)
		}
		sess.mu.Lock()
		if !ok {
			s.sendWindow += uint32(k)
			if err == errDeadline {
				return n, timeoutError{"write"}
			}
			if err != nil {
				return n, sess.writeError(err)
			}
			continue // woken: check why
		}
		n += k
	}
	return n, nil
}

// takeTurn waits for the write turn, which Write holds while it queues
// frames and Close, CloseWrite and Reset hold while they end the stream,
// so that no frame of a Write follows its stream's FIN or reset. A Write
// gives up if the stream can no longer be written; the others always get
// the turn, since they wake any Write that waits. sess.mu is held.
func (s *Stream) takeTurn(write bool) error {
	for s.has(writing) {
		if write {
			if err := s.writeErr(); err != nil {
				return err
			}
		}
		s.wait(false, nil, nil)
	}
	s.flags |= writing
	return nil
}

func (s *Stream) giveTurn() {
	s.flags &^= writing
	s.wakeWriters()
}

// writeErr says why a write cannot proceed, if it cannot. sess.mu is held.
func (s *Stream) writeErr() error {
	pr := s.peerReset()
	switch {
	case s.closing != notClosed:
		return s.opError("write", net.ErrClosed)
	case s.localReset() != nil:
		return s.localReset()
	case pr != nil && pr.Code != wsplex.CodeOK:
		return pr
	case pr != nil:
		return wsplex.ErrPeerClosed
	case s.has(rstIn):
		return errRefused
	case s.has(writeClosed):
		return ErrWriteClosed
	case s.sess.ys.IsClosed():
		return s.sess.closedErrorLocked()
	case deadline.Passed(s.writeDeadline()):
		return timeoutError{"write"}
	}
	return nil
}

// CloseWrite ends the sending half: the peer reads io.EOF once it has read
// everything written before. Reading goes on. A Write waiting for window
// returns ErrWriteClosed.
func (s *Stream) CloseWrite() error {
	sess := s.sess
	sess.mu.Lock()
	if s.has(writeClosed) || s.closing != notClosed || s.localReset() != nil {
		sess.mu.Unlock()
		return nil
	}
	s.flags |= writeClosed
	s.wakeWriters()
	s.takeTurn(false)
	err := s.sendEnd()
	s.giveTurn()
	sess.mu.Unlock()
	if err != nil {
		return sess.translate("close", err)
	}
	return nil
}

// sendEnd sends the reset frame the stream owes, if any, then its FIN,
// unless sent already: whoever holds the write turn sends both, in that
// order, so that the peer never reads a clean end where a reset was due
// (SPEC.md §5). sess.mu is held, and released meanwhile.
func (s *Stream) sendEnd() error {
	var owed *wsplex.Error
	if s.x != nil {
		owed, s.x.owed = s.x.owed, nil
	}
	kick := s.hold == holdNone
	s.sess.mu.Unlock()
	if owed != nil {
		h, body := resetFrame(s.id, owed)
		s.sess.out.queue(h, body, kick)
	}
	err := s.ys.Close()
	s.sess.mu.Lock()
	s.flushHeld() // the FIN ends what the stream had to say
	return err
}

// Hold keeps the stream's frames (its data, and its SYN, ACK and FIN) in
// the session's queue, unsent, until Flush, so that they leave together,
// in one WebSocket message when they fit: an open, a request and a
// half-close, or an answer, a response and a status, as RPC calls send
// them. CloseWrite, Close and Reset flush, and so does a Read, Peek or
// Write that has to wait; another stream's frames may also carry held
// ones along. A new stream holds its SYN (or ACK) until the end of its
// first Write, without Hold.
func (s *Stream) Hold() {
	s.sess.mu.Lock()
	defer s.sess.mu.Unlock()
	if s.closing == notClosed {
		s.hold = holdOn
	}
}

// Flush sends what the stream holds (see Hold), on the calling goroutine,
// and ends the hold.
func (s *Stream) Flush() {
	s.sess.mu.Lock()
	defer s.sess.mu.Unlock()
	s.flushHeld()
}

// flushHeld ends the stream's hold, writing what is queued, and reports
// whether it did: sess.mu, held on entry, was released meanwhile, so that
// whoever waits must look at the stream again before it waits.
func (s *Stream) flushHeld() bool {
	if s.hold == holdNone {
		return false
	}
	s.hold = holdNone
	s.sess.mu.Unlock()
	s.sess.out.release()
	s.sess.mu.Lock()
	return true
}

// Reset ends the stream in both directions with e's status: its code,
// message, details and trailers (a nil e is CodeOK, which tells the peer
// only that this side reads no more). The peer's reads return a
// *wsplex.Error with that status once the data sent before it has been
// read (io.EOF for CodeOK), its writes fail, and unless the code is
// CodeOK its Context is cancelled. Locally, pending and later reads and
// writes return e. Reset after Close or another Reset does nothing. The
// stream must still be closed.
func (s *Stream) Reset(e *wsplex.Error) error {
	le := &wsplex.Error{Code: wsplex.CodeOK}
	if e != nil {
		c := *e
		c.Remote = false
		le = &c
	}
	sess := s.sess
	sess.mu.Lock()
	if s.closing != notClosed || s.localReset() != nil {
		sess.mu.Unlock()
		return nil
	}
	x := s.extra()
	x.localReset = le
	if s.has(tracked) && !s.has(rstIn) && x.peerReset == nil { // a peer that reset it reads no more
		x.owed = le
	}
	s.buf.reset()
	s.account()
	cancel := s.end(le)
	s.wakeReaders()
	s.wakeWriters()
	s.takeTurn(false)
	err := s.sendEnd()
	s.giveTurn()
	sess.mu.Unlock()
	cancel()
	if err != nil {
		return sess.translate("reset", err)
	}
	return nil
}

// resetFrame returns the header and body of a reset frame for stream id.
func resetFrame(id uint32, e *wsplex.Error) (header, []byte) {
	body := wire.EncodeStatus(e)
	return makeHeader(typeReset, 0, id, uint32(len(body))), body
}

// Close ends the stream in both directions and releases it. Pending reads
// and writes return net.ErrClosed. If the peer may still be sending, it is
// told to stop (a reset with CodeOK): its writes fail with
// wsplex.ErrPeerClosed and its reads still end with io.EOF, and its
// context lives on. Close is idempotent; a second Close waits for the
// first.
func (s *Stream) Close() error {
	sess := s.sess
	sess.mu.Lock()
	switch s.closing {
	case closing:
		x := s.extra()
		if x.closeDone == nil {
			x.closeDone = make(chan struct{})
		}
		done := x.closeDone
		sess.mu.Unlock()
		<-done
		return nil
	case closed:
		sess.mu.Unlock()
		return nil
	}
	s.closing = closing
	if s.localReset() == nil && s.peerReset() == nil && !s.has(rstIn) && !s.has(remoteFIN) && s.has(tracked) {
		s.extra().owed = &wsplex.Error{Code: wsplex.CodeOK} // the peer may still be sending: tell it to stop
	}
	s.buf.reset()
	s.account()
	cancel := s.end(net.ErrClosed)
	s.wakeReaders()
	s.wakeWriters()
	s.takeTurn(false)
	_ = s.sendEnd()
	s.giveTurn()
	sess.streamClosed()
	sess.mu.Unlock()
	cancel()
	sess.mu.Lock()
	s.closing = closed
	if s.x != nil {
		s.x.rdl.Stop()
		s.x.wdl.Stop()
		if s.x.closeDone != nil {
			close(s.x.closeDone)
		}
	}
	sess.mu.Unlock()
	return nil
}

// SetDeadline sets the read and write deadlines.
func (s *Stream) SetDeadline(t time.Time) error {
	s.SetReadDeadline(t)
	return s.SetWriteDeadline(t)
}

// SetReadDeadline sets the deadline for pending and future Reads and
// Peeks; once it passes they fail with an error matching
// os.ErrDeadlineExceeded, and the stream stays usable: nothing buffered is
// lost, and a later deadline makes it readable again.
func (s *Stream) SetReadDeadline(t time.Time) error {
	s.setDeadline(t, true)
	return nil
}

// SetWriteDeadline sets the deadline for pending and future Writes; once
// it passes they fail with an error matching os.ErrDeadlineExceeded,
// having queued what they report.
func (s *Stream) SetWriteDeadline(t time.Time) error {
	s.setDeadline(t, false)
	return nil
}

func (s *Stream) setDeadline(t time.Time, read bool) {
	s.sess.mu.Lock()
	defer s.sess.mu.Unlock()
	if s.closing != notClosed {
		return
	}
	if t.IsZero() && s.x == nil {
		return
	}
	x := s.extra()
	d, waiters := &x.wdl, &x.wwait
	if read {
		d, waiters = &x.rdl, &x.rwait
	}
	if *d == nil {
		if t.IsZero() {
			return
		}
		*d = deadline.New()
	}
	(*d).Set(t)
	wake(waiters) // they may wait on no deadline, or on the old one
}

func (s *Stream) opError(op string, err error) error {
	return &net.OpError{Op: op, Net: "wsplex", Source: s.LocalAddr(), Addr: s.RemoteAddr(), Err: err}
}

// timeoutError is returned when a stream deadline passes. It matches
// os.ErrDeadlineExceeded and is a net.Error whose Timeout is true.
type timeoutError struct{ op string }

func (e timeoutError) Error() string        { return "wsplex/mux: " + e.op + ": i/o timeout" }
func (e timeoutError) Timeout() bool        { return true }
func (e timeoutError) Temporary() bool      { return true }
func (e timeoutError) Is(target error) bool { return target == errDeadline }

var errDeadline = os.ErrDeadlineExceeded
