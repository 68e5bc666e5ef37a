// Package plextest holds test fixtures shared by wsplex's packages:
// connected WebSocket pairs and sessions over real loopback HTTP servers.
package plextest

import (
	"bytes"
	"context"
	"encoding/binary"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/wsplex/wsplex/mux"
	"github.com/wsplex/wsplex/transport"
)

// RawPair returns the two ends of a WebSocket connection made through an
// httptest server on loopback. Both are closed when the test ends.
func RawPair(t testing.TB) (client, server *websocket.Conn) {
	t.Helper()
	accepted := make(chan *websocket.Conn, 1)
	up := websocket.Upgrader{}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ws, err := up.Upgrade(w, r, nil)
		if err != nil {
			t.Errorf("upgrade: %v", err)
			close(accepted)
			return
		}
		accepted <- ws
	}))
	t.Cleanup(srv.Close)
	client, _, err := websocket.DefaultDialer.DialContext(t.Context(), WebSocketURL(srv.URL), nil)
	if err != nil {
		t.Fatalf("dial: %v", err)
	}
	server = <-accepted
	if server == nil {
		t.FailNow()
	}
	t.Cleanup(func() {
		client.Close()
		server.Close()
	})
	return client, server
}

// Pair returns two transport.Conns joined over a loopback WebSocket. Both are
// closed when the test ends.
func Pair(t testing.TB, opts *transport.Options) (client, server *transport.Conn) {
	t.Helper()
	cws, sws := RawPair(t)
	return Wrap(t, cws, opts), Wrap(t, sws, opts)
}

// Wrap wraps ws in a transport.Conn that is closed when the test ends. Unless
// opts says otherwise, Close waits only 100 ms for the peer's close frame: a
// raw gorilla peer that is not reading never answers it.
func Wrap(t testing.TB, ws *websocket.Conn, opts *transport.Options) *transport.Conn {
	t.Helper()
	var o transport.Options
	if opts != nil {
		o = *opts
	}
	if o.CloseTimeout == 0 {
		o.CloseTimeout = 100 * time.Millisecond
	}
	c, err := transport.New(ws, &o)
	if err != nil {
		t.Fatalf("transport.New: %v", err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// WebSocketURL turns an http:// URL into a ws:// one.
func WebSocketURL(httpURL string) string {
	return "ws" + strings.TrimPrefix(httpURL, "http")
}

// Server is a mux.Handler on a loopback httptest server.
type Server struct {
	URL     string // ws:// URL of the handler
	HTTP    *httptest.Server
	Handler *mux.Handler
}

// NewServer serves a mux.Handler calling serve on loopback. The handler and
// server are closed when the test ends.
func NewServer(t testing.TB, serve func(*mux.Session), opts *mux.HandlerOptions) *Server {
	t.Helper()
	h, err := mux.NewHandler(serve, opts)
	if err != nil {
		t.Fatalf("mux.NewHandler: %v", err)
	}
	srv := httptest.NewServer(h)
	t.Cleanup(func() {
		h.Close()
		srv.Close()
	})
	return &Server{URL: WebSocketURL(srv.URL), HTTP: srv, Handler: h}
}

// Dial dials s and closes the session when the test ends.
func (s *Server) Dial(t testing.TB, opts *mux.DialOptions) *mux.Session {
	t.Helper()
	sess, err := mux.Dial(t.Context(), s.URL, opts)
	if err != nil {
		t.Fatalf("mux.Dial: %v", err)
	}
	t.Cleanup(func() { sess.Close() })
	return sess
}

// NewSessionServer is NewServer whose serve func hands each server-side
// session to the returned channel (buffered for up to backlog sessions) and
// keeps it until it ends.
func NewSessionServer(t testing.TB, opts *mux.HandlerOptions, backlog int) (*Server, <-chan *mux.Session) {
	t.Helper()
	sessions := make(chan *mux.Session, backlog)
	srv := NewServer(t, func(s *mux.Session) {
		sessions <- s
		<-s.Done()
	}, opts)
	return srv, sessions
}

// SessionPair returns the client and server sides of one session over a
// loopback WebSocket. opts, possibly nil, apply to both sides.
func SessionPair(t testing.TB, opts *mux.Options) (client, server *mux.Session) {
	t.Helper()
	var o mux.Options
	if opts != nil {
		o = *opts
	}
	srv, accepted := NewSessionServer(t, &mux.HandlerOptions{Options: o}, 1)
	client = srv.Dial(t, &mux.DialOptions{Options: o})
	return client, <-accepted
}

// Echo is a serve func that echoes the bytes of every stream the peer
// opens until the session ends, and returns when all its streams have.
func Echo(s *mux.Session) {
	var wg sync.WaitGroup
	defer wg.Wait()
	for {
		st, err := s.Accept(context.Background())
		if err != nil {
			return
		}
		wg.Go(func() {
			defer st.Close()
			io.Copy(st, st)
			st.CloseWrite()
		})
	}
}

// CheckEcho opens a stream on sess, sends msg through a server running
// Echo, and fails t unless the same bytes come back.
func CheckEcho(t testing.TB, sess *mux.Session, msg string) {
	t.Helper()
	if err := Echoes(sess, msg); err != nil {
		t.Fatal(err)
	}
}

// Echoes is CheckEcho returning its error.
func Echoes(sess *mux.Session, msg string) error {
	st, err := sess.Open(context.Background())
	if err != nil {
		return fmt.Errorf("open: %w", err)
	}
	defer st.Close()
	if _, err := io.WriteString(st, msg); err != nil {
		return fmt.Errorf("write: %w", err)
	}
	if err := st.CloseWrite(); err != nil {
		return fmt.Errorf("close write: %w", err)
	}
	got, err := io.ReadAll(st)
	if err != nil {
		return fmt.Errorf("read: %w", err)
	}
	if string(got) != msg {
		return fmt.Errorf("echo: got %q, want %q", got, msg)
	}
	return nil
}

// LogBuffer collects what a slog.Logger writes from other goroutines, for
// tests that check what was logged.
type LogBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (b *LogBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.Write(p)
}

// String returns everything written so far.
func (b *LogBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.String()
}

// Frame encodes a yamux frame header (SPEC.md §4.1) followed by body.
func Frame(typ byte, flags uint16, id, length uint32, body ...byte) []byte {
	b := make([]byte, 12, 12+len(body))
	b[1] = typ
	binary.BigEndian.PutUint16(b[2:], flags)
	binary.BigEndian.PutUint32(b[4:], id)
	binary.BigEndian.PutUint32(b[8:], length)
	return append(b, body...)
}

// Frame types and flags, as SPEC.md §4.1 numbers them.
const (
	TypeData   = 0
	TypeWindow = 1
	TypePing   = 2
	TypeGoAway = 3
	TypeReset  = 4

	FlagSYN = 1
	FlagACK = 2
	FlagFIN = 4
	FlagRST = 8
)

// RawPeer is a WebSocket client that speaks yamux frames by hand, for
// tests of what a session does with input no wsplex peer sends.
type RawPeer struct {
	WS  *websocket.Conn
	buf []byte // received bytes not yet returned by ReadFrame
}

// DialRaw connects a RawPeer to a wsplex server at url (ws://). The
// connection is closed when the test ends.
func DialRaw(t testing.TB, url string) *RawPeer {
	t.Helper()
	d := websocket.Dialer{Subprotocols: []string{mux.Subprotocol}}
	ws, _, err := d.DialContext(t.Context(), url, nil)
	if err != nil {
		t.Fatalf("dial: %v", err)
	}
	t.Cleanup(func() { ws.Close() })
	return &RawPeer{WS: ws}
}

// Send writes frames, concatenated, as one binary message.
func (p *RawPeer) Send(frames ...[]byte) error {
	return p.WS.WriteMessage(websocket.BinaryMessage, bytes.Join(frames, nil))
}

// ReadFrame returns the next frame the server sent: its 12-byte header and
// the body of a Data or Reset frame.
func (p *RawPeer) ReadFrame() (hdr, body []byte, err error) {
	need := 12
	for {
		if len(p.buf) >= 12 {
			typ := p.buf[1]
			if typ == TypeData || typ == TypeReset {
				need = 12 + int(binary.BigEndian.Uint32(p.buf[8:12]))
			}
			if len(p.buf) >= need {
				hdr, body = p.buf[:12:12], p.buf[12:need:need]
				p.buf = p.buf[need:]
				return hdr, body, nil
			}
		}
		_, m, err := p.WS.ReadMessage()
		if err != nil {
			return nil, nil, err
		}
		p.buf = append(p.buf, m...)
	}
}
