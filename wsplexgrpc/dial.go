package wsplexgrpc

import (
	"context"
	"net"

	"github.com/wsplex/wsplex/mux"
	"github.com/wsplex/wsplex/reconnect"
	"github.com/wsplex/wsplex/stream"
)

// DialOptions configure a Dialer. A nil *DialOptions means all defaults.
type DialOptions struct {
	// Name is the name of the streams the dialer opens, which the peer's
	// Router must route to a Listener. Default DefaultName ("/grpc").
	Name string
}

// Dialer returns a dial func for grpc.WithContextDialer that opens each
// gRPC connection as a stream on sess:
//
//	cc, err := grpc.NewClient("passthrough:///wsplex",
//		grpc.WithContextDialer(wsplexgrpc.Dialer(sess, nil)),
//		grpc.WithTransportCredentials(insecure.NewCredentials()))
//
// The address gRPC passes is ignored: "passthrough:///" keeps gRPC from
// resolving the target, which only names the connection. The ctx that gRPC
// passes bounds the opening. Once sess has ended, every dial fails with
// an error matching mux.ErrSessionClosed, and calls fail with
// codes.Unavailable; to redial on a new session, use ReconnectDialer. A
// name that stream.CheckName refuses fails every dial.
func Dialer(sess *mux.Session, opts *DialOptions) func(ctx context.Context, addr string) (net.Conn, error) {
	return dialer(func(context.Context) (*mux.Session, error) { return sess, nil }, opts)
}

// ReconnectDialer is Dialer on the current session of c (from
// c.Session(ctx)), waiting for one if there is none, within the ctx that
// gRPC passes. When a session ends, gRPC's connections on it break, and
// gRPC dials again, so that later calls go over the next session; calls
// under way fail with codes.Unavailable.
func ReconnectDialer(c *reconnect.Client, opts *DialOptions) func(ctx context.Context, addr string) (net.Conn, error) {
	return dialer(c.Session, opts)
}

func dialer(session func(context.Context) (*mux.Session, error), opts *DialOptions) func(context.Context, string) (net.Conn, error) {
	name := DefaultName
	if opts != nil && opts.Name != "" {
		name = opts.Name
	}
	return func(ctx context.Context, _ string) (net.Conn, error) {
		sess, err := session(ctx)
		if err != nil {
			return nil, err
		}
		s, err := stream.Open(ctx, sess, name, nil)
		if err != nil {
			return nil, err
		}
		return newConn(s), nil
	}
}
