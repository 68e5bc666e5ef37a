package gateway

import (
	"context"
	"errors"
	"net"
	"net/http"
	"sync"

	"connectrpc.com/connect/v2/connecthttp"
)

// Local serves an http.Handler in process, for a Handler to forward calls
// to without opening a port: an http.Server on an in-memory listener that
// speaks HTTP/1.1 and h2c, and a client whose connections reach it over
// net.Pipe with h2c, so that every call shape works, bidi included, with
// every protocol, gRPC included. Its methods are safe for concurrent use.
//
// NewLocal starts a goroutine: call Close when done.
type Local struct {
	srv    *http.Server
	lis    *pipeListener
	client *http.Client
	done   chan struct{}
	once   sync.Once
}

// localURL is the base URL of a Local's handler: a name that no resolver
// knows, since the connections never leave the process.
const localURL = "http://gateway.local.invalid"

// NewLocal starts serving h in process.
func NewLocal(h http.Handler) *Local {
	l := &Local{lis: newPipeListener(), done: make(chan struct{})}
	p := new(http.Protocols)
	p.SetHTTP1(true)
	p.SetUnencryptedHTTP2(true)
	l.srv = &http.Server{Handler: h, Protocols: p}
	cp := new(http.Protocols)
	cp.SetUnencryptedHTTP2(true)
	l.client = &http.Client{Transport: &http.Transport{
		Protocols:   cp,
		DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) { return l.lis.dial(ctx) },
	}}
	go func() {
		defer close(l.done)
		l.srv.Serve(l.lis)
	}()
	return l
}

// Client returns an HTTP client whose requests, to any URL, reach the
// handler.
func (l *Local) Client() *http.Client { return l.client }

// Transport returns a Transport to the handler: NewTransport with Client,
// a base URL that reaches the handler, and options.
func (l *Local) Transport(options ...connecthttp.Option) *Transport {
	return NewTransport(l.client, localURL, options...)
}

// Close stops serving: it closes the listener and every connection, and
// waits for the server's goroutine. Calls in flight fail. It is
// idempotent.
func (l *Local) Close() error {
	l.once.Do(func() {
		l.srv.Close()
		l.client.CloseIdleConnections()
	})
	<-l.done
	return nil
}

// pipeListener is a net.Listener whose connections are net.Pipes that
// dial makes.
type pipeListener struct {
	conns  chan net.Conn
	closed chan struct{}
	once   sync.Once
}

func newPipeListener() *pipeListener {
	return &pipeListener{conns: make(chan net.Conn), closed: make(chan struct{})}
}

func (l *pipeListener) Accept() (net.Conn, error) {
	select {
	case c := <-l.conns:
		return c, nil
	case <-l.closed:
		return nil, net.ErrClosed
	}
}

func (l *pipeListener) dial(ctx context.Context) (net.Conn, error) {
	client, server := net.Pipe()
	select {
	case l.conns <- server:
		return client, nil
	case <-l.closed:
		client.Close()
		server.Close()
		return nil, &net.OpError{Op: "dial", Net: "pipe", Err: errors.New("gateway: local server closed")}
	case <-ctx.Done():
		client.Close()
		server.Close()
		return nil, ctx.Err()
	}
}

func (l *pipeListener) Close() error {
	l.once.Do(func() { close(l.closed) })
	return nil
}

func (l *pipeListener) Addr() net.Addr { return pipeAddr{} }

type pipeAddr struct{}

func (pipeAddr) Network() string { return "pipe" }
func (pipeAddr) String() string  { return "pipe" }
