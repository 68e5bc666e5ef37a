package wsplexgrpc

import (
	"context"
	"net"
	"sync"
	"time"

	"github.com/wsplex/wsplex"
	"github.com/wsplex/wsplex/stream"
)

// DefaultName is the stream name a Dialer opens unless DialOptions.Name
// says otherwise, and so the pattern to mount a Listener on:
// routes.Handle(wsplexgrpc.DefaultName, lis). Each gRPC connection is one
// stream of that name; the gRPC methods travel inside it, in HTTP/2.
const DefaultName = "/grpc"

// ListenerOptions configure a Listener. A nil *ListenerOptions means all
// defaults.
type ListenerOptions struct {
	// AcceptTimeout is how long a stream waits for Accept to take it
	// before it is refused with wsplex.CodeUnavailable, so that streams
	// arriving while no grpc.Server serves the Listener do not pile up.
	// The dialing side's gRPC then redials with its backoff. Default 10 s.
	AcceptTimeout time.Duration
}

const defaultAcceptTimeout = 10 * time.Second

// Listener is a net.Listener whose connections are wsplex streams, for
// grpc.Server.Serve, and a stream.Handler, to mount on a stream.Router
// under the name the dialers open (DefaultName):
//
//	lis := wsplexgrpc.NewListener(nil)
//	go grpcServer.Serve(lis)
//	routes.Handle(wsplexgrpc.DefaultName, lis)
//
// One Listener may serve any number of Routers and sessions, on either
// side of them. Its methods are safe for concurrent use.
type Listener struct {
	acceptTimeout time.Duration

	conns     chan *conn    // unbuffered: a stream waits in ServeStream until Accept takes it
	done      chan struct{} // closed by Close
	closeOnce sync.Once
}

var (
	_ net.Listener   = (*Listener)(nil)
	_ stream.Handler = (*Listener)(nil)
)

// NewListener returns a Listener. It starts no goroutines; it must be
// closed, which grpc.Server.Stop and GracefulStop do.
func NewListener(opts *ListenerOptions) *Listener {
	var o ListenerOptions
	if opts != nil {
		o = *opts
	}
	if o.AcceptTimeout <= 0 {
		o.AcceptTimeout = defaultAcceptTimeout
	}
	return &Listener{
		acceptTimeout: o.AcceptTimeout,
		conns:         make(chan *conn),
		done:          make(chan struct{}),
	}
}

// ServeStream hands s to Accept as a net.Conn and returns once the
// connection is closed (by gRPC, or by Close on the stream), the stream
// is reset or its session ends: the Router then closes the stream. A
// stream that no Accept takes within AcceptTimeout, or that is waiting
// when the Listener closes, is refused with wsplex.CodeUnavailable; one
// whose context ends while it waits ends with nothing more to say.
func (l *Listener) ServeStream(ctx context.Context, s *stream.Stream) error {
	c := newConn(s)
	t := time.NewTimer(l.acceptTimeout)
	defer t.Stop()
	select {
	case l.conns <- c:
	case <-l.done:
		return wsplex.NewError(wsplex.CodeUnavailable, "grpc listener closed")
	case <-t.C:
		return wsplex.NewError(wsplex.CodeUnavailable, "no grpc server accepted the connection in time")
	case <-ctx.Done():
		return nil
	}
	// The connection is gRPC's now. Its Close closes the stream, which
	// cancels ctx; so do a reset and the session's end.
	<-ctx.Done()
	return nil
}

// Accept waits for the next stream a Router hands to ServeStream and
// returns it as a net.Conn; its addresses are the session's, and inside a
// gRPC handler Session and AuthInfo find the session it came over. After
// Close, Accept returns an error matching ErrListenerClosed and
// net.ErrClosed.
func (l *Listener) Accept() (net.Conn, error) {
	select {
	case <-l.done:
		return nil, ErrListenerClosed
	default:
	}
	select {
	case c := <-l.conns:
		return c, nil
	case <-l.done:
		return nil, ErrListenerClosed
	}
}

// Close stops the Listener: pending and later Accepts return
// ErrListenerClosed, and streams waiting for Accept are refused with
// wsplex.CodeUnavailable. Connections already accepted are left to gRPC,
// as net.Listener.Close leaves them; grpc.Server.Stop closes them. Close
// is idempotent and returns nil.
func (l *Listener) Close() error {
	l.closeOnce.Do(func() { close(l.done) })
	return nil
}

// Addr returns the Listener's address, network "wsplex": it listens on
// the sessions of the Routers it is mounted on, not on a socket.
func (l *Listener) Addr() net.Addr { return listenerAddr{} }

type listenerAddr struct{}

func (listenerAddr) Network() string { return "wsplex" }
func (listenerAddr) String() string  { return "wsplex" }
