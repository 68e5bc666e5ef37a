package wsplexgrpc

import (
	"context"
	"net"
	"time"

	"google.golang.org/grpc/peer"

	"github.com/wsplex/wsplex/mux"
	"github.com/wsplex/wsplex/stream"
)

// conn is the net.Conn that gRPC gets: a stream, whose addresses also
// carry the session, so that Session can find it from the peer.Peer that
// gRPC builds from RemoteAddr.
type conn struct {
	s             *stream.Stream
	local, remote *sessionAddr
}

var _ net.Conn = (*conn)(nil)

func newConn(s *stream.Stream) *conn {
	sess := s.Session()
	return &conn{
		s:      s,
		local:  &sessionAddr{Addr: s.LocalAddr(), sess: sess},
		remote: &sessionAddr{Addr: s.RemoteAddr(), sess: sess},
	}
}

func (c *conn) Read(p []byte) (int, error)         { return c.s.Read(p) }
func (c *conn) Write(p []byte) (int, error)        { return c.s.Write(p) }
func (c *conn) Close() error                       { return c.s.Close() }
func (c *conn) LocalAddr() net.Addr                { return c.local }
func (c *conn) RemoteAddr() net.Addr               { return c.remote }
func (c *conn) SetDeadline(t time.Time) error      { return c.s.SetDeadline(t) }
func (c *conn) SetReadDeadline(t time.Time) error  { return c.s.SetReadDeadline(t) }
func (c *conn) SetWriteDeadline(t time.Time) error { return c.s.SetWriteDeadline(t) }

// sessionAddr is the address of the session's TCP connection, as String
// and Network report it, with the session.
type sessionAddr struct {
	net.Addr
	sess *mux.Session
}

// Session returns the wsplex session that the gRPC call of a server
// handler's ctx came over, found through peer.FromContext; nil if the
// call did not come through a Listener.
func Session(ctx context.Context) *mux.Session {
	p, ok := peer.FromContext(ctx)
	if !ok {
		return nil
	}
	if a, ok := p.Addr.(*sessionAddr); ok {
		return a.sess
	}
	return nil
}

// AuthInfo returns what mux.HandlerOptions.Authenticate returned for the
// session that the gRPC call of a server handler's ctx came over, as
// mux.AuthInfo does for a stream handler; nil if there is none or the
// call did not come through a Listener.
func AuthInfo(ctx context.Context) any {
	sess := Session(ctx)
	if sess == nil {
		return nil
	}
	return mux.AuthInfo(sess.Context())
}
