// Package wstest gives tests a connected pair of gorilla WebSockets over
// net.Pipe, with no HTTP server and no socket. Everything a pipe does
// blocks on channels, so a pair made inside a testing/synctest bubble lives
// on the bubble's fake clock: keepalive and timeout tests run in no real
// time and cannot be upset by a busy machine.
package wstest

import (
	"bufio"
	"context"
	"net"
	"net/http"
	"testing"

	"github.com/gorilla/websocket"
)

// Pipe returns the client and server ends of a WebSocket whose TCP is
// replaced by net.Pipe. A pipe has no buffer: a write waits until the peer
// reads it. Both ends are closed when the test ends.
func Pipe(t testing.TB) (client, server *websocket.Conn) {
	t.Helper()
	clientEnd, serverEnd := net.Pipe()
	type result struct {
		ws  *websocket.Conn
		err error
	}
	accepted := make(chan result, 1)
	go func() {
		ws, err := upgrade(serverEnd)
		accepted <- result{ws, err}
	}()
	d := websocket.Dialer{NetDialContext: func(context.Context, string, string) (net.Conn, error) { return clientEnd, nil }}
	client, _, err := d.Dial("ws://pipe/", nil)
	if err != nil {
		clientEnd.Close()
		serverEnd.Close()
		<-accepted
		t.Fatalf("wstest: dial: %v", err)
	}
	r := <-accepted
	if r.err != nil {
		client.Close()
		t.Fatalf("wstest: upgrade: %v", r.err)
	}
	t.Cleanup(func() {
		client.Close()
		r.ws.Close()
	})
	return client, r.ws
}

// upgrade reads one HTTP request from nc and upgrades it, as an
// http.Server would, but without one: no goroutine stays behind.
func upgrade(nc net.Conn) (*websocket.Conn, error) {
	br := bufio.NewReader(nc)
	req, err := http.ReadRequest(br)
	if err != nil {
		nc.Close()
		return nil, err
	}
	w := &hijacker{conn: nc, rw: bufio.NewReadWriter(br, bufio.NewWriter(nc)), header: http.Header{}}
	ws, err := (&websocket.Upgrader{}).Upgrade(w, req, nil)
	if err != nil {
		nc.Close()
		return nil, err
	}
	return ws, nil
}

// hijacker is the http.ResponseWriter that websocket.Upgrader needs: it
// hands over the connection. Anything written through it before that is a
// refusal, which Pipe reports as the dial's error.
type hijacker struct {
	conn   net.Conn
	rw     *bufio.ReadWriter
	header http.Header
}

func (h *hijacker) Header() http.Header { return h.header }

func (h *hijacker) Write(p []byte) (int, error) { return h.conn.Write(p) }

func (h *hijacker) WriteHeader(code int) {
	resp := &http.Response{StatusCode: code, ProtoMajor: 1, ProtoMinor: 1, Header: h.header}
	resp.Write(h.conn)
}

func (h *hijacker) Hijack() (net.Conn, *bufio.ReadWriter, error) { return h.conn, h.rw, nil }
