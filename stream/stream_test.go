package stream_test

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"
	"golang.org/x/net/nettest"
	"google.golang.org/protobuf/encoding/protodelim"
	"google.golang.org/protobuf/types/known/wrapperspb"

	"github.com/wsplex/wsplex"
	"github.com/wsplex/wsplex/internal/plextest"
	"github.com/wsplex/wsplex/mux"
	wsplexv1 "github.com/wsplex/wsplex/proto/wsplex/v1"
	"github.com/wsplex/wsplex/stream"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// serve runs routes on the server side of a loopback session and returns
// the client side.
func serve(t testing.TB, routes *stream.Router) *mux.Session {
	t.Helper()
	srv := plextest.NewServer(t, func(s *mux.Session) { routes.Serve(s) }, nil)
	return srv.Dial(t, nil)
}

func open(t testing.TB, sess *mux.Session, name string, md wsplex.Metadata) *stream.Stream {
	t.Helper()
	s, err := stream.Open(t.Context(), sess, name, &stream.OpenOptions{Metadata: md})
	if err != nil {
		t.Fatalf("Open %s: %v", name, err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func echo(ctx context.Context, s *stream.Stream) error {
	for {
		var m wrapperspb.StringValue
		if err := s.Receive(&m); err == io.EOF {
			return nil
		} else if err != nil {
			return err
		}
		if err := s.Send(&m); err != nil {
			return err
		}
	}
}

func TestEchoMessages(t *testing.T) {
	routes := stream.NewRouter(nil)
	routes.HandleFunc("/echo", echo)
	s := open(t, serve(t, routes), "/echo", nil)
	for _, text := range []string{"hello", "", strings.Repeat("x", 100000)} {
		if err := s.Send(wrapperspb.String(text)); err != nil {
			t.Fatal(err)
		}
		var got wrapperspb.StringValue
		if err := s.Receive(&got); err != nil {
			t.Fatal(err)
		}
		if got.Value != text {
			t.Fatalf("echo of %d bytes came back as %d", len(text), len(got.Value))
		}
	}
	s.CloseWrite()
	if err := s.Receive(new(wrapperspb.StringValue)); err != io.EOF {
		t.Fatalf("after CloseWrite: %v, want io.EOF", err)
	}
}

func TestUnknownNameIsNotFound(t *testing.T) {
	routes := stream.NewRouter(nil)
	routes.HandleFunc("/echo", echo)
	sess := serve(t, routes)
	s := open(t, sess, "/nope", nil)
	_, err := s.Response(t.Context())
	var e *wsplex.Error
	if wsplex.CodeOf(err) != wsplex.CodeNotFound || !errors.As(err, &e) || !strings.Contains(e.Message, "/nope") || !e.Remote {
		t.Fatalf("Response: %v, want ErrNotFound naming /nope", err)
	}
	if err := s.Receive(new(wrapperspb.StringValue)); wsplex.CodeOf(err) != wsplex.CodeNotFound {
		t.Fatalf("Receive: %v", err)
	}
	// The refusal also resets the stream, so sends fail rather than pile up.
	for err == nil || wsplex.CodeOf(err) == wsplex.CodeNotFound && false {
		err = s.Send(wrapperspb.String("x"))
	}
	if wsplex.CodeOf(err) != wsplex.CodeNotFound {
		t.Fatalf("Send after refusal: %v", err)
	}
	// The session is fine.
	ok := open(t, sess, "/echo", nil)
	ok.Send(wrapperspb.String("hi"))
	if err := ok.Receive(new(wrapperspb.StringValue)); err != nil {
		t.Fatal(err)
	}
}

func TestPatterns(t *testing.T) {
	routes := stream.NewRouter(nil)
	reply := func(format string, keys ...string) stream.HandlerFunc {
		return func(ctx context.Context, s *stream.Stream) error {
			args := []any{}
			for _, k := range keys {
				args = append(args, s.PathValue(k))
			}
			return s.Send(wrapperspb.String(fmt.Sprintf(format, args...)))
		}
	}
	routes.Handle("/chat/room/lobby", reply("lobby"))
	routes.Handle("/chat/room/{id}", reply("room %s", "id"))
	routes.Handle("/files/{path...}", reply("file %s", "path"))
	routes.Handle("/echo.v1.Echo/Say", reply("say"))
	routes.Handle("/tree/", reply("tree"))
	routes.Handle("/pair/{a}/and/{b}", reply("pair %s %s (%q)", "a", "b", "c"))
	routes.Handle("/exact/{$}", reply("exact %q", "$"))
	sess := serve(t, routes)
	for name, want := range map[string]string{
		"/chat/room/lobby":  "lobby",
		"/chat/room/42":     "room 42",
		"/files/a/b/c.txt":  "file a/b/c.txt",
		"/echo.v1.Echo/Say": "say",
		"/tree/x/y":         "tree",
		"/pair/1/and/2":     `pair 1 2 ("")`,
		"/exact/":           `exact ""`,
	} {
		s := open(t, sess, name, nil)
		var got wrapperspb.StringValue
		if err := s.Receive(&got); err != nil || got.Value != want {
			t.Errorf("%s: %q, %v; want %q", name, got.Value, err, want)
		}
	}
	s := open(t, sess, "/chat/room/42/extra", nil)
	if err := s.Receive(new(wrapperspb.StringValue)); wsplex.CodeOf(err) != wsplex.CodeNotFound {
		t.Errorf("/chat/room/42/extra: %v, want ErrNotFound", err)
	}
}

func TestMetadataBothWays(t *testing.T) {
	routes := stream.NewRouter(&stream.Options{
		OnOpen: func(ctx context.Context, s *stream.Stream) (wsplex.Metadata, error) {
			md := wsplex.Metadata{}
			md.Set("Got", s.Metadata().Values("x-tag")...)
			return md, nil
		},
	})
	routes.HandleFunc("/md", func(ctx context.Context, s *stream.Stream) error {
		return s.Send(wrapperspb.String("ok"))
	})
	md := wsplex.Metadata{}
	md.Add("X-Tag", "a")
	md.Add("x-tag", "b")
	s := open(t, serve(t, routes), "/md", md)
	resp, err := s.Response(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if got := resp.Values("got"); len(got) != 2 || got[0] != "a" || got[1] != "b" {
		t.Fatalf("response metadata %v", resp)
	}
}

func TestOnOpenRefusesByNameAndMetadata(t *testing.T) {
	routes := stream.NewRouter(&stream.Options{
		OnOpen: func(ctx context.Context, s *stream.Stream) (wsplex.Metadata, error) {
			if s.Metadata().Get("token") != "sesame" {
				return nil, wsplex.Errorf(wsplex.CodePermissionDenied, "no access to %s", s.Name())
			}
			return nil, nil
		},
	})
	called := make(chan struct{}, 2)
	routes.HandleFunc("/secret", func(ctx context.Context, s *stream.Stream) error {
		called <- struct{}{}
		return nil
	})
	sess := serve(t, routes)
	s := open(t, sess, "/secret", nil)
	var e *wsplex.Error
	if _, err := s.Response(t.Context()); wsplex.CodeOf(err) != wsplex.CodePermissionDenied || !errors.As(err, &e) || e.Message != "no access to /secret" {
		t.Fatalf("Response: %v", err)
	}
	s = open(t, sess, "/secret", wsplex.Metadata{"token": {"sesame"}})
	if _, err := s.Response(t.Context()); err != nil {
		t.Fatalf("Response: %v", err)
	}
	<-called
	if len(called) != 0 {
		t.Fatal("handler ran for the refused stream")
	}
}

// TestOnOpenAuthorizesBySessionIdentity refuses streams by the identity
// the server's Authenticate hook gave the session: bob may use /docs/ but
// not /admin/, and the handler sees who he is.
func TestOnOpenAuthorizesBySessionIdentity(t *testing.T) {
	routes := stream.NewRouter(&stream.Options{
		OnOpen: func(ctx context.Context, s *stream.Stream) (wsplex.Metadata, error) {
			if strings.HasPrefix(s.Name(), "/admin/") && mux.AuthInfo(ctx) != "root" {
				return nil, wsplex.Errorf(wsplex.CodePermissionDenied, "%v may not open %s", mux.AuthInfo(ctx), s.Name())
			}
			return nil, nil
		},
	})
	routes.HandleFunc("/", func(ctx context.Context, s *stream.Stream) error {
		return s.Send(wrapperspb.String(fmt.Sprint(mux.AuthInfo(ctx))))
	})
	srv := plextest.NewServer(t, func(s *mux.Session) { routes.Serve(s) }, &mux.HandlerOptions{
		Authenticate: func(r *http.Request) (any, error) { return r.URL.Query().Get("user"), nil },
	})
	bob, err := mux.Dial(t.Context(), srv.URL+"?user=bob", nil)
	if err != nil {
		t.Fatal(err)
	}
	defer bob.Close()

	var got wrapperspb.StringValue
	if err := open(t, bob, "/docs/1", nil).Receive(&got); err != nil || got.Value != "bob" {
		t.Fatalf("/docs/1: %q, %v", got.Value, err)
	}
	err = open(t, bob, "/admin/users", nil).Receive(&got)
	var e *wsplex.Error
	if wsplex.CodeOf(err) != wsplex.CodePermissionDenied || !errors.As(err, &e) || e.Message != "bob may not open /admin/users" {
		t.Fatalf("/admin/users: %v, want permission denied", err)
	}
}

func TestHandlerErrorBeforeAnyMessage(t *testing.T) {
	routes := stream.NewRouter(nil)
	routes.HandleFunc("/auth", func(ctx context.Context, s *stream.Stream) error {
		return wsplex.NewError(wsplex.CodeUnauthenticated, "bad token")
	})
	s := open(t, serve(t, routes), "/auth", nil)
	if err := s.Receive(new(wrapperspb.StringValue)); wsplex.CodeOf(err) != wsplex.CodeUnauthenticated {
		t.Fatalf("Receive: %v", err)
	}
}

func TestHandlerErrorReachesOpenerAfterItsMessages(t *testing.T) {
	routes := stream.NewRouter(nil)
	routes.HandleFunc("/fail", func(ctx context.Context, s *stream.Stream) error {
		s.Send(wrapperspb.String("one"))
		s.Send(wrapperspb.String("two"))
		return wsplex.Errorf(wsplex.CodePermissionDenied, "no more for %s", "you")
	})
	s := open(t, serve(t, routes), "/fail", nil)
	for _, want := range []string{"one", "two"} {
		var got wrapperspb.StringValue
		if err := s.Receive(&got); err != nil || got.Value != want {
			t.Fatalf("got %q, %v; want %q", got.Value, err, want)
		}
	}
	err := s.Receive(new(wrapperspb.StringValue))
	var e *wsplex.Error
	if !errors.As(err, &e) || e.Code != wsplex.CodePermissionDenied || e.Message != "no more for you" || !e.Remote {
		t.Fatalf("end of stream: %v", err)
	}
}

func TestCancelReachesHandler(t *testing.T) {
	routes := stream.NewRouter(nil)
	result := make(chan error, 1)
	routes.HandleFunc("/wait", func(ctx context.Context, s *stream.Stream) error {
		s.Send(wrapperspb.String("ready"))
		<-ctx.Done() // cancelled although the handler never reads
		var err error
		for err == nil {
			err = s.Send(wrapperspb.String("still here?"))
		}
		result <- err
		return err
	})
	s := open(t, serve(t, routes), "/wait", nil)
	if err := s.Receive(new(wrapperspb.StringValue)); err != nil {
		t.Fatal(err)
	}
	s.Cancel()
	if err := <-result; wsplex.CodeOf(err) != wsplex.CodeCanceled || !errors.Is(err, context.Canceled) {
		t.Fatalf("handler's Send after cancel: %v", err)
	}
	if err := s.Receive(new(wrapperspb.StringValue)); !errors.Is(err, net.ErrClosed) {
		t.Fatalf("opener's Receive after Cancel: %v, want net.ErrClosed", err)
	}
}

func TestHandlerContextEndsWithSession(t *testing.T) {
	routes := stream.NewRouter(nil)
	started := make(chan struct{})
	cause := make(chan error, 1)
	routes.HandleFunc("/long", func(ctx context.Context, s *stream.Stream) error {
		close(started)
		<-ctx.Done()
		cause <- context.Cause(ctx)
		return nil
	})
	sess := serve(t, routes)
	s := open(t, sess, "/long", nil)
	s.Send(wrapperspb.String("go")) // make sure the open request left
	<-started
	sess.Close()
	if err := <-cause; err == nil {
		t.Fatal("no cause")
	}
}

func TestPanicResetsOnlyItsStream(t *testing.T) {
	var logs bytes.Buffer
	var logMu sync.Mutex
	logger := slog.New(slog.NewTextHandler(lockedWriter{&logs, &logMu}, nil))
	routes := stream.NewRouter(&stream.Options{Logger: logger})
	routes.HandleFunc("/panic", func(ctx context.Context, s *stream.Stream) error { panic("kaboom") })
	routes.HandleFunc("/echo", echo)
	sess := serve(t, routes)

	other := open(t, sess, "/echo", nil)
	s := open(t, sess, "/panic", nil)
	if err := s.Receive(new(wrapperspb.StringValue)); wsplex.CodeOf(err) != wsplex.CodeInternal {
		t.Fatalf("panicking handler: %v, want ErrInternal", err)
	}
	other.Send(wrapperspb.String("alive"))
	if err := other.Receive(new(wrapperspb.StringValue)); err != nil {
		t.Fatalf("other stream: %v", err)
	}
	logMu.Lock()
	defer logMu.Unlock()
	if !strings.Contains(logs.String(), "kaboom") || !strings.Contains(logs.String(), "/panic") {
		t.Fatalf("panic not logged: %s", logs.String())
	}
}

type lockedWriter struct {
	w  io.Writer
	mu *sync.Mutex
}

func (l lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}

func TestMaxMessageSizeBothSides(t *testing.T) {
	routes := stream.NewRouter(&stream.Options{MaxMessageSize: 1 << 10})
	handlerErr := make(chan error, 1)
	routes.HandleFunc("/small", func(ctx context.Context, s *stream.Stream) error {
		if err := s.Send(wrapperspb.String(strings.Repeat("x", 2<<10))); wsplex.CodeOf(err) != wsplex.CodeResourceExhausted {
			t.Errorf("handler sending too much: %v", err)
		}
		err := s.Receive(new(wrapperspb.StringValue))
		handlerErr <- err
		return err
	})
	// The opener allows larger messages, so the router's limit must catch it.
	s, err := stream.Open(t.Context(), serve(t, routes), "/small", &stream.OpenOptions{Options: stream.Options{MaxMessageSize: 1 << 20}})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	s.Send(wrapperspb.String(strings.Repeat("y", 4<<10)))
	if err := <-handlerErr; wsplex.CodeOf(err) != wsplex.CodeResourceExhausted || !strings.Contains(err.Error(), "limit") {
		t.Fatalf("handler receiving too much: %v", err)
	}
	if err := s.Receive(new(wrapperspb.StringValue)); wsplex.CodeOf(err) != wsplex.CodeResourceExhausted {
		t.Fatalf("opener after its oversized message: %v", err)
	}
}

func TestRawMode(t *testing.T) {
	routes := stream.NewRouter(nil)
	routes.HandleFunc("/raw", func(ctx context.Context, s *stream.Stream) error {
		_, err := io.Copy(s, s)
		return err
	})
	s := open(t, serve(t, routes), "/raw", nil)
	want := bytes.Repeat([]byte{1, 2, 3, 250}, 300000)
	go func() {
		s.Write(want)
		s.CloseWrite()
	}()
	got, err := io.ReadAll(s)
	if err != nil || !bytes.Equal(got, want) {
		t.Fatalf("raw echo: %d bytes, %v", len(got), err)
	}
}

func TestRawStreamConformance(t *testing.T) {
	// The whole suite, on a named stream in raw mode.
	nettest.TestConn(t, func() (c1, c2 net.Conn, stop func(), err error) {
		routes := stream.NewRouter(nil)
		handed := make(chan *stream.Stream, 1)
		done := make(chan struct{})
		routes.HandleFunc("/pipe", func(ctx context.Context, s *stream.Stream) error {
			handed <- s
			// Not ctx: the stream must outlive the peer's Close (which
			// cancels ctx) until nettest has read everything.
			<-done
			return nil
		})
		h, err := mux.NewHandler(func(s *mux.Session) { routes.Serve(s) }, nil)
		if err != nil {
			return nil, nil, nil, err
		}
		srv := httptest.NewServer(h)
		sess, err := mux.Dial(context.Background(), plextest.WebSocketURL(srv.URL), nil)
		if err != nil {
			return nil, nil, nil, err
		}
		a, err := stream.Open(context.Background(), sess, "/pipe", nil)
		if err != nil {
			return nil, nil, nil, err
		}
		b := <-handed
		stop = func() {
			close(done)
			a.Close()
			b.Close()
			sess.Close()
			h.Close()
			srv.Close()
		}
		return a, b, stop, nil
	})
}

func TestBadOpenRequestsResetOnlyTheirStream(t *testing.T) {
	routes := stream.NewRouter(&stream.Options{MaxHeaderSize: 256, OpenTimeout: 100 * time.Millisecond})
	routes.HandleFunc("/echo", echo)
	sess := serve(t, routes)
	good := open(t, sess, "/echo", nil)

	for _, tc := range []struct {
		name  string
		write func(w io.Writer)
		want  wsplex.Code
	}{
		{"garbage", func(w io.Writer) { w.Write([]byte{5, 0xff, 0xff, 0xff, 0xff, 0xff}) }, wsplex.CodeInvalidArgument},
		{"truncated", func(w io.Writer) { w.Write([]byte{50, 10}); w.(interface{ CloseWrite() error }).CloseWrite() }, wsplex.CodeInvalidArgument},
		{"oversized", func(w io.Writer) {
			protodelim.MarshalTo(w, &wsplexv1.OpenRequest{Name: "/" + strings.Repeat("a", 1000)})
		}, wsplex.CodeResourceExhausted},
		{"no-slash", func(w io.Writer) { protodelim.MarshalTo(w, &wsplexv1.OpenRequest{Name: "echo"}) }, wsplex.CodeInvalidArgument},
		{"control-char", func(w io.Writer) { protodelim.MarshalTo(w, &wsplexv1.OpenRequest{Name: "/ec\x00ho"}) }, wsplex.CodeInvalidArgument},
		{"silent", func(w io.Writer) {}, wsplex.CodeDeadlineExceeded},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ms, err := sess.Open(t.Context())
			if err != nil {
				t.Fatal(err)
			}
			defer ms.Close()
			tc.write(ms)
			var resp wsplexv1.OpenResponse
			if err := protodelim.UnmarshalFrom(bufio.NewReader(ms), &resp); err != nil {
				t.Fatalf("no open response: %v", err)
			}
			got := &wsplex.Error{Code: wsplex.Code(resp.GetStatus().GetCode()), Message: resp.GetStatus().GetMessage()}
			if got.Code != tc.want || got.Message == "" {
				t.Fatalf("status %v, want %v with a message", got, tc.want)
			}
			// The stream is reset after the answer.
			var re *wsplex.Error
			if _, err := io.ReadAll(ms); !errors.As(err, &re) || re.Code != got.Code {
				t.Fatalf("after the answer: %v", err)
			}
		})
	}
	good.Send(wrapperspb.String("still fine"))
	if err := good.Receive(new(wrapperspb.StringValue)); err != nil {
		t.Fatalf("good stream: %v", err)
	}
	if sess.Err() != nil {
		t.Fatalf("session: %v", sess.Err())
	}
}

func TestServerPushesToManyClients(t *testing.T) {
	const clients = 20
	srv, srvSessions := plextest.NewSessionServer(t, nil, clients)

	var got sync.WaitGroup
	var clientSessions []*mux.Session
	t.Cleanup(func() {
		for _, s := range clientSessions {
			s.Close()
		}
		got.Wait()
	})
	received := make(chan string, clients)
	for i := range clients {
		routes := stream.NewRouter(nil)
		routes.HandleFunc("/notify/{topic}", func(ctx context.Context, s *stream.Stream) error {
			var m wrapperspb.StringValue
			if err := s.Receive(&m); err != nil {
				return err
			}
			received <- fmt.Sprintf("%d:%s:%s", i, s.PathValue("topic"), m.Value)
			return nil
		})
		sess := srv.Dial(t, nil)
		got.Add(1)
		clientSessions = append(clientSessions, sess)
		go func() {
			defer got.Done()
			routes.Serve(sess)
		}()
	}
	for range clients {
		sess := <-srvSessions
		s, err := stream.Open(t.Context(), sess, "/notify/news", nil)
		if err != nil {
			t.Fatal(err)
		}
		if err := s.Send(wrapperspb.String("hello")); err != nil {
			t.Fatal(err)
		}
		s.CloseWrite()
		if err := s.Receive(new(wrapperspb.StringValue)); err != io.EOF {
			t.Fatalf("push stream end: %v", err)
		}
		s.Close()
	}
	seen := map[string]bool{}
	for range clients {
		seen[<-received] = true
	}
	for i := range clients {
		if !seen[fmt.Sprintf("%d:news:hello", i)] {
			t.Errorf("client %d got no push", i)
		}
	}
}

func TestThousandStreamsBothWays(t *testing.T) {
	const n, msgs, size = 1000, 4, 8 << 10 // 32 KiB each way per stream
	sum := func(ctx context.Context, s *stream.Stream) error {
		h := sha256.New()
		for {
			var m wrapperspb.BytesValue
			err := s.Receive(&m)
			if err == io.EOF {
				return s.Send(wrapperspb.Bytes(h.Sum(nil)))
			}
			if err != nil {
				return err
			}
			h.Write(m.Value)
		}
	}
	serverRoutes := stream.NewRouter(nil)
	serverRoutes.HandleFunc("/sum/{i}", sum)
	clientRoutes := stream.NewRouter(nil)
	clientRoutes.HandleFunc("/sum/{i}", sum)

	srvSess := make(chan *mux.Session, 1)
	var serving sync.WaitGroup
	srv := plextest.NewServer(t, func(s *mux.Session) {
		srvSess <- s
		serverRoutes.Serve(s)
	}, nil)
	client := srv.Dial(t, nil)
	serving.Add(1)
	go func() {
		defer serving.Done()
		clientRoutes.Serve(client)
	}()
	defer serving.Wait()
	defer client.Close()
	server := <-srvSess

	run := func(sess *mux.Session, i int) error {
		s, err := stream.Open(context.Background(), sess, fmt.Sprintf("/sum/%d", i), nil)
		if err != nil {
			return err
		}
		defer s.Close()
		h := sha256.New()
		for j := range msgs {
			b := bytes.Repeat([]byte{byte(i), byte(j), byte(i >> 8)}, size/3)
			h.Write(b)
			if err := s.Send(wrapperspb.Bytes(b)); err != nil {
				return err
			}
		}
		s.CloseWrite()
		var got wrapperspb.BytesValue
		if err := s.Receive(&got); err != nil {
			return err
		}
		if !bytes.Equal(got.Value, h.Sum(nil)) {
			return fmt.Errorf("stream %d: checksum mismatch", i)
		}
		return nil
	}
	var wg sync.WaitGroup
	errs := make(chan error, 2*n)
	for i := range n {
		for _, sess := range []*mux.Session{client, server} {
			wg.Add(1)
			go func() {
				defer wg.Done()
				if err := run(sess, i); err != nil {
					errs <- err
				}
			}()
		}
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}

func TestHandlerErrorWithInvalidUTF8IsNotACleanEnd(t *testing.T) {
	routes := stream.NewRouter(nil)
	routes.HandleFunc("/file", func(ctx context.Context, s *stream.Stream) error {
		return errors.New("open /tmp/\xff: no such file") // OS errors carry raw bytes
	})
	s := open(t, serve(t, routes), "/file", nil)
	err := s.Receive(new(wrapperspb.StringValue))
	if wsplex.CodeOf(err) != wsplex.CodeUnknown || !strings.Contains(err.Error(), "no such file") {
		t.Fatalf("Receive: %v, want ErrUnknown with the handler's message", err)
	}
}

func TestResponseContextEndsOnlyTheWait(t *testing.T) {
	release := make(chan struct{})
	routes := stream.NewRouter(&stream.Options{
		OnOpen: func(ctx context.Context, s *stream.Stream) (wsplex.Metadata, error) {
			<-release // answer late
			return nil, nil
		},
	})
	routes.HandleFunc("/late", func(ctx context.Context, s *stream.Stream) error {
		return s.Send(wrapperspb.String("finally"))
	})
	s := open(t, serve(t, routes), "/late", nil)
	ctx, cancel := context.WithTimeout(t.Context(), 20*time.Millisecond)
	defer cancel()
	if _, err := s.Response(ctx); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Response: %v, want context.DeadlineExceeded", err)
	}
	close(release)
	// The expired ctx must not leave a deadline behind on the stream.
	var got wrapperspb.StringValue
	if err := s.Receive(&got); err != nil || got.Value != "finally" {
		t.Fatalf("Receive after the wait: %q, %v", got.Value, err)
	}
}

// answering is a handler that answers the open itself.
type answering func(ctx context.Context, s *stream.Stream) error

func (f answering) ServeStream(ctx context.Context, s *stream.Stream) error { return f(ctx, s) }
func (answering) AnswersOpen() bool                                         { return true }

// A handler that implements Answerer shapes the answer: its response
// metadata leaves with its first message, and an error before any
// message is the answer itself, with its metadata.
func TestAnswererShapesTheAnswer(t *testing.T) {
	routes := stream.NewRouter(nil)
	routes.Handle("/shaped", answering(func(ctx context.Context, s *stream.Stream) error {
		var m wrapperspb.StringValue
		if err := s.Receive(&m); err != nil {
			return err
		}
		s.ResponseMetadata().Set("x-seen", m.GetValue())
		return s.Send(&m)
	}))
	routes.Handle("/refusing", answering(func(ctx context.Context, s *stream.Stream) error {
		return &wsplex.Error{Code: wsplex.CodeFailedPrecondition, Message: "not now",
			Metadata: wsplex.Metadata{"x-why": {"busy"}}, Trailers: wsplex.Metadata{"x-after": {"1"}}}
	}))
	routes.Handle("/trailing", answering(func(ctx context.Context, s *stream.Stream) error {
		s.ResponseMetadata().Set("x-head", "h")
		s.Send(wrapperspb.String("one"))
		return &wsplex.Error{Code: wsplex.CodeOK, Trailers: wsplex.Metadata{"x-count": {"1"}}}
	}))
	sess := serve(t, routes)

	s := open(t, sess, "/shaped", nil)
	s.Send(wrapperspb.String("hello"))
	md, err := s.Response(t.Context())
	if err != nil || md.Get("x-seen") != "hello" {
		t.Fatalf("answer %v, %v: want the handler's metadata, set after it read the request", md, err)
	}

	r := open(t, sess, "/refusing", nil)
	var e *wsplex.Error
	if _, err := r.Response(t.Context()); !errors.As(err, &e) || e.Code != wsplex.CodeFailedPrecondition ||
		e.Metadata.Get("x-why") != "busy" || e.Trailers.Get("x-after") != "1" {
		t.Fatalf("refusal %+v", err)
	}

	tr := open(t, sess, "/trailing", nil)
	if md, err := tr.Response(t.Context()); err != nil || md.Get("x-head") != "h" {
		t.Fatalf("answer %v, %v", md, err)
	}
	var m wrapperspb.StringValue
	if err := tr.Receive(&m); err != nil || m.GetValue() != "one" {
		t.Fatalf("message %v, %v", &m, err)
	}
	if err := tr.Receive(&m); err != io.EOF || tr.Trailers().Get("x-count") != "1" {
		t.Fatalf("end %v, trailers %v", err, tr.Trailers())
	}
}

// SendBytes and ReceiveBytes carry messages encoded by another codec.
func TestBytesMessages(t *testing.T) {
	routes := stream.NewRouter(nil)
	routes.HandleFunc("/upper", func(ctx context.Context, s *stream.Stream) error {
		for {
			var got []byte
			err := s.ReceiveBytes(func(b []byte) error {
				got = bytes.ToUpper(b)
				return nil
			})
			if err == io.EOF {
				return nil
			} else if err != nil {
				return err
			}
			if err := s.SendBytes(got); err != nil {
				return err
			}
		}
	})
	s := open(t, serve(t, routes), "/upper", nil)
	for _, msg := range []string{`{"a":1}`, "", strings.Repeat("x", 100<<10)} {
		if err := s.SendBytes([]byte(msg)); err != nil {
			t.Fatal(err)
		}
		var got string
		if err := s.ReceiveBytes(func(b []byte) error { got = string(b); return nil }); err != nil || got != strings.ToUpper(msg) {
			t.Fatalf("got %d bytes, %v", len(got), err)
		}
	}
}

// TestDetach checks that a handler that detaches its stream hands it on
// open: the holder answers, writes and closes it after the handler
// returned, and learns from the stream's context when the session ends.
func TestDetach(t *testing.T) {
	type held struct {
		ctx context.Context
		s   *stream.Stream
	}
	handed := make(chan held, 1)
	routes := stream.NewRouter(nil)
	routes.Handle("/later", answering(func(ctx context.Context, s *stream.Stream) error {
		s.Detach()
		handed <- held{ctx, s}
		return nil
	}))
	sess := serve(t, routes)
	c, err := stream.Open(t.Context(), sess, "/later", nil)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	h := <-handed
	h.s.ResponseMetadata().Set("x-by", "holder")
	if err := h.s.Send(wrapperspb.String("from the holder")); err != nil {
		t.Fatal(err)
	}
	var got wrapperspb.StringValue
	if err := c.Receive(&got); err != nil || got.GetValue() != "from the holder" {
		t.Fatalf("got %q, %v", got.GetValue(), err)
	}
	if md, _ := c.Response(t.Context()); md.Get("x-by") != "holder" {
		t.Fatalf("answer %v, want the holder's", md)
	}
	sess.Close()
	select {
	case <-h.ctx.Done():
	case <-time.After(guard):
		t.Fatal("the detached stream's context outlived the session")
	}
	h.s.Close()
}
