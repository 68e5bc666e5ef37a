package mux_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/wsplex/wsplex/internal/plextest"
	"github.com/wsplex/wsplex/mux"
	"github.com/wsplex/wsplex/transport"
)

// whoAmI is a serve func that answers every stream with the AuthInfo of the
// stream's context and of the session's.
func whoAmI(s *mux.Session) {
	for {
		st, err := s.Accept(context.Background())
		if err != nil {
			return
		}
		fmt.Fprintf(st, "%v/%v", mux.AuthInfo(st.Context()), mux.AuthInfo(s.Context()))
		st.Close()
	}
}

// identity asks a server running whoAmI who this session is.
func identity(t *testing.T, sess *mux.Session) string {
	t.Helper()
	st, err := sess.Open(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	got, err := io.ReadAll(st)
	if err != nil {
		t.Fatal(err)
	}
	return string(got)
}

func TestAuthenticate(t *testing.T) {
	users := map[string]string{"t-alice": "alice"}
	srv := plextest.NewServer(t, whoAmI, &mux.HandlerOptions{
		Authenticate: func(r *http.Request) (any, error) {
			tok := mux.BearerToken(r)
			if tok == "" {
				return nil, errors.New("secret detail: no token in request")
			}
			if user, ok := users[tok]; ok {
				return user, nil
			}
			return nil, mux.Refuse(http.StatusForbidden, "token not accepted")
		},
	})

	for _, tc := range []struct {
		name  string
		query string
		opts  mux.DialOptions
	}{
		{"authorization-header", "", mux.DialOptions{Header: http.Header{"Authorization": {"Bearer t-alice"}}}},
		{"subprotocol", "", mux.DialOptions{Subprotocols: []string{mux.TokenProtocol("t-alice")}}},
		{"query-parameter", "?access_token=t-alice", mux.DialOptions{}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			sess, err := mux.Dial(t.Context(), srv.URL+tc.query, &tc.opts)
			if err != nil {
				t.Fatal(err)
			}
			defer sess.Close()
			if got := identity(t, sess); got != "alice/alice" {
				t.Fatalf("the handler saw identity %q, want alice in stream and session contexts", got)
			}
		})
	}

	t.Run("refused", func(t *testing.T) {
		_, err := mux.Dial(t.Context(), srv.URL, &mux.DialOptions{Header: http.Header{"Authorization": {"Bearer t-mallory"}}})
		var re *mux.RefusedError
		if !errors.As(err, &re) || re.StatusCode != http.StatusForbidden || re.Message != "token not accepted" {
			t.Fatalf("dial: %v, want a *RefusedError with 403 and the hook's message", err)
		}
	})
	t.Run("unauthenticated", func(t *testing.T) {
		_, err := mux.Dial(t.Context(), srv.URL, nil)
		var re *mux.RefusedError
		if !errors.As(err, &re) || re.StatusCode != http.StatusUnauthorized {
			t.Fatalf("dial: %v, want a *RefusedError with 401", err)
		}
		if strings.Contains(err.Error(), "secret detail") {
			t.Fatalf("the hook's error text reached the client: %v", err)
		}
	})
}

func TestTokenProtocolSurvivesAnyToken(t *testing.T) {
	tok := "héllo, wörld; a=b, c"
	r := httptest.NewRequest(http.MethodGet, "/", nil)
	r.Header.Set("Sec-WebSocket-Protocol", mux.Subprotocol+", "+mux.TokenProtocol(tok))
	if got := mux.BearerToken(r); got != tok {
		t.Fatalf("BearerToken = %q, want %q", got, tok)
	}
}

// silentServer listens on loopback, accepts one connection, reads what
// arrives and never answers: a server that stalls every handshake. It
// returns the address.
func silentServer(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		c, err := ln.Accept()
		if err == nil {
			io.Copy(io.Discard, c)
			c.Close()
		}
	}()
	return ln.Addr().String()
}

func TestDialHandshakeTimeout(t *testing.T) {
	addr := silentServer(t)
	start := time.Now()
	_, err := mux.Dial(context.Background(), "ws://"+addr, &mux.DialOptions{HandshakeTimeout: 50 * time.Millisecond})
	if !errors.Is(err, mux.ErrHandshakeTimeout) || !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("dial: %v, want ErrHandshakeTimeout", err)
	}
	// Not a speed target: it tells the option from the 10 s default.
	if d := time.Since(start); d >= mux.DefaultHandshakeTimeout/2 {
		t.Fatalf("dial gave up after %v: HandshakeTimeout was not applied", d)
	}
}

func TestMaxSessions(t *testing.T) {
	served := make(chan *mux.Session, 3)
	h, err := mux.NewHandler(func(s *mux.Session) {
		served <- s
		<-s.Done()
	}, &mux.HandlerOptions{MaxSessions: 2})
	if err != nil {
		t.Fatal(err)
	}
	defer h.Close()
	srv := httptest.NewServer(h)
	defer srv.Close()
	url := plextest.WebSocketURL(srv.URL)
	dial := func() (*mux.Session, error) {
		s, err := mux.Dial(t.Context(), url, nil)
		if err == nil {
			t.Cleanup(func() { s.Close() })
		}
		return s, err
	}
	a, err := dial()
	if err != nil {
		t.Fatal(err)
	}
	aServed := <-served
	if _, err := dial(); err != nil {
		t.Fatal(err)
	}

	_, err = dial()
	var re *mux.RefusedError
	if !errors.As(err, &re) || re.StatusCode != http.StatusServiceUnavailable || !strings.Contains(re.Message, "limit of 2 sessions") {
		t.Fatalf("third dial: %v, want a *RefusedError with 503 naming the limit", err)
	}

	a.Close()
	<-aServed.Done() // the session's slot is free once it has ended
	if _, err := dial(); err != nil {
		t.Fatalf("dial after a session ended: %v", err)
	}
}

func TestRefuseWithoutAnErrorStatusSends500(t *testing.T) {
	for _, status := range []int{0, 101, 200} {
		srv := plextest.NewServer(t, plextest.Echo, &mux.HandlerOptions{
			Authenticate: func(*http.Request) (any, error) { return nil, mux.Refuse(status, "odd") },
		})
		_, err := mux.Dial(t.Context(), srv.URL, nil)
		var re *mux.RefusedError
		if !errors.As(err, &re) || re.StatusCode != http.StatusInternalServerError {
			t.Fatalf("Refuse(%d): dial %v, want a refusal with 500", status, err)
		}
	}
}

// TestStalledRequestIsDropped shows the server setting the deployment guide
// asks for: with http.Server.ReadHeaderTimeout, a client that sends part of
// its upgrade request and stalls (slowloris) is disconnected by the server.
func TestStalledRequestIsDropped(t *testing.T) {
	h, err := mux.NewHandler(plextest.Echo, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer h.Close()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	hs := &http.Server{Handler: h, ReadHeaderTimeout: 100 * time.Millisecond}
	go hs.Serve(ln)
	defer hs.Close()

	c, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	io.WriteString(c, "GET / HTTP/1.1\r\nHost: wsplex\r\nUpgrade: websocket\r\n")
	// The server must end the connection on its own; a client-side
	// deadline only keeps a broken server from hanging the test.
	c.SetReadDeadline(time.Now().Add(30 * time.Second))
	_, err = io.Copy(io.Discard, c)
	if err != nil {
		t.Fatalf("the server did not drop the stalled client: %v", err)
	}
}

// upgradeRaw performs the WebSocket handshake with srv and returns the raw
// client connection, which then does nothing unless the test makes it.
func upgradeRaw(t *testing.T, srv *plextest.Server) net.Conn {
	t.Helper()
	d := websocket.Dialer{Subprotocols: []string{mux.Subprotocol}}
	ws, _, err := d.DialContext(t.Context(), srv.URL, nil)
	if err != nil {
		t.Fatal(err)
	}
	return ws.NetConn()
}

func TestClientThatStallsAfterUpgradeIsDropped(t *testing.T) {
	srv, sessions := plextest.NewSessionServer(t, &mux.HandlerOptions{Options: mux.Options{
		KeepAliveInterval: 20 * time.Millisecond,
		KeepAliveTimeout:  100 * time.Millisecond,
	}}, 1)
	c := upgradeRaw(t, srv) // never reads, so never answers a ping
	defer c.Close()
	s := <-sessions
	<-s.Done()
	if !errors.Is(s.Err(), transport.ErrKeepAliveTimeout) {
		t.Fatalf("server session ended with %v, want ErrKeepAliveTimeout", s.Err())
	}
}

func TestClientThatVanishesEndsItsSession(t *testing.T) {
	srv, sessions := plextest.NewSessionServer(t, nil, 1)
	c := upgradeRaw(t, srv)
	s := <-sessions
	c.Close() // no close frame, no FIN on any stream
	<-s.Done()
	if s.Err() == nil {
		t.Fatal("session ended without an error")
	}
	other := srv.Dial(t, nil)
	if _, err := other.Open(t.Context()); err != nil {
		t.Fatalf("a new session after the vanished one: %v", err)
	}
}

func TestDialCancelledDuringUpgrade(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	accepted := make(chan net.Conn, 1)
	go func() {
		c, err := ln.Accept()
		if err == nil {
			accepted <- c // reads nothing, answers nothing
		}
	}()
	ctx, cancel := context.WithCancelCause(t.Context())
	held := make(chan net.Conn, 1)
	go func() {
		c := <-accepted
		cancel(errors.New("user gave up"))
		held <- c
	}()
	errc := make(chan error, 1)
	go func() {
		_, err := mux.Dial(ctx, "ws://"+ln.Addr().String(), &mux.DialOptions{HandshakeTimeout: time.Hour})
		errc <- err
	}()
	select {
	case err = <-errc:
	case <-time.After(30 * time.Second):
		t.Fatal("a cancelled Dial did not return")
	}
	(<-held).Close()
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("dial: %v, want context.Canceled", err)
	}
}

func TestDialErrorsHideTheQuery(t *testing.T) {
	srv := plextest.NewServer(t, plextest.Echo, &mux.HandlerOptions{
		Authenticate: func(*http.Request) (any, error) { return nil, mux.Refuse(http.StatusForbidden, "no") },
	})
	_, err := mux.Dial(t.Context(), srv.URL+"/path?access_token=hunter2", nil)
	if err == nil || strings.Contains(err.Error(), "hunter2") || !strings.Contains(err.Error(), srv.URL+"/path") {
		t.Fatalf("dial: %v, want an error naming the URL without its query", err)
	}
	withUser := strings.Replace(srv.URL, "ws://", "ws://bob:hunter2@", 1)
	_, err = mux.Dial(t.Context(), withUser+"/path", nil)
	if err == nil || strings.Contains(err.Error(), "hunter2") {
		t.Fatalf("dial: %v, want an error without the URL's password", err)
	}
	_, err = mux.Dial(t.Context(), srv.URL+"/%zz?access_token=hunter2", nil)
	if err == nil || strings.Contains(err.Error(), "hunter2") {
		t.Fatalf("dial of an unparsable URL: %v, want an error without its query", err)
	}
}
