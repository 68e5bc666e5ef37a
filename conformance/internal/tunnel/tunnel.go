// Package tunnel runs the wsplex hop of a program under test: a wsplex
// server on loopback (mux.Handler in an http.Server) that serves a
// stream.Router, and one client session to it that carries every call.
package tunnel

import (
	"context"
	"net"
	"net/http"
	"time"

	"github.com/wsplex/wsplex/mux"
	"github.com/wsplex/wsplex/stream"
)

// Tunnel is a wsplex server and a session to it.
type Tunnel struct {
	// Session is the client side: calls opened on it reach the routes.
	Session *mux.Session
	handler *mux.Handler
	srv     *http.Server
	served  chan struct{}
}

// Start serves routes behind a mux.Handler on a loopback port and dials a
// session to it.
func Start(ctx context.Context, routes *stream.Router) (*Tunnel, error) {
	h, err := mux.NewHandler(func(s *mux.Session) { routes.Serve(s) }, nil)
	if err != nil {
		return nil, err
	}
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	t := &Tunnel{handler: h, srv: &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second}, served: make(chan struct{})}
	go func() {
		defer close(t.served)
		t.srv.Serve(lis)
	}()
	t.Session, err = mux.Dial(ctx, "ws://"+lis.Addr().String()+"/", nil)
	if err != nil {
		t.Close()
		return nil, err
	}
	return t, nil
}

// Close ends the session and the server.
func (t *Tunnel) Close() {
	if t.Session != nil {
		t.Session.Close()
	}
	t.handler.Close()
	t.srv.Close()
	<-t.served
}
