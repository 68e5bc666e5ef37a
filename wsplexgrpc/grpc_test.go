package wsplexgrpc_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"testing"
	"time"

	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/connectivity"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/peer"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"

	"github.com/wsplex/wsplex/internal/plextest"
	"github.com/wsplex/wsplex/mux"
	"github.com/wsplex/wsplex/reconnect"
	"github.com/wsplex/wsplex/stream"
	"github.com/wsplex/wsplex/wsplexgrpc"
	"github.com/wsplex/wsplex/wsplexgrpc/internal/testpb"
)

func TestCallShapes(t *testing.T) {
	client := setup(t, &service{})
	payload := bytes.Repeat([]byte("wsplex"), 50000) // 300 KB: more than one window and one WebSocket message
	tests := []struct {
		name string
		call func(ctx context.Context) error
	}{
		{"unary", func(ctx context.Context) error {
			got, err := client.Unary(ctx, &testpb.Message{Text: "hello", Payload: payload})
			if err != nil {
				return err
			}
			if got.Text != "hello" || !bytes.Equal(got.Payload, payload) {
				return fmt.Errorf("got %q with %d bytes, want the request back", got.Text, len(got.Payload))
			}
			return nil
		}},
		{"server stream", func(ctx context.Context) error {
			s, err := client.ServerStream(ctx, &testpb.Message{Text: "n", Count: 20, Payload: payload[:1000]})
			if err != nil {
				return err
			}
			for i := 0; ; i++ {
				m, err := s.Recv()
				if err == io.EOF {
					if i != 20 {
						return fmt.Errorf("got %d messages, want 20", i)
					}
					return nil
				}
				if err != nil {
					return err
				}
				if want := fmt.Sprintf("n %d", i); m.Text != want || len(m.Payload) != 1000 {
					return fmt.Errorf("message %d: got %q with %d bytes, want %q with 1000", i, m.Text, len(m.Payload), want)
				}
			}
		}},
		{"client stream", func(ctx context.Context) error {
			s, err := client.ClientStream(ctx)
			if err != nil {
				return err
			}
			for _, text := range []string{"a", "b", "c"} {
				if err := s.Send(&testpb.Message{Text: text, Payload: payload}); err != nil {
					return err
				}
			}
			got, err := s.CloseAndRecv()
			if err != nil {
				return err
			}
			if got.Count != 3 || got.Text != "abc" {
				return fmt.Errorf("got count %d, text %q; want 3, \"abc\"", got.Count, got.Text)
			}
			return nil
		}},
		{"bidi", func(ctx context.Context) error {
			s, err := client.Bidi(ctx)
			if err != nil {
				return err
			}
			for i := range 10 {
				want := &testpb.Message{Text: fmt.Sprint(i), Payload: payload[:i*1000]}
				if err := s.Send(want); err != nil {
					return err
				}
				got, err := s.Recv()
				if err != nil {
					return err
				}
				if !proto.Equal(got, want) {
					return fmt.Errorf("round trip %d: got %q with %d bytes", i, got.Text, len(got.Payload))
				}
			}
			if err := s.CloseSend(); err != nil {
				return err
			}
			if _, err := s.Recv(); err != io.EOF {
				return fmt.Errorf("after CloseSend: got %v, want io.EOF", err)
			}
			return nil
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if err := tc.call(t.Context()); err != nil {
				t.Fatal(err)
			}
		})
	}
}

// Many calls at once share one gRPC connection, and so one stream.
func TestConcurrentCalls(t *testing.T) {
	client := setup(t, &service{})
	errs := make(chan error, 50)
	for i := range cap(errs) {
		go func() {
			text := fmt.Sprint(i)
			got, err := client.Unary(t.Context(), &testpb.Message{Text: text})
			if err == nil && got.Text != text {
				err = fmt.Errorf("got %q, want %q", got.Text, text)
			}
			errs <- err
		}()
	}
	for range cap(errs) {
		if err := <-errs; err != nil {
			t.Error(err)
		}
	}
}

func TestDeadline(t *testing.T) {
	deadlines := make(chan time.Time, 1)
	client := setup(t, &service{unary: func(ctx context.Context, m *testpb.Message) (*testpb.Message, error) {
		dl, ok := ctx.Deadline()
		if !ok {
			return nil, status.Error(codes.FailedPrecondition, "no deadline")
		}
		deadlines <- dl
		return m, nil
	}})
	want := time.Now().Add(time.Hour)
	ctx, cancel := context.WithDeadline(t.Context(), want)
	defer cancel()
	if _, err := client.Unary(ctx, &testpb.Message{}); err != nil {
		t.Fatal(err)
	}
	// gRPC sends the time left, rounded, and the server adds it to its
	// clock.
	if got := <-deadlines; got.Sub(want).Abs() > time.Minute {
		t.Errorf("server's deadline is %v, want about %v", got, want)
	}
}

func TestDeadlineExceeded(t *testing.T) {
	ended := make(chan error, 1)
	client := setup(t, &service{unary: func(ctx context.Context, m *testpb.Message) (*testpb.Message, error) {
		<-ctx.Done()
		ended <- ctx.Err()
		return nil, ctx.Err()
	}})
	ctx, cancel := context.WithTimeout(t.Context(), 50*time.Millisecond)
	defer cancel()
	_, err := client.Unary(ctx, &testpb.Message{})
	if status.Code(err) != codes.DeadlineExceeded {
		t.Errorf("got %v, want DeadlineExceeded", err)
	}
	// The handler's ctx ends at its own deadline or when the client's
	// cancellation arrives, whichever comes first.
	if err := <-ended; err == nil {
		t.Error("the handler's ctx did not end")
	}
}

func TestCancel(t *testing.T) {
	started := make(chan struct{})
	ended := make(chan error, 1)
	client := setup(t, &service{unary: func(ctx context.Context, m *testpb.Message) (*testpb.Message, error) {
		close(started)
		<-ctx.Done()
		ended <- ctx.Err()
		return nil, ctx.Err()
	}})
	ctx, cancel := context.WithCancel(t.Context())
	go func() {
		<-started
		cancel()
	}()
	_, err := client.Unary(ctx, &testpb.Message{})
	if status.Code(err) != codes.Canceled {
		t.Errorf("got %v, want Canceled", err)
	}
	if err := <-ended; !errors.Is(err, context.Canceled) {
		t.Errorf("the handler's ctx ended with %v, want context.Canceled", err)
	}
}

func TestErrorDetails(t *testing.T) {
	detail := &errdetails.BadRequest{FieldViolations: []*errdetails.BadRequest_FieldViolation{
		{Field: "text", Description: "must not be empty"},
	}}
	client := setup(t, &service{unary: func(ctx context.Context, m *testpb.Message) (*testpb.Message, error) {
		st, err := status.New(codes.InvalidArgument, "bad message").WithDetails(detail)
		if err != nil {
			return nil, err
		}
		return nil, st.Err()
	}})
	_, err := client.Unary(t.Context(), &testpb.Message{})
	st := status.Convert(err)
	if st.Code() != codes.InvalidArgument || st.Message() != "bad message" {
		t.Fatalf("got %v, want InvalidArgument: bad message", err)
	}
	details := st.Details()
	if len(details) != 1 {
		t.Fatalf("got details %v, want one", details)
	}
	if got, ok := details[0].(*errdetails.BadRequest); !ok || !proto.Equal(got, detail) {
		t.Errorf("got detail %v, want %v", details[0], detail)
	}
}

func TestMetadata(t *testing.T) {
	handle := func(ctx context.Context) error {
		md, _ := metadata.FromIncomingContext(ctx)
		if got := md.Get("x-request"); len(got) != 1 || got[0] != "r" {
			return status.Errorf(codes.InvalidArgument, "x-request is %q", got)
		}
		if err := grpc.SetHeader(ctx, metadata.Pairs("x-header", "h")); err != nil {
			return err
		}
		return grpc.SetTrailer(ctx, metadata.Pairs("x-trailer", "t"))
	}
	client := setup(t, &service{
		unary: func(ctx context.Context, m *testpb.Message) (*testpb.Message, error) {
			if err := handle(ctx); err != nil {
				return nil, err
			}
			return m, nil
		},
		bidi: func(s grpc.BidiStreamingServer[testpb.Message, testpb.Message]) error {
			return handle(s.Context())
		},
	})
	ctx := metadata.AppendToOutgoingContext(t.Context(), "x-request", "r")
	check := func(header, trailer metadata.MD) {
		t.Helper()
		if got := header.Get("x-header"); len(got) != 1 || got[0] != "h" {
			t.Errorf("header x-header is %q, want [h]", got)
		}
		if got := trailer.Get("x-trailer"); len(got) != 1 || got[0] != "t" {
			t.Errorf("trailer x-trailer is %q, want [t]", got)
		}
	}

	var header, trailer metadata.MD
	if _, err := client.Unary(ctx, &testpb.Message{}, grpc.Header(&header), grpc.Trailer(&trailer)); err != nil {
		t.Fatal(err)
	}
	check(header, trailer)

	s, err := client.Bidi(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.Recv(); err != io.EOF {
		t.Fatalf("Recv: got %v, want io.EOF", err)
	}
	header, err = s.Header()
	if err != nil {
		t.Fatal(err)
	}
	check(header, s.Trailer())
}

// A handler learns who called through peer.FromContext (the session's
// address), Session and AuthInfo.
func TestPeer(t *testing.T) {
	type seen struct {
		addr string
		sess *mux.Session
		info any
	}
	calls := make(chan seen, 1)
	srv := newServer(t, &service{unary: func(ctx context.Context, m *testpb.Message) (*testpb.Message, error) {
		p, ok := peer.FromContext(ctx)
		if !ok {
			return nil, status.Error(codes.Internal, "no peer")
		}
		calls <- seen{p.Addr.String(), wsplexgrpc.Session(ctx), wsplexgrpc.AuthInfo(ctx)}
		return m, nil
	}}, &mux.HandlerOptions{Authenticate: func(r *http.Request) (any, error) {
		return "user " + mux.BearerToken(r), nil
	}})
	sess := srv.Dial(t, &mux.DialOptions{Header: http.Header{"Authorization": {"Bearer alice"}}})
	serverSess := <-srv.sessions
	client := dial(t, wsplexgrpc.Dialer(sess, nil))
	if _, err := client.Unary(t.Context(), &testpb.Message{}); err != nil {
		t.Fatal(err)
	}
	got := <-calls
	if want := sess.LocalAddr().String(); got.addr != want {
		t.Errorf("peer address %s, want the client's %s", got.addr, want)
	}
	if got.sess != serverSess {
		t.Errorf("Session returned %p, want the server side of the session, %p", got.sess, serverSess)
	}
	if got.info != "user alice" {
		t.Errorf("AuthInfo returned %v, want \"user alice\"", got.info)
	}
	if wsplexgrpc.Session(t.Context()) != nil || wsplexgrpc.AuthInfo(t.Context()) != nil {
		t.Error("Session or AuthInfo found something in a context without a peer")
	}
}

// A session that ends under calls fails them with Unavailable, and ends
// the handlers' contexts; with a Dialer on that session, later calls fail
// the same way.
func TestSessionLost(t *testing.T) {
	for _, side := range []string{"server", "client"} {
		t.Run("closed by "+side, func(t *testing.T) {
			started := make(chan struct{}, 1)
			ended := make(chan error, 1)
			srv := newServer(t, &service{bidi: func(s grpc.BidiStreamingServer[testpb.Message, testpb.Message]) error {
				started <- struct{}{}
				<-s.Context().Done()
				ended <- s.Context().Err()
				return nil
			}}, nil)
			sess := srv.Dial(t, nil)
			serverSess := <-srv.sessions
			client := dial(t, wsplexgrpc.Dialer(sess, nil))
			s, err := client.Bidi(t.Context())
			if err != nil {
				t.Fatal(err)
			}
			<-started
			if side == "server" {
				serverSess.Close()
			} else {
				sess.Close()
			}
			if _, err := s.Recv(); status.Code(err) != codes.Unavailable {
				t.Errorf("Recv: got %v, want Unavailable", err)
			}
			if err := <-ended; err == nil {
				t.Error("the handler's context did not end")
			}
			<-sess.Done()
			if _, err := client.Unary(t.Context(), &testpb.Message{}); status.Code(err) != codes.Unavailable {
				t.Errorf("a call after the session ended: got %v, want Unavailable", err)
			}
		})
	}
}

// With ReconnectDialer, calls after a lost session go over the next one.
func TestReconnect(t *testing.T) {
	sessions := make(chan *mux.Session, 2)
	srv := newServer(t, &service{unary: func(ctx context.Context, m *testpb.Message) (*testpb.Message, error) {
		sessions <- wsplexgrpc.Session(ctx)
		return m, nil
	}}, nil)
	rc, err := reconnect.New(srv.URL, &reconnect.Options{MinDelay: time.Millisecond, MaxDelay: 10 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { rc.Close() })
	cc := newClientConn(t, wsplexgrpc.ReconnectDialer(rc, nil))
	client := testpb.NewTestServiceClient(cc)

	if _, err := client.Unary(t.Context(), &testpb.Message{}); err != nil {
		t.Fatal(err)
	}
	first := <-sessions
	if first != <-srv.sessions {
		t.Fatal("the first call did not come over the first session")
	}
	first.Close()
	// Until gRPC has seen its connection break, a call may still be put on
	// it and fail; then the channel leaves Ready.
	if !cc.WaitForStateChange(t.Context(), connectivity.Ready) {
		t.Fatal("the channel stayed ready")
	}
	// WaitForReady: gRPC may have to dial more than once while the
	// reconnect.Client dials its next session. The timeout only ends a
	// failing test.
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()
	if _, err := client.Unary(ctx, &testpb.Message{}, grpc.WaitForReady(true)); err != nil {
		t.Fatalf("a call after the session was lost: %v", err)
	}
	if second := <-sessions; second == first {
		t.Error("the second call came over the lost session")
	}
}

// Either side of a session may serve gRPC: here the client serves a
// service on its session too, and the server calls it.
func TestServerToClient(t *testing.T) {
	srv := newServer(t, &service{}, nil)
	sess := srv.Dial(t, nil)
	serverSess := <-srv.sessions

	clientRoutes := stream.NewRouter(nil)
	clientRoutes.Handle(wsplexgrpc.DefaultName, serveGRPC(t, &service{unary: func(ctx context.Context, m *testpb.Message) (*testpb.Message, error) {
		return &testpb.Message{Text: "client answers " + m.Text}, nil
	}}))
	routed := make(chan error, 1)
	go func() { routed <- clientRoutes.Serve(sess) }()
	t.Cleanup(func() {
		sess.Close()
		<-routed
	})

	toClient := dial(t, wsplexgrpc.Dialer(serverSess, nil))
	got, err := toClient.Unary(t.Context(), &testpb.Message{Text: "server"})
	if err != nil {
		t.Fatal(err)
	}
	if got.Text != "client answers server" {
		t.Errorf("got %q from the client", got.Text)
	}

	toServer := dial(t, wsplexgrpc.Dialer(sess, nil))
	if got, err := toServer.Unary(t.Context(), &testpb.Message{Text: "client"}); err != nil || got.Text != "client" {
		t.Errorf("a call to the server: got %v, %v", got, err)
	}
}

// DialOptions.Name chooses the stream; one that no Router serves fails
// calls with Unavailable, and the message says why.
func TestDialName(t *testing.T) {
	srv := newServer(t, &service{}, nil)
	sess := srv.Dial(t, nil)
	routes := stream.NewRouter(nil)
	routes.Handle("/rpc/other", serveGRPC(t, &service{unary: func(ctx context.Context, m *testpb.Message) (*testpb.Message, error) {
		return &testpb.Message{Text: "other"}, nil
	}}))
	other := plextest.NewServer(t, func(s *mux.Session) { routes.Serve(s) }, nil).Dial(t, nil)

	if got, err := dial(t, wsplexgrpc.Dialer(other, &wsplexgrpc.DialOptions{Name: "/rpc/other"})).Unary(t.Context(), &testpb.Message{}); err != nil || got.Text != "other" {
		t.Errorf("on /rpc/other: got %v, %v", got, err)
	}
	_, err := dial(t, wsplexgrpc.Dialer(sess, &wsplexgrpc.DialOptions{Name: "/nobody"})).Unary(t.Context(), &testpb.Message{})
	if st := status.Convert(err); st.Code() != codes.Unavailable || !bytes.Contains([]byte(st.Message()), []byte("not_found")) {
		t.Errorf("on an unrouted name: got %v, want Unavailable saying not_found", err)
	}
}
