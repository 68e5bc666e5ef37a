package mux

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/yamux"

	"github.com/wsplex/wsplex"
	"github.com/wsplex/wsplex/internal/wire"
	"github.com/wsplex/wsplex/transport"
)

// Session is a yamux session over one WebSocket connection. Either side
// may Open streams and Accept the peer's. Get one from Dial (client) or a
// Handler (server). All methods are safe for concurrent use.
//
// hashicorp/yamux runs each stream's life (SYN, ACK, FIN, RST, the accept
// backlog, Go Away); the session moves the data itself, between the
// WebSocket and each stream's buffer, so that it can keep the promises
// yamux cannot: a receive window for the whole session, write deadlines
// that hold, resets with a status, and refusals that cost nothing.
type Session struct {
	conn    wsConn
	ys      *yamux.Session
	out     *sender
	in      inbound // the inbound byte stream; read only by yamux's receive goroutine
	inHdr   header  // the frame header being read, also only there
	opts    Options
	log     *slog.Logger
	client  bool
	maxBody int // the largest data frame body this side sends

	ctx     context.Context // cancelled when the session ends
	cancel  context.CancelCauseFunc
	done    chan struct{}
	err     error // why it ended; written before done closes
	closing atomic.Bool
	onEnd   func() // if not nil, called when the session has ended

	// budget is the most stream data the session holds
	// (Options.SessionWindow); growLimit, half of it, the most window its
	// streams grant beyond initialWindow; maxWindow a stream's largest
	// window (Options.WindowSize).
	budget, growLimit int64
	maxWindow         uint32

	mu          sync.Mutex // guards the fields below and every Stream's state
	streams     map[uint32]*Stream
	opened      map[uint32]*Stream // streams this side opened, until Open takes them
	peerStreams int                // tracked streams the peer opened
	unaccepted  int                // of those, the ones not yet acknowledged
	held        int64              // memory holding stream data received and not read
	grown       int64              // window the streams granted beyond initialWindow
	windowWait  chan struct{}      // if not nil, closed when held or grown drops
	goAwaySent  bool
	goAwayCode  uint32 // a Go Away code other than 0 from the peer, plus one
	protoErr    error  // how the peer broke the protocol
	open        int    // streams handed out and not yet closed
	changed     chan struct{}

	rtt rttSample // the round trip being measured (window.go)
}

// wsConn is what a Session needs of its WebSocket.
type wsConn interface {
	Read(p []byte) (int, error)
	WriteMessage(parts ...[]byte) error
	Close(code int, reason string, deadline time.Time) error
	Err() error
	LocalAddr() net.Addr
	RemoteAddr() net.Addr
}

// newSession runs yamux on conn. It starts yamux's goroutines, so the
// session must be closed. The session's context, and so its streams',
// carries base's values but not its cancellation. onEnd, if not nil, runs
// once the session has ended and its connection is closed, before Done.
func newSession(base context.Context, conn wsConn, client bool, o Options, onEnd func()) *Session {
	s := &Session{
		conn:      conn,
		out:       newSender(conn, o.messageSize(), o.HoldDelay),
		opts:      o,
		log:       o.Logger,
		client:    client,
		maxBody:   o.messageSize() - headerSize,
		onEnd:     onEnd,
		done:      make(chan struct{}),
		budget:    int64(o.SessionWindow),
		growLimit: int64(o.SessionWindow) / 2,
		maxWindow: o.WindowSize,
		streams:   make(map[uint32]*Stream),
		opened:    make(map[uint32]*Stream),
		changed:   make(chan struct{}),
	}
	s.in.src = conn
	s.ctx, s.cancel = context.WithCancelCause(context.WithoutCancel(base))
	cfg := &yamux.Config{
		AcceptBacklog: acceptBacklog,
		// The transport pings at the WebSocket level, where pongs do not
		// queue behind data frames as yamux's pings do.
		EnableKeepAlive:   false,
		KeepAliveInterval: time.Minute, // unused, but must be valid
		// yamux's writes only queue control frames here, which never
		// waits; a peer that stops reading is caught by the WebSocket's
		// write timeout. yamux's own timeout would fail a write whose
		// frame is still sent later.
		ConnectionWriteTimeout: 24 * time.Hour,
		// The session grants window itself; yamux must send none.
		MaxStreamWindowSize: initialWindow,
		// Both ends always close their halves (SPEC.md), so yamux need not
		// reap half-closed streams or kill sessions over slow accepts.
		StreamCloseTimeout: 0,
		StreamOpenTimeout:  0,
		Logger:             yamuxLogger{o.Logger},
	}
	yc := yamuxConn{s}
	if client {
		s.ys, _ = yamux.Client(yc, cfg) // the config is valid by construction
	} else {
		s.ys, _ = yamux.Server(yc, cfg)
	}
	return s
}

// yamuxConn is the connection yamux runs on. Reads give yamux only the
// headers of frames that change a stream's life; writes take its control
// frames.
type yamuxConn struct{ s *Session }

func (c yamuxConn) Read(p []byte) (int, error)  { return c.s.readFrames(p) }
func (c yamuxConn) Write(p []byte) (int, error) { return c.s.writeControl(p) }
func (c yamuxConn) Close() error                { return c.s.closeConn() }

// readFrames reads frames from the peer, handles their data, windows,
// pings and resets, and returns in p the headers yamux must see: those with
// SYN, ACK, FIN or RST, and Go Away. It returns once it has at least one
// and reading more would wait.
func (s *Session) readFrames(p []byte) (int, error) {
	n := 0
	for n+headerSize <= len(p) {
		if n > 0 && s.in.Buffered() < headerSize {
			break
		}
		b, err := s.in.PeekFrame(headerSize)
		if err != nil {
			if n > 0 {
				break // the error comes again on the next call
			}
			s.out.stop()
			return 0, err
		}
		h := &s.inHdr
		copy(h[:], b)
		s.in.Discard(headerSize)
		s.out.received.Store(true)
		pass, err := s.handle(h)
		if err == nil && s.out.overflowed() {
			err = protoErrorf("peer reads nothing while it makes this side queue over %d bytes of answers", maxQueued)
		}
		if err != nil {
			err = s.fail(err)
			s.out.stop()
			return 0, err
		}
		if pass {
			n += copy(p[n:], h[:])
		}
	}
	if n == 0 {
		return 0, fmt.Errorf("wsplex/mux: read buffer of %d bytes is shorter than a frame header", len(p))
	}
	return n, nil
}

// fail records a protocol error and tells the peer with Go Away before
// yamux ends the session.
func (s *Session) fail(err error) error {
	var pe *protocolError
	if errors.As(err, &pe) {
		s.mu.Lock()
		if s.protoErr == nil {
			s.protoErr = err
		}
		s.mu.Unlock()
		s.out.goAway(goAwayProtocol)
		s.log.Warn("wsplex/mux: peer broke the protocol", "remote", s.RemoteAddr(), "err", err)
	}
	return err
}

// handle handles one frame whose header was read, reading its body. It
// reports whether yamux must see the header, rewritten for yamux to read no
// body.
func (s *Session) handle(h *header) (pass bool, err error) {
	if h.version() != 0 {
		return false, protoErrorf("frame header %x: unknown version", h[:])
	}
	switch h.typ() {
	case typeData, typeWindow:
		return s.handleStream(h)
	case typePing:
		switch fl := h.flags(); {
		case fl&flagSYN != 0:
			s.out.ping(h.length())
		case fl&flagACK != 0:
			s.pingAnswered(h.length())
		}
		return false, nil
	case typeGoAway:
		if code := h.length(); code != goAwayNormal {
			s.mu.Lock()
			s.goAwayCode = code + 1
			s.mu.Unlock()
		}
		return true, nil
	case typeReset:
		return false, s.handleReset(h)
	}
	return false, protoErrorf("frame header %x: unknown type", h[:])
}

// handleStream handles a Data or Window Update frame.
func (s *Session) handleStream(h *header) (bool, error) {
	id, fl := h.id(), h.flags()
	body := int64(0)
	if h.typ() == typeData {
		body = int64(h.length())
		h.setLength(0) // yamux sees no data
	}
	s.mu.Lock()
	st := s.streams[id]
	if fl&flagSYN != 0 {
		if st != nil {
			s.mu.Unlock()
			return false, protoErrorf("stream %d opened twice", id)
		}
		var refusal *wsplex.Error
		st, refusal = s.admit(id)
		if refusal != nil {
			s.mu.Unlock()
			s.refuse(id, refusal)
			return false, s.discard(body)
		}
		if st == nil {
			s.mu.Unlock()
			return false, protoErrorf("stream %d opened with an ID the peer may not use", id)
		}
	}
	if st == nil {
		s.mu.Unlock() // a finished stream, or one never opened: ignored
		return false, s.discard(body)
	}
	if fl&flagRST != 0 {
		cancel := s.peerRST(st)
		s.mu.Unlock()
		cancel()
		return true, s.discard(body)
	}
	if h.typ() == typeWindow && h.length() > 0 {
		st.sendWindow += min(h.length(), math.MaxUint32-st.sendWindow)
		st.wakeWriters()
	}
	if body > 0 {
		if body > int64(st.allow) {
			s.mu.Unlock()
			return false, protoErrorf("stream %d: %d bytes of data beyond the %d-byte window", id, body, st.allow)
		}
		st.allow -= uint32(body)
		keep := !st.discarding() && st.peerReset() == nil && !st.has(remoteFIN)
		if keep {
			s.sampleData(st, uint32(body))
		}
		if keep && s.held+int64(chunkCost(int(body))) > s.budget {
			// The peer keeps within each stream's window but not within the
			// session's: this stream gives way.
			keep = false
			st.flags |= overflow
			st.buf.reset()
			st.account()
			st.wakeReaders()
			s.log.Debug("wsplex/mux: stream overflows the session's receive window", "remote", s.RemoteAddr(), "stream", id)
			go st.Reset(&wsplex.Error{Code: wsplex.CodeResourceExhausted, Message: "session receive window exhausted"})
		}
		s.mu.Unlock()
		if keep {
			if err := s.receive(st, int(body)); err != nil {
				return false, err
			}
		} else if err := s.discard(body); err != nil {
			return false, err
		}
		s.mu.Lock()
	}
	if fl&flagFIN != 0 {
		if st.has(remoteFIN) {
			s.mu.Unlock()
			return false, protoErrorf("stream %d: second FIN", id)
		}
		st.flags |= remoteFIN
		st.account()
		st.wakeReaders()
		s.finishIfDone(st)
	}
	s.mu.Unlock()
	return fl&(flagSYN|flagACK|flagFIN) != 0, nil
}

// admit decides on a stream the peer opens: it returns the new Stream, or
// the status to refuse it with, or neither if the ID breaks SPEC.md §4.2.
// s.mu is held.
func (s *Session) admit(id uint32) (*Stream, *wsplex.Error) {
	if id == 0 || (id%2 == 1) == s.client {
		return nil, nil
	}
	var refusal *wsplex.Error
	switch {
	case s.goAwaySent:
		refusal = &wsplex.Error{Code: wsplex.CodeUnavailable, Message: "session is shutting down"}
	case s.peerStreams >= s.opts.MaxStreams:
		refusal = &wsplex.Error{Code: wsplex.CodeResourceExhausted, Message: fmt.Sprintf("too many concurrent streams (limit %d)", s.opts.MaxStreams)}
	case s.unaccepted >= acceptBacklog:
		refusal = &wsplex.Error{Code: wsplex.CodeUnavailable, Message: "too many streams waiting to be accepted"}
	case s.held+initialWindow > s.budget:
		refusal = &wsplex.Error{Code: wsplex.CodeResourceExhausted, Message: "session receive window exhausted"}
	}
	if refusal != nil {
		s.log.Debug("wsplex/mux: refusing stream", "remote", s.RemoteAddr(), "stream", id, "err", refusal.Message)
		return nil, refusal
	}
	st := newStream(s, id, peerOpened)
	st.account()
	s.streams[id] = st
	s.peerStreams++
	s.unaccepted++
	return st, nil
}

// refuse ends a stream the peer opened and this side never took: a reset
// frame with the status, then a yamux RST, so that nothing of it is kept
// on either side (SPEC.md §6.3).
func (s *Session) refuse(id uint32, e *wsplex.Error) {
	s.out.control(resetFrame(id, e))
	s.out.control(makeHeader(typeWindow, flagRST, id, 0), nil)
}

// receive reads a data body of n bytes into st's buffer. The stream may
// have been closed meanwhile; then the data is dropped.
func (s *Session) receive(st *Stream, n int) error {
	if n <= inBufferSize {
		p, err := s.in.Peek(n)
		if err != nil {
			return err
		}
		s.mu.Lock()
		if !st.discarding() {
			st.buf.write(p)
			st.account()
			st.wakeReaders()
		}
		s.mu.Unlock()
		return s.in.Discard(n)
	}
	for n > 0 {
		k := min(n, largeChunk)
		c := getChunk(k)
		*c = (*c)[:k]
		if _, err := io.ReadFull(&s.in, *c); err != nil {
			putChunk(c)
			return err
		}
		n -= k
		s.mu.Lock()
		if st.discarding() {
			putChunk(c)
		} else {
			st.buf.appendChunk(c)
			st.account()
			st.wakeReaders()
		}
		s.mu.Unlock()
	}
	return nil
}

// discard skips a body of n bytes.
func (s *Session) discard(n int64) error {
	if n == 0 {
		return nil
	}
	return s.in.Discard(int(n))
}

// peerRST handles a yamux RST: the stream is gone at once, its buffered
// data dropped (SPEC.md §4.7). s.mu is held.
func (s *Session) peerRST(st *Stream) func() {
	st.flags |= rstIn
	st.buf.reset()
	st.account()
	st.wakeReaders()
	st.wakeWriters()
	s.forget(st)
	cause := error(errRefused)
	if pr := st.peerReset(); pr != nil && pr.Code != wsplex.CodeOK {
		cause = pr
	}
	return st.end(cause)
}

// handleReset handles a reset frame (SPEC.md §5).
func (s *Session) handleReset(h *header) error {
	n := h.length()
	if h.id() == 0 {
		return protoErrorf("reset frame for stream 0")
	}
	if n > wire.MaxStatusSize {
		return protoErrorf("reset frame for stream %d has a %d-byte status, over the %d-byte limit", h.id(), n, wire.MaxStatusSize)
	}
	body := make([]byte, n)
	if _, err := io.ReadFull(&s.in, body); err != nil {
		return err
	}
	e := wire.DecodeStatus(body)
	s.mu.Lock()
	st := s.streams[h.id()]
	if st == nil || st.peerReset() != nil || st.localReset() != nil || st.closing != notClosed {
		s.mu.Unlock() // unknown, or this side ended it first: ignored
		return nil
	}
	st.extra().peerReset = e
	st.account()
	st.wakeReaders()
	st.wakeWriters()
	cancel := func() {}
	if e.Code != wsplex.CodeOK {
		cancel = st.end(e)
	}
	s.mu.Unlock()
	cancel()
	return nil
}

// writeControl takes a frame yamux writes. yamux writes only 12-byte
// control frames here (Window Updates carrying SYN, ACK, FIN or RST, and
// Go Away), since data, windows and pings are the session's; anything else
// means a yamux version this code was not written for.
func (s *Session) writeControl(p []byte) (int, error) {
	if len(p) != headerSize {
		return 0, fmt.Errorf("wsplex/mux: yamux wrote %d bytes where a 12-byte control frame was expected: this yamux version is not supported", len(p))
	}
	var h header
	copy(h[:], p)
	held := false // the stream holds its frames (Stream.Hold)
	switch {
	case h.typ() == typeGoAway:
		s.mu.Lock()
		s.goAwaySent = true
		s.mu.Unlock()
	case h.typ() == typeWindow && h.length() == 0:
		held = s.track(&h)
	default:
		return 0, fmt.Errorf("wsplex/mux: yamux wrote an unexpected frame (%v): this yamux version is not supported", &h)
	}
	if !s.out.queue(h, nil, !held) {
		return 0, s.out.errOrClosed()
	}
	return len(p), nil
}

// track follows a stream's life through the flags this side sends, and
// reports whether the stream holds its frames (Stream.Hold).
func (s *Session) track(h *header) (held bool) {
	id, fl := h.id(), h.flags()
	s.mu.Lock()
	defer s.mu.Unlock()
	if fl&flagSYN != 0 {
		st := newStream(s, id, 0)
		s.streams[id] = st
		s.opened[id] = st
		return st.hold != holdNone
	}
	st := s.streams[id]
	if st == nil {
		return false
	}
	if fl&flagRST != 0 { // yamux refused a stream itself, racing Go Away
		st.flags |= rstIn
		st.account()
		s.forget(st)
		return false
	}
	held = st.hold != holdNone
	if fl&flagACK != 0 {
		// The opener may open another stream as soon as it reads the ACK:
		// count this one accepted before the ACK leaves.
		s.ack(st)
	}
	if fl&flagFIN != 0 {
		st.flags |= localFIN
		s.finishIfDone(st)
	}
	return held
}

// ack counts a peer's stream no longer waiting to be accepted. s.mu is
// held.
func (s *Session) ack(st *Stream) {
	if st.has(peerOpened) && !st.has(acked) {
		st.flags |= acked
		s.unaccepted--
	}
}

// finishIfDone forgets st once both sides sent FIN. s.mu is held.
func (s *Session) finishIfDone(st *Stream) {
	if st.has(localFIN) && st.has(remoteFIN) {
		s.forget(st)
	}
}

// forget stops tracking a finished stream: frames for it are ignored from
// now on. s.mu is held.
func (s *Session) forget(st *Stream) {
	if !st.has(tracked) {
		return
	}
	st.flags &^= tracked
	delete(s.streams, st.id)
	if st.has(peerOpened) {
		s.peerStreams--
		if !st.has(acked) {
			s.unaccepted--
		}
	}
}

// count adds to the data the streams hold and to the window they grew,
// waking whoever waits for either to drop. s.mu is held.
func (s *Session) count(held, grown int64) {
	s.held += held
	s.grown += grown
	if (held < 0 || grown < 0) && s.windowWait != nil {
		close(s.windowWait)
		s.windowWait = nil
	}
}

// windowFreed returns a channel closed when the streams hold less data or
// window. s.mu is held.
func (s *Session) windowFreed() <-chan struct{} {
	if s.windowWait == nil {
		s.windowWait = make(chan struct{})
	}
	return s.windowWait
}

// closeConn is called by yamux, once, when the session shuts down for any
// reason: it sends what is queued, within the close timeout, then closes
// the WebSocket, with code 1002 after a protocol error.
func (s *Session) closeConn() error {
	deadline := time.Now().Add(s.opts.closeTimeout())
	s.out.drain(deadline)
	s.mu.Lock()
	perr := s.protoErr
	s.mu.Unlock()
	var err error
	if perr != nil {
		err = s.conn.Close(closeProtocolError, perr.Error(), deadline)
	} else {
		err = s.conn.Close(closeNormal, "", deadline)
	}
	s.ended()
	return err
}

const (
	closeNormal        = 1000
	closeProtocolError = 1002
)

// ended runs once, when the connection has closed. It records why the
// session ended and cancels its context, so no goroutine has to wait for
// the end.
func (s *Session) ended() {
	s.mu.Lock()
	perr, code := s.protoErr, s.goAwayCode
	s.mu.Unlock()
	cerr := s.conn.Err()
	var err error
	switch {
	case s.closing.Load():
		err = ErrSessionClosed
	case perr != nil:
		err = perr
	case code != 0:
		err = fmt.Errorf("wsplex/mux: peer ended the session with Go Away code %d", code-1)
	case cerr != nil && !errors.Is(cerr, net.ErrClosed):
		err = cerr
	default:
		err = errors.New("wsplex/mux: session ended by yamux")
	}
	s.err = err
	s.cancel(err)
	if s.onEnd != nil {
		s.onEnd()
	}
	close(s.done)
	if err == ErrSessionClosed || errors.Is(err, transport.ErrPeerClosed) {
		s.log.Debug("wsplex/mux: session ended", "remote", s.RemoteAddr(), "err", err)
	} else {
		s.log.Warn("wsplex/mux: session ended", "remote", s.RemoteAddr(), "err", err)
	}
}

// Open opens a new stream to the peer. It does not wait for the peer to
// accept: bytes may be written at once. Opening waits while 256 streams
// wait for the peer's acknowledgement; ctx is checked first. Open fails with ErrGoAway once the peer shuts
// down, and with an error matching ErrSessionClosed after the session
// ended.
func (s *Session) Open(ctx context.Context) (*Stream, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	ys, err := s.ys.OpenStream()
	s.mu.Lock()
	defer s.mu.Unlock()
	var st *Stream
	if ys != nil {
		st = s.opened[ys.StreamID()]
		delete(s.opened, ys.StreamID())
	}
	if st == nil {
		if err == nil {
			err = yamux.ErrSessionShutdown // the SYN never left
		}
		return nil, s.translate("open", err)
	}
	st.ys = ys
	s.open++
	return st, nil
}

// Accept waits for the peer's next stream. ctx bounds the wait. Streams the
// session refused (over Options.MaxStreams, or beyond its receive window)
// are never returned.
func (s *Session) Accept(ctx context.Context) (*Stream, error) {
	for {
		ys, err := s.ys.AcceptStreamWithContext(ctx)
		if err != nil {
			if ctx.Err() != nil {
				return nil, ctx.Err()
			}
			return nil, s.translate("accept", err)
		}
		s.mu.Lock()
		st := s.streams[ys.StreamID()]
		if st == nil || st.has(accepted) {
			s.mu.Unlock()
			continue // reset by yamux RST before it was accepted
		}
		st.flags |= accepted
		// yamux acknowledges a stream in AcceptStream, unless its peer
		// half-closed it before: then it never does, and this side owes
		// the ACK (SPEC.md §4.3). It leaves with the stream's first frame.
		owed := !st.has(acked)
		s.ack(st)
		st.ys = ys
		s.open++
		s.mu.Unlock()
		if owed {
			s.out.queue(makeHeader(typeWindow, flagACK, st.id, 0), nil, false)
		}
		return st, nil
	}
}

// streamClosed counts a stream closed. s.mu is held.
func (s *Session) streamClosed() {
	s.open--
	close(s.changed)
	s.changed = make(chan struct{})
}

// NumStreams returns how many streams were opened or accepted and are not
// yet closed.
func (s *Session) NumStreams() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.open
}

// GoAway tells the peer to open no more streams; streams already open go
// on. The peer's Open then fails with ErrGoAway, and streams it opens
// meanwhile are refused with CodeUnavailable.
func (s *Session) GoAway() error {
	s.mu.Lock()
	s.goAwaySent = true
	s.mu.Unlock()
	if err := s.ys.GoAway(); err != nil {
		return s.translate("goaway", err)
	}
	return nil
}

// Drain sends GoAway and waits until every stream is closed, ctx is done
// or the session ends. It returns ctx's error if ctx ended first.
func (s *Session) Drain(ctx context.Context) error {
	if err := s.GoAway(); err != nil && !errors.Is(err, ErrSessionClosed) {
		return err
	}
	for {
		s.mu.Lock()
		n, changed := s.open, s.changed
		s.mu.Unlock()
		if n == 0 {
			return nil
		}
		select {
		case <-changed:
		case <-s.done:
			return nil
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

// Close ends the session: every stream fails with an error matching
// ErrSessionClosed, the WebSocket is closed with code 1000, and Close waits
// for the session's goroutines to exit. Close is idempotent.
func (s *Session) Close() error {
	s.closing.Store(true)
	s.out.stop()
	_ = s.ys.Close()
	<-s.done
	return nil
}

// Done returns a channel that is closed when the session has ended.
func (s *Session) Done() <-chan struct{} { return s.done }

// Err returns nil while the session runs, and afterwards why it ended:
// ErrSessionClosed after Close, transport.ErrPeerClosed after the peer
// closed it, or the error that killed it (such as
// transport.ErrKeepAliveTimeout, or a protocol error).
func (s *Session) Err() error {
	if !s.isDone() {
		return nil
	}
	return s.err
}

// Context returns a context that is cancelled when the session ends.
func (s *Session) Context() context.Context { return s.ctx }

// IsClient reports whether this is the dialing side.
func (s *Session) IsClient() bool { return s.client }

// LocalAddr returns the local address of the TCP connection.
func (s *Session) LocalAddr() net.Addr { return s.conn.LocalAddr() }

// RemoteAddr returns the remote address of the TCP connection.
func (s *Session) RemoteAddr() net.Addr { return s.conn.RemoteAddr() }

func (s *Session) isDone() bool {
	select {
	case <-s.done:
		return true
	default:
		return false
	}
}

// closedErrorLocked is the error for calls on an ended session. It does
// not wait for the cause, which the session's end may need s.mu to learn:
// until the session is done, it is ErrSessionClosed alone.
func (s *Session) closedErrorLocked() error {
	if !s.isDone() || s.err == nil || s.err == ErrSessionClosed {
		return ErrSessionClosed
	}
	return &sessionClosedError{cause: s.err}
}

// sessionClosedError is ErrSessionClosed with the reason the session ended.
type sessionClosedError struct{ cause error }

func (e *sessionClosedError) Error() string { return ErrSessionClosed.Error() + ": " + e.cause.Error() }
func (e *sessionClosedError) Unwrap() error { return e.cause }
func (e *sessionClosedError) Is(target error) bool {
	return target == ErrSessionClosed || target == net.ErrClosed
}

// writeError is the error for data the sender could not queue or write:
// its connection failed or closed, so the session is over, whether or not
// the session has noticed yet. s.mu is held.
func (s *Session) writeError(err error) error {
	if s.isDone() {
		return s.closedErrorLocked()
	}
	if err == ErrSessionClosed || errors.Is(err, net.ErrClosed) {
		return ErrSessionClosed
	}
	return &sessionClosedError{cause: err}
}

// translate maps yamux's errors to ours, so yamux stays out of our API.
func (s *Session) translate(op string, err error) error {
	switch {
	case errors.Is(err, yamux.ErrRemoteGoAway):
		return ErrGoAway
	case s.ys.IsClosed(), errors.Is(err, yamux.ErrSessionShutdown), errors.Is(err, net.ErrClosed):
		return s.closedErrorLocked()
	}
	return fmt.Errorf("wsplex/mux: %s: %s", op, err.Error())
}

// yamuxLogger routes yamux's log lines to slog at debug level: our own
// code reports the failures that matter.
type yamuxLogger struct{ l *slog.Logger }

func (y yamuxLogger) Print(v ...any)                 { y.l.Debug(fmt.Sprint(v...)) }
func (y yamuxLogger) Printf(format string, v ...any) { y.l.Debug(fmt.Sprintf(format, v...)) }
func (y yamuxLogger) Println(v ...any)               { y.l.Debug(fmt.Sprint(v...)) }

var _ io.ReadWriteCloser = yamuxConn{}
