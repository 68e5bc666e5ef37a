package mux

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/yamux"

	"github.com/wsplex/wsplex/internal/wsconn"
)

// Session is a yamux session over one WebSocket connection. Either side
// may Open streams and Accept the peer's. Get one from Dial (client) or a
// Handler (server). All methods are safe for concurrent use.
type Session struct {
	conn   *wsconn.Conn
	fc     *frameConn
	ys     *yamux.Session
	opts   Options
	log    *slog.Logger
	client bool

	ctx     context.Context // cancelled when the session ends
	cancel  context.CancelCauseFunc
	done    chan struct{}
	err     error // why it ended; written before done closes
	closing atomic.Bool
	onEnd   func() // if not nil, called when the session has ended

	mu      sync.Mutex
	open    int           // streams handed out and not yet closed
	changed chan struct{} // closed and replaced when open drops
}

// newSession runs yamux on conn. It starts yamux's goroutines, so the
// session must be closed. The session's context, and so its streams',
// carries base's values but not its cancellation. onEnd, if not nil, runs
// once the session has ended and its connection is closed, before Done.
func newSession(base context.Context, conn *wsconn.Conn, client bool, o Options, onEnd func()) *Session {
	s := &Session{
		onEnd:   onEnd,
		conn:    conn,
		fc:      newFrameConn(conn, conn.Options().MessageSize, conn.Options().CloseTimeout),
		opts:    o,
		log:     o.Logger,
		client:  client,
		done:    make(chan struct{}),
		changed: make(chan struct{}),
	}
	s.ctx, s.cancel = context.WithCancelCause(context.WithoutCancel(base))
	s.fc.onClose = s.ended
	cfg := &yamux.Config{
		AcceptBacklog: acceptBacklog,
		// The transport pings at the WebSocket level, where pongs do not
		// queue behind data frames as yamux's pings do.
		EnableKeepAlive:        false,
		KeepAliveInterval:      time.Minute, // unused, but must be valid
		ConnectionWriteTimeout: o.writeTimeout(),
		MaxStreamWindowSize:    o.WindowSize,
		// Both ends always close their halves (SPEC.md), so yamux need not
		// reap half-closed streams or kill sessions over slow accepts.
		StreamCloseTimeout: 0,
		StreamOpenTimeout:  0,
		Logger:             yamuxLogger{o.Logger},
	}
	if client {
		s.ys, _ = yamux.Client(s.fc, cfg) // the config is valid by construction
	} else {
		s.ys, _ = yamux.Server(s.fc, cfg)
	}
	return s
}

func (o *Options) writeTimeout() time.Duration {
	if o.WriteTimeout > 0 {
		return o.WriteTimeout
	}
	return 10 * time.Second
}

// ended runs once, when yamux closes the frame layer: on Close, or when a
// read or write failed. It records why and cancels the session's context,
// so no goroutine has to wait for the end.
func (s *Session) ended() {
	var err error
	switch {
	case s.closing.Load():
		err = ErrSessionClosed
	case s.fc.protocolError() != nil:
		err = s.fc.protocolError()
	case s.conn.Err() != nil && !errors.Is(s.conn.Err(), net.ErrClosed):
		err = s.conn.Err()
	default:
		err = errors.New("wsplex/mux: protocol error from peer")
	}
	s.err = err
	s.cancel(err)
	if s.onEnd != nil {
		s.onEnd()
	}
	close(s.done)
	if err != ErrSessionClosed {
		s.log.Warn("wsplex/mux: session ended", "remote", s.RemoteAddr(), "err", err)
	}
}

// Open opens a new stream to the peer. It does not wait for the peer to
// accept: bytes may be written at once. ctx is checked before opening;
// opening waits only when 256 streams are already waiting for the peer's
// acknowledgement. Open fails with ErrGoAway once the peer shuts down, and
// with an error matching ErrSessionClosed after the session ended.
func (s *Session) Open(ctx context.Context) (*Stream, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if s.isDone() {
		return nil, s.closedError()
	}
	ys, err := s.ys.OpenStream()
	if err != nil {
		return nil, s.translate("open", err)
	}
	return s.newStream(ys), nil
}

// Accept waits for the peer's next stream. ctx bounds the wait. Streams
// over Options.MaxStreams are reset with CODE_RESOURCE_EXHAUSTED and not
// returned.
func (s *Session) Accept(ctx context.Context) (*Stream, error) {
	for {
		ys, err := s.ys.AcceptStreamWithContext(ctx)
		if err != nil {
			if ctx.Err() != nil {
				return nil, ctx.Err()
			}
			return nil, s.translate("accept", err)
		}
		st := s.newStream(ys)
		// Count what yamux still holds, not what the application has open:
		// a peer that never ends its half keeps a locally closed stream
		// alive, and must not get more that way.
		if s.fc.peerOpenStreams() > s.opts.MaxStreams {
			s.log.Debug("wsplex/mux: refusing stream over limit", "remote", s.RemoteAddr(), "limit", s.opts.MaxStreams)
			st.Reset(codeResourceExhausted, fmt.Sprintf("too many concurrent streams (limit %d)", s.opts.MaxStreams))
			st.Close()
			continue
		}
		return st, nil
	}
}

func (s *Session) newStream(ys *yamux.Stream) *Stream {
	st := s.fc.adopt(ys.StreamID())
	st.mu.Lock()
	st.ys, st.sess = ys, s
	if st.reset != nil {
		_ = ys.SetWriteDeadline(past) // the peer reset it before now
	}
	st.mu.Unlock()
	s.mu.Lock()
	s.open++
	s.mu.Unlock()
	return st
}

func (s *Session) streamClosed(st *Stream) {
	s.mu.Lock()
	s.open--
	close(s.changed)
	s.changed = make(chan struct{})
	s.mu.Unlock()
}

// NumStreams returns how many streams were opened or accepted and are not
// yet closed.
func (s *Session) NumStreams() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.open
}

// GoAway tells the peer to open no more streams; streams already open go
// on. The peer's Open then fails with ErrGoAway.
func (s *Session) GoAway() error {
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
	_ = s.ys.Close()
	<-s.done
	return nil
}

// Done returns a channel that is closed when the session has ended.
func (s *Session) Done() <-chan struct{} { return s.done }

// Err returns nil while the session runs, and afterwards why it ended:
// ErrSessionClosed after Close, transport.ErrPeerClosed after the peer
// closed it, or the error that killed it (such as
// transport.ErrKeepAliveTimeout).
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

// closedError is the error for calls on an ended session.
func (s *Session) closedError() error {
	select {
	case <-s.done:
	case <-time.After(s.opts.closeWait()):
		// yamux reported shutdown, but Close is still flushing or the
		// transport is still closing: the cause is not known yet.
		return ErrSessionClosed
	}
	if s.err == nil || s.err == ErrSessionClosed {
		return ErrSessionClosed
	}
	return &sessionClosedError{cause: s.err}
}

func (o *Options) closeWait() time.Duration {
	if o.CloseTimeout > 0 {
		return o.CloseTimeout + time.Second
	}
	return 6 * time.Second
}

// sessionClosedError is ErrSessionClosed with the reason the session ended.
type sessionClosedError struct{ cause error }

func (e *sessionClosedError) Error() string { return ErrSessionClosed.Error() + ": " + e.cause.Error() }
func (e *sessionClosedError) Unwrap() error { return e.cause }
func (e *sessionClosedError) Is(target error) bool {
	return target == ErrSessionClosed || target == net.ErrClosed
}

// yamuxLogger routes yamux's log lines to slog at debug level: our own
// code reports the failures that matter.
type yamuxLogger struct{ l *slog.Logger }

func (y yamuxLogger) Print(v ...any)                 { y.l.Debug(fmt.Sprint(v...)) }
func (y yamuxLogger) Printf(format string, v ...any) { y.l.Debug(fmt.Sprintf(format, v...)) }
func (y yamuxLogger) Println(v ...any)               { y.l.Debug(fmt.Sprint(v...)) }

var _ io.ReadWriteCloser = (*frameConn)(nil)
