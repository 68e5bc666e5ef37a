package mux_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	"go.uber.org/goleak"
	"golang.org/x/net/nettest"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/anypb"
	"google.golang.org/protobuf/types/known/wrapperspb"

	"github.com/wsplex/wsplex"
	"github.com/wsplex/wsplex/internal/plextest"
	"github.com/wsplex/wsplex/mux"
	"github.com/wsplex/wsplex/transport"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// streamPair opens a stream from client and accepts it on server.
func streamPair(t testing.TB, client, server *mux.Session) (a, b *mux.Stream) {
	t.Helper()
	a, err := client.Open(t.Context())
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	b, err = server.Accept(t.Context())
	if err != nil {
		t.Fatalf("Accept: %v", err)
	}
	t.Cleanup(func() {
		a.Close()
		b.Close()
	})
	return a, b
}

func TestStreamConformance(t *testing.T) {
	nettest.TestConn(t, func() (c1, c2 net.Conn, stop func(), err error) {
		accepted := make(chan *mux.Session, 1)
		h, err := mux.NewHandler(func(s *mux.Session) {
			accepted <- s
			<-s.Done()
		}, nil)
		if err != nil {
			return nil, nil, nil, err
		}
		srv := httptest.NewServer(h)
		client, err := mux.Dial(context.Background(), plextest.WebSocketURL(srv.URL), nil)
		if err != nil {
			srv.Close()
			return nil, nil, nil, err
		}
		server := <-accepted
		a, err := client.Open(context.Background())
		if err != nil {
			return nil, nil, nil, err
		}
		b, err := server.Accept(context.Background())
		if err != nil {
			return nil, nil, nil, err
		}
		stop = func() {
			a.Close()
			b.Close()
			client.Close()
			h.Close()
			srv.Close()
		}
		return a, b, stop, nil
	})
}

func TestStreamsCarryBytesBothWays(t *testing.T) {
	client, server := plextest.SessionPair(t, nil)
	for _, dir := range []struct {
		name          string
		opener, accpt *mux.Session
	}{{"client-opens", client, server}, {"server-opens", server, client}} {
		t.Run(dir.name, func(t *testing.T) {
			a, b := streamPair(t, dir.opener, dir.accpt)
			want := bytes.Repeat([]byte("wsplex"), 100000)
			go func() {
				a.Write(want)
				a.CloseWrite()
			}()
			got, err := io.ReadAll(b)
			if err != nil || !bytes.Equal(got, want) {
				t.Fatalf("read %d bytes, err %v", len(got), err)
			}
			// The other half still works after CloseWrite.
			go func() {
				b.Write([]byte("reply"))
				b.CloseWrite()
			}()
			got, err = io.ReadAll(a)
			if err != nil || string(got) != "reply" {
				t.Fatalf("reply %q, %v", got, err)
			}
		})
	}
}

func TestResetCarriesStatusToBothEnds(t *testing.T) {
	client, server := plextest.SessionPair(t, nil)
	a, b := streamPair(t, client, server)

	if _, err := a.Write([]byte("before")); err != nil {
		t.Fatal(err)
	}
	// b blocks in Write once a's window is full; a's reset must free it.
	writeErr := make(chan error, 1)
	go func() {
		buf := make([]byte, 64<<10)
		for {
			if _, err := b.Write(buf); err != nil {
				writeErr <- err
				return
			}
		}
	}()
	if err := a.Reset(wsplex.NewError(wsplex.CodePermissionDenied, "not yours")); err != nil {
		t.Fatal(err)
	}

	got := make([]byte, 6)
	if _, err := io.ReadFull(b, got); err != nil || string(got) != "before" {
		t.Fatalf("data sent before the reset: %q, %v", got, err)
	}
	var re *wsplex.Error
	_, err := b.Read(got)
	if !errors.As(err, &re) || re.Code != wsplex.CodePermissionDenied || re.Message != "not yours" || !re.Remote {
		t.Fatalf("peer read after reset: %v", err)
	}
	if err := <-writeErr; !errors.As(err, &re) || re.Code != wsplex.CodePermissionDenied {
		t.Fatalf("peer write after reset: %v", err)
	}
	<-b.Context().Done()
	if cause := context.Cause(b.Context()); !errors.As(cause, &re) {
		t.Fatalf("peer context cause: %v", cause)
	}
	if _, err := a.Read(got); !errors.As(err, &re) || re.Remote {
		t.Fatalf("local read after reset: %v", err)
	}
	if _, err := a.Write(got); !errors.As(err, &re) || re.Remote {
		t.Fatalf("local write after reset: %v", err)
	}
}

// TestResetThenCloseFromTheWriter resets a stream from one goroutine while
// another is blocked writing to it; the writer, unblocked, closes the
// stream at once, as a deferred Close does. Whatever the timing, the peer
// must read the reset after the data, never a clean end of cut-off data:
// the writer's Close must not get its FIN out ahead of the reset frame.
func TestResetThenCloseFromTheWriter(t *testing.T) {
	client, server := plextest.SessionPair(t, &mux.Options{WindowSize: 256 << 10})
	// Many at once: the reset frame and the FIN race for the wire through
	// different paths, and a busy session widens the race.
	const streams = 16
	for round := range 20 {
		var wg sync.WaitGroup
		errs := make(chan error, streams)
		for range streams {
			a, b := streamPair(t, client, server)
			wg.Go(func() {
				blocked := make(chan struct{})
				done := make(chan struct{})
				go func() {
					defer close(done)
					defer a.Close()
					buf := make([]byte, 64<<10)
					for n := 0; ; n++ {
						if n == 4 { // the 256 KiB window is full: the next Write blocks
							close(blocked)
						}
						if _, err := a.Write(buf); err != nil {
							return
						}
					}
				}()
				<-blocked
				a.Reset(wsplex.NewError(wsplex.CodeUnavailable, "stop"))
				_, err := io.Copy(io.Discard, b)
				var re *wsplex.Error
				if !errors.As(err, &re) || re.Code != wsplex.CodeUnavailable {
					errs <- fmt.Errorf("round %d: the peer read %v, want the reset", round, err)
				}
				<-done
			})
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			t.Fatal(err)
		}
	}
}

// TestResetBeforeAccept resets a stream before the peer accepts it: the
// accepted stream must still deliver the data sent first, then the reset.
func TestResetBeforeAccept(t *testing.T) {
	client, server := plextest.SessionPair(t, nil)
	sync0, sync1 := streamPair(t, client, server)

	a, err := client.Open(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	if _, err := a.Write([]byte("hi")); err != nil {
		t.Fatal(err)
	}
	if err := a.Reset(wsplex.NewError(wsplex.CodeUnavailable, "changed my mind")); err != nil {
		t.Fatal(err)
	}
	// Frames arrive in order: once sync1 reads this, the server has seen
	// the reset, and has not accepted the stream yet.
	if _, err := sync0.Write([]byte("x")); err != nil {
		t.Fatal(err)
	}
	if _, err := io.ReadFull(sync1, make([]byte, 1)); err != nil {
		t.Fatal(err)
	}

	b, err := server.Accept(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	got := make([]byte, 2)
	if _, err := io.ReadFull(b, got); err != nil || string(got) != "hi" {
		t.Fatalf("data sent before the reset: %q, %v", got, err)
	}
	var re *wsplex.Error
	if _, err := b.Read(got); !errors.As(err, &re) || re.Code != wsplex.CodeUnavailable || !re.Remote {
		t.Fatalf("read after the reset: %v", err)
	}
	if _, err := b.Write(got); !errors.As(err, &re) || re.Code != wsplex.CodeUnavailable {
		t.Fatalf("write after the reset: %v", err)
	}
	if cause := context.Cause(b.Context()); !errors.As(cause, &re) || re.Code != wsplex.CodeUnavailable {
		t.Fatalf("context cause: %v", cause)
	}
}

// TestContextMadeAfterTheEnd checks the context of streams that ended before
// Context was first called: it is done, and its cause is why the stream
// ended first, even after the session ended too.
func TestContextMadeAfterTheEnd(t *testing.T) {
	client, server := plextest.SessionPair(t, nil)
	reset, _ := streamPair(t, client, server)
	closed, _ := streamPair(t, client, server)
	untouched, _ := streamPair(t, client, server)
	if err := reset.Reset(wsplex.NewError(wsplex.CodeCanceled, "bye")); err != nil {
		t.Fatal(err)
	}
	closed.Close()
	afterSession, _ := streamPair(t, client, server)
	client.Close()
	afterSession.Close() // as a deferred Close runs once the session ended

	var re *wsplex.Error
	if cause := context.Cause(reset.Context()); !errors.As(cause, &re) || re.Code != wsplex.CodeCanceled || re.Remote {
		t.Fatalf("reset stream: cause %v, want the local reset", cause)
	}
	if cause := context.Cause(closed.Context()); !errors.Is(cause, net.ErrClosed) {
		t.Fatalf("closed stream: cause %v, want net.ErrClosed", cause)
	}
	if cause := context.Cause(untouched.Context()); !errors.Is(cause, mux.ErrSessionClosed) {
		t.Fatalf("stream of a closed session: cause %v, want ErrSessionClosed", cause)
	}
	if cause := context.Cause(afterSession.Context()); !errors.Is(cause, mux.ErrSessionClosed) {
		t.Fatalf("stream closed after its session ended: cause %v, want ErrSessionClosed", cause)
	}
	for _, s := range []*mux.Stream{reset, closed, untouched, afterSession} {
		if s.Context().Err() == nil {
			t.Fatalf("stream %d: context not done", s.ID())
		}
	}
}

// TestConcurrentCloseWaitsForTheFirst closes each stream from two
// goroutines at once: whichever returns second must not return before the
// stream is closed, its context cancelled.
func TestConcurrentCloseWaitsForTheFirst(t *testing.T) {
	client, server := plextest.SessionPair(t, nil)
	for range 300 {
		a, _ := streamPair(t, client, server)
		ctx := a.Context()
		var wg sync.WaitGroup
		early := make(chan struct{}, 2)
		for range 2 {
			wg.Go(func() {
				a.Close()
				if ctx.Err() == nil {
					early <- struct{}{}
				}
			})
		}
		wg.Wait()
		if len(early) > 0 {
			t.Fatal("Close returned while another Close was still closing the stream")
		}
	}
}

func TestCloseTellsPeerToStopWriting(t *testing.T) {
	client, server := plextest.SessionPair(t, nil)
	a, b := streamPair(t, client, server)
	if _, err := b.Write([]byte("unread")); err != nil {
		t.Fatal(err)
	}
	a.Close() // without reading

	var err error
	for err == nil {
		_, err = b.Write(make([]byte, 1024))
	}
	if !errors.Is(err, wsplex.ErrPeerClosed) {
		t.Fatalf("write after peer Close: %v, want wsplex.ErrPeerClosed", err)
	}
	if _, err := io.ReadAll(b); err != nil {
		t.Fatalf("read after peer Close: %v, want clean EOF", err)
	}
	if _, err := a.Read(make([]byte, 1)); !errors.Is(err, net.ErrClosed) {
		t.Fatalf("read after Close: %v", err)
	}
	// Both ends released the stream.
	b.Close()
	if n := client.NumStreams() + server.NumStreams(); n != 0 {
		t.Fatalf("%d streams still open", n)
	}
}

func TestMaxStreamsRefusesExtra(t *testing.T) {
	client, server := plextest.SessionPair(t, &mux.Options{MaxStreams: 2})
	for range 2 {
		streamPair(t, client, server)
	}
	extra, err := client.Open(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	defer extra.Close()
	accepted := make(chan error, 1)
	ctx, cancel := context.WithCancel(t.Context())
	go func() {
		_, err := server.Accept(ctx) // refuses extra, then waits
		accepted <- err
	}()
	var re *wsplex.Error
	if _, err := extra.Read(make([]byte, 1)); !errors.As(err, &re) || re.Code != wsplex.CodeResourceExhausted {
		t.Fatalf("extra stream read: %v, want RESOURCE_EXHAUSTED", err)
	}
	cancel()
	if err := <-accepted; !errors.Is(err, context.Canceled) {
		t.Fatalf("Accept: %v", err)
	}
}

func TestSessionCloseUnderLoadEndsEveryStream(t *testing.T) {
	client, server := plextest.SessionPair(t, nil)
	const n = 50
	var wg sync.WaitGroup
	errs := make(chan error, 2*n)
	go func() {
		for {
			s, err := server.Accept(context.Background())
			if err != nil {
				return
			}
			go func() {
				defer s.Close()
				io.Copy(s, s)
			}()
		}
	}()
	ready := make(chan struct{}, n)
	for range n {
		s, err := client.Open(t.Context())
		if err != nil {
			t.Fatal(err)
		}
		wg.Add(2)
		go func() {
			defer wg.Done()
			buf := make([]byte, 32<<10)
			first := true
			for {
				if _, err := s.Read(buf); err != nil {
					errs <- err
					return
				}
				if first {
					ready <- struct{}{}
					first = false
				}
			}
		}()
		go func() {
			defer wg.Done()
			buf := make([]byte, 32<<10)
			for {
				if _, err := s.Write(buf); err != nil {
					errs <- err
					return
				}
			}
		}()
		defer s.Close()
	}
	for range n {
		<-ready // every stream is moving data
	}
	client.Close()
	wg.Wait()
	close(errs)
	for err := range errs {
		if !errors.Is(err, mux.ErrSessionClosed) {
			t.Errorf("stream ended with %v, want ErrSessionClosed", err)
		}
	}
	<-server.Done()
	if !errors.Is(server.Err(), transport.ErrPeerClosed) {
		t.Errorf("server session Err = %v, want ErrPeerClosed", server.Err())
	}
	if !errors.Is(client.Err(), mux.ErrSessionClosed) {
		t.Errorf("client session Err = %v", client.Err())
	}
	if _, err := client.Open(context.Background()); !errors.Is(err, mux.ErrSessionClosed) || !errors.Is(err, net.ErrClosed) {
		t.Errorf("Open after Close: %v", err)
	}
}

func TestDeadlinesOnStreams(t *testing.T) {
	client, server := plextest.SessionPair(t, nil)
	a, b := streamPair(t, client, server)
	a.SetReadDeadline(time.Now().Add(10 * time.Millisecond))
	_, err := a.Read(make([]byte, 1))
	var ne net.Error
	if !errors.Is(err, os.ErrDeadlineExceeded) || !errors.As(err, &ne) || !ne.Timeout() {
		t.Fatalf("read past deadline: %v", err)
	}
	a.SetReadDeadline(time.Time{})
	b.Write([]byte("x"))
	if _, err := io.ReadFull(a, make([]byte, 1)); err != nil {
		t.Fatalf("read after moving deadline: %v", err)
	}
}

func TestHandshakeRefusals(t *testing.T) {
	srv := plextest.NewServer(t, func(s *mux.Session) { <-s.Done() }, &mux.HandlerOptions{
		OriginPatterns: []string{"*.friend.example"},
	})
	for _, tc := range []struct {
		name       string
		protocols  []string
		origin     string
		wantStatus int
		wantBody   string
	}{
		{"no-subprotocol", nil, "", http.StatusBadRequest, "wsplex.v1"},
		{"wrong-subprotocol", []string{"chat"}, "", http.StatusBadRequest, "wsplex.v1"},
		{"foreign-origin", []string{mux.Subprotocol}, "http://evil.example", http.StatusForbidden, "origin"},
		{"allowed-origin", []string{mux.Subprotocol}, "https://app.friend.example", http.StatusSwitchingProtocols, ""},
		{"same-origin", []string{mux.Subprotocol}, srv.HTTP.URL, http.StatusSwitchingProtocols, ""},
		{"no-origin", []string{mux.Subprotocol}, "", http.StatusSwitchingProtocols, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			d := websocket.Dialer{Subprotocols: tc.protocols}
			h := http.Header{}
			if tc.origin != "" {
				h.Set("Origin", tc.origin)
			}
			ws, resp, err := d.DialContext(t.Context(), srv.URL, h)
			if ws != nil {
				ws.Close()
			}
			if resp == nil {
				t.Fatalf("no response: %v", err)
			}
			if resp.StatusCode != tc.wantStatus {
				t.Fatalf("status %d, want %d (%v)", resp.StatusCode, tc.wantStatus, err)
			}
			if tc.wantBody != "" {
				body, _ := io.ReadAll(resp.Body)
				if !strings.Contains(string(body), tc.wantBody) {
					t.Fatalf("body %q does not mention %q", body, tc.wantBody)
				}
			}
		})
	}
	t.Run("plain-get", func(t *testing.T) {
		resp, err := http.Get(srv.HTTP.URL)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusUpgradeRequired {
			t.Fatalf("status %d, want 426", resp.StatusCode)
		}
	})
}

func TestDialSendsHeadersAndQuotesRefusals(t *testing.T) {
	h, err := mux.NewHandler(func(s *mux.Session) { <-s.Done() }, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer h.Close()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Authorization") != "Bearer sesame" {
			http.Error(w, "bad token", http.StatusUnauthorized)
			return
		}
		h.ServeHTTP(w, r)
	}))
	defer srv.Close()
	url := plextest.WebSocketURL(srv.URL)

	_, err = mux.Dial(t.Context(), url, nil)
	if err == nil || !strings.Contains(err.Error(), "401") || !strings.Contains(err.Error(), "bad token") {
		t.Fatalf("dial without token: %v", err)
	}
	s, err := mux.Dial(t.Context(), url, &mux.DialOptions{Header: http.Header{"Authorization": {"Bearer sesame"}}})
	if err != nil {
		t.Fatalf("dial with token: %v", err)
	}
	s.Close()
}

func TestDialContextBoundsHandshake(t *testing.T) {
	addr := silentServer(t)
	ctx, cancel := context.WithTimeout(t.Context(), 50*time.Millisecond)
	defer cancel()
	_, err := mux.Dial(ctx, "ws://"+addr, nil)
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("dial: %v, want context.DeadlineExceeded", err)
	}
}

func TestShutdownDrainsThenCloses(t *testing.T) {
	srv, accepted := plextest.NewSessionServer(t, nil, 1)
	client := srv.Dial(t, nil)
	server := <-accepted
	a, b := streamPair(t, client, server)

	shut := make(chan error, 1)
	go func() { shut <- srv.Handler.Shutdown(context.Background()) }()

	// The peer may open no new streams once the go-away arrives...
	for {
		s, err := client.Open(t.Context())
		if errors.Is(err, mux.ErrGoAway) {
			break
		}
		if err != nil {
			t.Fatalf("Open during shutdown: %v", err)
		}
		// A stream that beat the go-away waits in the server's backlog (this
		// server never accepts); one that came after it is refused.
		s.SetReadDeadline(time.Now().Add(50 * time.Millisecond))
		var re *wsplex.Error
		if _, err := s.Read(make([]byte, 1)); !errors.As(err, &re) && !errors.Is(err, os.ErrDeadlineExceeded) {
			t.Fatalf("stream opened during shutdown: %v", err)
		}
		s.Close()
	}
	// ...which Shutdown sends after it stopped taking sessions: from now
	// on new sessions are refused...
	if _, err := mux.Dial(t.Context(), srv.URL, nil); err == nil || !strings.Contains(err.Error(), "503") {
		t.Fatalf("dial during shutdown: %v, want a 503 refusal", err)
	}
	// ...and the open stream still carries data.
	if _, err := a.Write([]byte("still")); err != nil {
		t.Fatal(err)
	}
	got := make([]byte, 5)
	if _, err := io.ReadFull(b, got); err != nil || string(got) != "still" {
		t.Fatalf("%q, %v", got, err)
	}
	select {
	case err := <-shut:
		t.Fatalf("Shutdown returned %v with a stream open", err)
	default:
	}
	a.Close()
	b.Close()
	if err := <-shut; err != nil {
		t.Fatalf("Shutdown: %v", err)
	}
	<-client.Done()
}

func TestShutdownGivesUpAtDeadline(t *testing.T) {
	srv, accepted := plextest.NewSessionServer(t, nil, 1)
	client := srv.Dial(t, nil)
	streamPair(t, client, <-accepted) // never closed before the deadline
	ctx, cancel := context.WithTimeout(t.Context(), 50*time.Millisecond)
	defer cancel()
	if err := srv.Handler.Shutdown(ctx); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Shutdown: %v", err)
	}
	<-client.Done()
}

var frame = plextest.Frame

// TestBadInputEndsOnlyThatSession sends each session-fatal input of SPEC.md
// §4.8 from a raw client: the server must answer Go Away with code 1 (a
// protocol error), then close the WebSocket with 1002, end that session
// with an error, and leave another session untouched.
func TestBadInputEndsOnlyThatSession(t *testing.T) {
	const (
		syn, fin = 1, 4
		data     = 0
		window   = 1
		reset    = 4
	)
	cat := func(frames ...[]byte) []byte { return bytes.Join(frames, nil) }
	for _, tc := range []struct {
		name string
		in   []byte
	}{
		{"garbage", []byte("GET / HTTP/1.1\r\n\r\n this is not yamux")},
		{"unknown-type", frame(5, 0, 1, 0)},
		{"huge-reset-status", frame(reset, 0, 1, 1<<20)},
		{"reset-for-stream-0", frame(reset, 0, 0, 0)},
		{"data-over-window", cat(frame(window, syn, 1, 0), frame(data, 0, 1, 256<<10+1), make([]byte, 256<<10+1))},
		{"duplicate-syn", cat(frame(window, syn, 1, 0), frame(window, syn, 1, 0))},
		{"second-fin", cat(frame(window, syn, 1, 0), frame(window, fin, 1, 0), frame(window, fin, 1, 0))},
		{"even-id-from-client", frame(window, syn, 2, 0)},
		{"stream-0", frame(window, syn, 0, 0)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			srv, sessions := plextest.NewSessionServer(t, nil, 2)
			good := srv.Dial(t, nil)
			goodServer := <-sessions

			d := websocket.Dialer{Subprotocols: []string{mux.Subprotocol}}
			ws, _, err := d.DialContext(t.Context(), srv.URL, nil)
			if err != nil {
				t.Fatal(err)
			}
			defer ws.Close()
			received := make(chan []byte, 1)
			peerSaw := make(chan error, 1)
			go func() { // read, so that gorilla answers the server's close frame
				var all []byte
				for {
					_, p, err := ws.ReadMessage()
					if err != nil {
						received <- all
						peerSaw <- err
						return
					}
					all = append(all, p...)
				}
			}()
			bad := <-sessions
			// The server may close before the whole message is written.
			ws.WriteMessage(websocket.BinaryMessage, tc.in)
			<-bad.Done()
			if bad.Err() == nil || !strings.Contains(bad.Err().Error(), "protocol error") {
				t.Fatalf("bad session ended with %v, want a protocol error", bad.Err())
			}
			goAway := frame(3, 0, 0, 1)
			if got := <-received; !bytes.HasSuffix(got, goAway) {
				t.Errorf("peer received % x, want it to end with Go Away code 1 (% x)", got, goAway)
			}
			if err := <-peerSaw; !websocket.IsCloseError(err, websocket.CloseProtocolError) {
				t.Fatalf("peer saw %v, want close code 1002", err)
			}
			// The other session is untouched.
			a, b := streamPair(t, good, goodServer)
			a.Write([]byte("ok"))
			if _, err := io.ReadFull(b, make([]byte, 2)); err != nil {
				t.Fatalf("other session: %v", err)
			}
		})
	}
}

func TestTextMessageEndsOnlyThatSession(t *testing.T) {
	srv, sessions := plextest.NewSessionServer(t, nil, 2)
	good := srv.Dial(t, nil)
	goodServer := <-sessions
	d := websocket.Dialer{Subprotocols: []string{mux.Subprotocol}}
	ws, _, err := d.DialContext(t.Context(), srv.URL, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer ws.Close()
	peerSaw := make(chan error, 1)
	go func() {
		for {
			if _, _, err := ws.ReadMessage(); err != nil {
				peerSaw <- err
				return
			}
		}
	}()
	bad := <-sessions
	if err := ws.WriteMessage(websocket.TextMessage, []byte("hello")); err != nil {
		t.Fatal(err)
	}
	<-bad.Done()
	if !errors.Is(bad.Err(), transport.ErrTextMessage) {
		t.Fatalf("bad session ended with %v", bad.Err())
	}
	if err := <-peerSaw; !websocket.IsCloseError(err, websocket.CloseUnsupportedData) {
		t.Fatalf("peer saw %v, want close code 1003", err)
	}
	a, b := streamPair(t, good, goodServer)
	a.Write([]byte("ok"))
	if _, err := io.ReadFull(b, make([]byte, 2)); err != nil {
		t.Fatalf("other session: %v", err)
	}
}

func TestInvalidOptionsAreErrors(t *testing.T) {
	if _, err := mux.NewHandler(func(*mux.Session) {}, &mux.HandlerOptions{Options: mux.Options{WindowSize: 1}}); err == nil {
		t.Error("NewHandler accepted a tiny window")
	}
	if _, err := mux.NewHandler(nil, nil); err == nil {
		t.Error("NewHandler accepted a nil func")
	}
	if _, err := mux.Dial(t.Context(), "ws://127.0.0.1:1", &mux.DialOptions{Options: mux.Options{MaxStreams: -1}}); err == nil {
		t.Error("Dial accepted negative MaxStreams")
	}
	if _, err := mux.NewHandler(func(*mux.Session) {}, &mux.HandlerOptions{MaxSessions: -1}); err == nil {
		t.Error("NewHandler accepted negative MaxSessions")
	}
	for _, o := range []mux.Options{{WindowSize: 1}, {MaxStreams: -1}, {MessageSize: -1}, {HoldDelay: -1}} {
		if err := o.Validate(); err == nil {
			t.Errorf("Validate accepted %+v", o)
		}
	}
	if err := (*mux.Options)(nil).Validate(); err != nil {
		t.Errorf("Validate(nil) = %v", err)
	}
}

// TestStatusCarriesDetailsAndTrailers ends a stream with a status that
// has details and trailers: the peer's read returns all of them.
func TestStatusCarriesDetailsAndTrailers(t *testing.T) {
	client, server := plextest.SessionPair(t, nil)
	a, b := streamPair(t, client, server)
	detail, err := anypb.New(wrapperspb.String("retry in 1s"))
	if err != nil {
		t.Fatal(err)
	}
	a.Reset(&wsplex.Error{Code: wsplex.CodeUnavailable, Message: "busy", Details: []*anypb.Any{detail},
		Trailers: wsplex.Metadata{"retry-after": {"1"}}})
	var e *wsplex.Error
	if _, err := b.Read(make([]byte, 1)); !errors.As(err, &e) {
		t.Fatalf("peer read %v", err)
	}
	if e.Code != wsplex.CodeUnavailable || e.Message != "busy" || !e.Remote || e.Trailers.Get("Retry-After") != "1" ||
		len(e.Details) != 1 || !proto.Equal(e.Details[0], detail) {
		t.Fatalf("peer read %+v", e)
	}
	// A clean end carries trailers too.
	c, d := streamPair(t, client, server)
	c.Reset(&wsplex.Error{Code: wsplex.CodeOK, Trailers: wsplex.Metadata{"count": {"3"}}})
	if _, err := d.Read(make([]byte, 1)); err != io.EOF {
		t.Fatalf("read after a clean reset: %v", err)
	}
	if st := d.PeerStatus(); st == nil || st.Code != wsplex.CodeOK || st.Trailers.Get("count") != "3" {
		t.Fatalf("PeerStatus = %+v", st)
	}
}

// TestLongStatusIsCut ends a stream with a status over the reset frame's
// 16 KiB limit: it arrives cut, with its code, and the session lives.
func TestLongStatusIsCut(t *testing.T) {
	client, server := plextest.SessionPair(t, nil)
	a, b := streamPair(t, client, server)
	long := strings.Repeat("é", 10000) // 20,000 bytes, over the 16 KiB limit
	a.Reset(&wsplex.Error{Code: wsplex.CodeInternal, Message: long, Trailers: wsplex.Metadata{"k": {"v"}}})
	var e *wsplex.Error
	if _, err := b.Read(make([]byte, 1)); !errors.As(err, &e) || e.Code != wsplex.CodeInternal || len(e.Message) > 16<<10 {
		t.Fatalf("peer read: %v", err)
	}
	kept, _, _ := strings.Cut(e.Message, "...")
	if !strings.HasPrefix(long, kept) || len(kept) < 15<<10 || !strings.Contains(e.Message, "trailers dropped") || e.Trailers != nil {
		t.Fatalf("peer read a message of %d bytes, trailers %v", len(e.Message), e.Trailers)
	}
	if b.Session().Err() != nil {
		t.Fatalf("session ended: %v", b.Session().Err())
	}
}

func TestResetReasonWithInvalidUTF8StillArrives(t *testing.T) {
	client, server := plextest.SessionPair(t, nil)
	a, b := streamPair(t, client, server)
	if err := a.Reset(wsplex.NewError(wsplex.CodeInternal, "open /tmp/\xff: failed")); err != nil {
		t.Fatal(err)
	}
	var re *wsplex.Error
	if _, err := b.Read(make([]byte, 1)); !errors.As(err, &re) || re.Code != wsplex.CodeInternal ||
		re.Message != "open /tmp/\uFFFD: failed" {
		t.Fatalf("peer read %v, want the status with the bad byte replaced", err)
	}
}

func TestMaxStreamsCountsStreamsThePeerKeeps(t *testing.T) {
	// The server closes every stream it accepts at once, but the client
	// never ends its halves: yamux must keep them, so they still count, or
	// a peer could pile up any number of them.
	client, server := plextest.SessionPair(t, &mux.Options{MaxStreams: 2})
	var kept []*mux.Stream
	for range 2 {
		a, err := client.Open(t.Context())
		if err != nil {
			t.Fatal(err)
		}
		kept = append(kept, a)
		b, err := server.Accept(t.Context())
		if err != nil {
			t.Fatal(err)
		}
		b.Close()
	}
	extra, err := client.Open(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	defer extra.Close()
	ctx, cancel := context.WithCancel(t.Context())
	accepted := make(chan *mux.Stream, 1)
	go func() {
		s, _ := server.Accept(ctx)
		accepted <- s
	}()
	var re *wsplex.Error
	if _, err := extra.Read(make([]byte, 1)); !errors.As(err, &re) || re.Code != wsplex.CodeResourceExhausted {
		t.Fatalf("third stream: %v, want RESOURCE_EXHAUSTED", err)
	}
	// Once the client ends its halves, there is room again.
	for _, a := range kept {
		a.Close()
	}
	extra.Close()
	var s *mux.Stream
	for s == nil {
		next, err := client.Open(t.Context())
		if err != nil {
			t.Fatal(err)
		}
		defer next.Close()
		select {
		case s = <-accepted:
		case <-next.Context().Done(): // refused while the closes were in flight
			next.Close()
		}
	}
	cancel()
	if s == nil {
		t.Fatal("no stream accepted after the peer closed its halves")
	}
	s.Close()
}

func TestCompressionCarriesData(t *testing.T) {
	var wire countingConns
	srv := plextest.NewServer(t, func(s *mux.Session) {
		st, err := s.Accept(s.Context())
		if err != nil {
			return
		}
		defer st.Close()
		io.Copy(st, st)
	}, &mux.HandlerOptions{Options: mux.Options{Compression: true}})
	dial := func(compress bool) (got []byte, written int64) {
		wire = countingConns{}
		sess := srv.Dial(t, &mux.DialOptions{
			Options:        mux.Options{Compression: compress},
			NetDialContext: wire.dial,
		})
		defer sess.Close()
		s, err := sess.Open(t.Context())
		if err != nil {
			t.Fatal(err)
		}
		defer s.Close()
		want := bytes.Repeat([]byte("compressible protobuf text, "), 4000)
		go func() {
			s.Write(want)
			s.CloseWrite()
		}()
		got, err = io.ReadAll(s)
		if err != nil || !bytes.Equal(got, want) {
			t.Fatalf("echo: %d bytes, %v", len(got), err)
		}
		return got, wire.written()
	}
	_, plain := dial(false)
	_, deflated := dial(true)
	if deflated*4 > plain {
		t.Fatalf("client wrote %d bytes with compression, %d without: not compressed", deflated, plain)
	}
}

// countingConns counts the bytes the client writes to TCP.
type countingConns struct {
	mu sync.Mutex
	n  int64
}

func (c *countingConns) dial(ctx context.Context, network, addr string) (net.Conn, error) {
	conn, err := (&net.Dialer{}).DialContext(ctx, network, addr)
	if err != nil {
		return nil, err
	}
	return &countingConn{Conn: conn, c: c}, nil
}

func (c *countingConns) written() int64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.n
}

type countingConn struct {
	net.Conn
	c *countingConns
}

func (cc *countingConn) Write(p []byte) (int, error) {
	n, err := cc.Conn.Write(p)
	cc.c.mu.Lock()
	cc.c.n += int64(n)
	cc.c.mu.Unlock()
	return n, err
}

// TestPeerCloseUnderWritesReportsPeerClosed closes the server side while
// the client is writing as fast as it can. However the close frame and the
// writes interleave, the client's session must say the peer closed it,
// not report the write that lost the race.
func TestPeerCloseUnderWritesReportsPeerClosed(t *testing.T) {
	for range 20 {
		client, server := plextest.SessionPair(t, nil)
		a, b := streamPair(t, client, server)
		go io.Copy(b, b) // echo, so that both sides are writing
		go io.Copy(io.Discard, a)
		go func() {
			buf := make([]byte, 8<<10)
			for {
				if _, err := a.Write(buf); err != nil {
					return
				}
			}
		}()
		server.Close()
		<-client.Done()
		if !errors.Is(client.Err(), transport.ErrPeerClosed) {
			t.Fatalf("client session ended with %v, want transport.ErrPeerClosed", client.Err())
		}
	}
}
