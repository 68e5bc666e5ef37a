package rpc_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"reflect"
	"strings"
	"testing"
	"time"

	"connectrpc.com/connect/v2"
	"connectrpc.com/connect/v2/connectproto"
	"google.golang.org/protobuf/proto"

	"github.com/wsplex/wsplex"
	pingv1 "github.com/wsplex/wsplex/internal/gen/ping/v1"
	"github.com/wsplex/wsplex/internal/gen/ping/v1/pingv1connect"
	"github.com/wsplex/wsplex/internal/plextest"
	"github.com/wsplex/wsplex/mux"
	"github.com/wsplex/wsplex/reconnect"
	"github.com/wsplex/wsplex/rpc"
	"github.com/wsplex/wsplex/stream"
)

// serve serves routes on a test server and returns a client session to it.
func serve(t *testing.T, routes *stream.Router) *mux.Session {
	t.Helper()
	srv := plextest.NewServer(t, func(s *mux.Session) { routes.Serve(s) }, nil)
	return srv.Dial(t, nil)
}

// recv returns what ch delivers, failing the test if nothing comes.
func recv[T any](t *testing.T, ch <-chan T, what string) T {
	t.Helper()
	select {
	case v := <-ch:
		return v
	case <-time.After(guard):
		t.Fatalf("%s: nothing came", what)
		panic("unreachable")
	}
}

// openCall opens a call as a raw stream, with the reserved keys given.
func openCall(t *testing.T, sess *mux.Session, procedure string, md wsplex.Metadata) *stream.Stream {
	t.Helper()
	st, err := stream.Open(t.Context(), sess, procedure, &stream.OpenOptions{Metadata: md})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	return st
}

// fakeServer serves /fake.v1.Fake/{what} with plain stream handlers that
// misbehave as a connect server never would, then report the cause their
// context ended with.
func fakeServer(t *testing.T) (client *connect.Client, sess *mux.Session, causes chan error) {
	causes = make(chan error, 1)
	routes := stream.NewRouter(nil)
	routes.HandleFunc("/fake.v1.Fake/{what}", func(ctx context.Context, s *stream.Stream) error {
		switch s.PathValue("what") {
		case "two":
			s.Send(&pingv1.PingResponse{})
			s.Send(&pingv1.PingResponse{})
		case "malformed":
			s.SendBytes([]byte("{"))
		case "end": // read one request, then end the call at once
			s.Receive(&pingv1.PingRequest{})
			return nil
		}
		<-ctx.Done()
		causes <- context.Cause(ctx)
		return nil
	})
	sess = serve(t, routes)
	return connect.NewClient(rpc.NewTransport(sess, nil)), sess, causes
}

func fakeSpec(what string) connect.Spec {
	return connect.Spec{Procedure: "/fake.v1.Fake/" + what}
}

// The open carries the request headers in lowercase and the reserved keys
// the transport sets, never reserved keys the application set (SPEC.md
// §13.1).
func TestOpenMetadataOnTheWire(t *testing.T) {
	routes := stream.NewRouter(nil)
	mds := make(chan wsplex.Metadata, 1)
	routes.HandleFunc("/fake.v1.Keys/Get", func(ctx context.Context, s *stream.Stream) error {
		mds <- s.Metadata()
		return s.Send(&pingv1.PingResponse{})
	})
	client := connect.NewClient(rpc.NewTransport(serve(t, routes), nil))
	ctx, info := connect.NewClientContext(t.Context())
	info.RequestHeader().Set("X-In", "v")
	info.RequestHeader().Set("Wsplex-Codec", "xml")
	info.RequestHeader().Set("Wsplex-Timeout-Ms", "1s")
	info.RequestHeader().Set("Wsplex-Other", "x")
	if err := client.CallUnary(ctx, connect.Spec{Procedure: "/fake.v1.Keys/Get"}, &pingv1.PingRequest{}, &pingv1.PingResponse{}); err != nil {
		t.Fatal(err)
	}
	want := wsplex.Metadata{"x-in": {"v"}, "wsplex-rpc": {"unary"}}
	if got := recv(t, mds, "open metadata"); !reflect.DeepEqual(got, want) {
		t.Fatalf("open metadata %v, want %v", got, want)
	}
}

// Response headers and trailers travel in lowercase (SPEC.md §13.3, §13.4).
func TestResponseMetadataOnTheWire(t *testing.T) {
	f := newFixture(t)
	st := openCall(t, f.sess, pingv1connect.PingServicePingProcedure, wsplex.Metadata{"wsplex-rpc": {"unary"}, "x-in": {"v"}})
	st.Send(&pingv1.PingRequest{Text: "headers"})
	st.CloseWrite()
	md, err := st.Response(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if got := md["x-out"]; len(got) != 1 || got[0] != "v" {
		t.Errorf("answer metadata %v, want x-out: v", md)
	}
	if err := st.Receive(&pingv1.PingResponse{}); err != nil {
		t.Fatal(err)
	}
	if err := st.Receive(&pingv1.PingResponse{}); err != io.EOF {
		t.Fatalf("end: %v", err)
	}
	if got := st.Trailers()["x-trailer"]; len(got) != 1 || got[0] != "t-v" {
		t.Errorf("trailers %v, want x-trailer: t-v", st.Trailers())
	}
}

// Reserved keys never reach the application as headers or trailers, on
// either side.
func TestReservedKeysAreNoHeaders(t *testing.T) {
	f := newFixture(t)
	ctx, info := connect.NewClientContext(t.Context())
	info.RequestHeader().Set("X-In", "v")
	res, err := f.client.Ping(ctx, &pingv1.PingRequest{Text: "keys"})
	if err != nil || res.GetText() != "X-In" {
		t.Fatalf("the handler's request headers: %q, %v; want X-In alone", res.GetText(), err)
	}

	routes := stream.NewRouter(&stream.Options{OnOpen: func(context.Context, *stream.Stream) (wsplex.Metadata, error) {
		return wsplex.Metadata{"wsplex-h": {"1"}, "x-h": {"1"}}, nil
	}})
	routes.HandleFunc("/fake.v1.Keys/Get", func(ctx context.Context, s *stream.Stream) error {
		s.Send(&pingv1.PingResponse{})
		return &wsplex.Error{Code: wsplex.CodeOK, Trailers: wsplex.Metadata{"wsplex-t": {"1"}, "x-t": {"1"}}}
	})
	client := connect.NewClient(rpc.NewTransport(serve(t, routes), nil))
	ctx, info = connect.NewClientContext(t.Context())
	if err := client.CallUnary(ctx, connect.Spec{Procedure: "/fake.v1.Keys/Get"}, &pingv1.PingRequest{}, &pingv1.PingResponse{}); err != nil {
		t.Fatal(err)
	}
	if h := info.ResponseHeader(); h.Len() != 1 || h.Get("x-h") != "1" {
		t.Errorf("response headers %v, want x-h alone", h)
	}
	if tr := info.ResponseTrailer(); tr.Len() != 1 || tr.Get("x-t") != "1" {
		t.Errorf("trailers %v, want x-t alone", tr)
	}
}

// A handler's error that is not a *connect.Error it authored reaches the
// caller as a bare code, as connect-go's transports send it: context errors
// as their codes, the error of a call the handler made as internal, and
// any other error as unknown, without its text.
func TestHandlerErrorsAsStatus(t *testing.T) {
	f := newFixture(t)
	f.ping.relay = f.client
	for _, tc := range []struct {
		text string
		code connect.Code
	}{
		{"canceled", connect.CodeCanceled},
		{"deadline-exceeded", connect.CodeDeadlineExceeded},
		{"secret", connect.CodeUnknown},
		{"relay", connect.CodeInternal},
	} {
		_, err := f.client.Ping(t.Context(), &pingv1.PingRequest{Text: tc.text})
		wantCode(t, err, tc.code, tc.text)
		var ce *connect.Error
		if errors.As(err, &ce); ce.Message() != "" || strings.Contains(err.Error(), "secret") {
			t.Errorf("%s: %v carries the handler's error text", tc.text, err)
		}
	}
}

// Error details travel as google.protobuf.Any with type.googleapis.com
// type URLs (SPEC.md §13.4).
func TestDetailTypeURL(t *testing.T) {
	f := newFixture(t)
	st := openCall(t, f.sess, pingv1connect.PingServiceFailProcedure, wsplex.Metadata{"wsplex-rpc": {"unary"}})
	st.Send(&pingv1.FailRequest{Code: int32(connect.CodeNotFound), Message: "m"})
	st.CloseWrite()
	err := st.Receive(&pingv1.FailResponse{})
	var e *wsplex.Error
	if !errors.As(err, &e) || e.Code != wsplex.CodeNotFound || len(e.Details) != 1 {
		t.Fatalf("status %v", err)
	}
	if got := e.Details[0].GetTypeUrl(); got != "type.googleapis.com/wsplex.ping.v1.PingRequest" {
		t.Fatalf("detail type URL %q", got)
	}
}

// The caller's CallInfo reports the protocol, codec, peer and message
// sizes.
func TestCallerCallInfo(t *testing.T) {
	f := newFixture(t)
	ctx, info := connect.NewClientContext(t.Context())
	req := &pingv1.PingRequest{Number: 42, Text: "hello"}
	res, err := f.client.Ping(ctx, req)
	if err != nil {
		t.Fatal(err)
	}
	if info.Protocol != "wsplex" || info.Codec != "proto" || info.PeerAddr != f.sess.RemoteAddr().String() {
		t.Errorf("protocol %q, codec %q, peer %q", info.Protocol, info.Codec, info.PeerAddr)
	}
	if info.SendStats.Size != proto.Size(req) || info.ReceiveStats.Size != proto.Size(res) {
		t.Errorf("sent %d bytes, received %d; want %d, %d", info.SendStats.Size, info.ReceiveStats.Size, proto.Size(req), proto.Size(res))
	}
	json := pingv1connect.NewPingServiceClient(connect.NewClient(rpc.NewTransport(f.sess,
		&rpc.Options{Codecs: []connect.Codec{connectproto.NewJSONCodec()}})))
	ctx, info = connect.NewClientContext(t.Context())
	if _, err := json.Ping(ctx, &pingv1.PingRequest{Text: "x"}); err != nil {
		t.Fatal(err)
	}
	if info.Codec != "json" || info.SendStats.Size != len(`{"text":"x"}`) {
		t.Errorf("codec %q, sent %d bytes", info.Codec, info.SendStats.Size)
	}
}

// The handler's CallInfo reports the peer and message sizes.
func TestHandlerCallInfo(t *testing.T) {
	infos := make(chan *connect.CallInfo, 1)
	record := func(next connect.ServerFunc) connect.ServerFunc {
		return func(ctx context.Context, spec connect.Spec, s connect.ServerStream) error {
			err := next(ctx, spec, s)
			info, _ := connect.CallInfoForServerContext(ctx)
			infos <- info
			return err
		}
	}
	f := newFixture(t, record)
	req := &pingv1.PingRequest{Number: 42, Text: "hello"}
	res, err := f.client.Ping(t.Context(), req)
	if err != nil {
		t.Fatal(err)
	}
	info := recv(t, infos, "call info")
	if info.PeerAddr != f.sess.LocalAddr().String() {
		t.Errorf("peer %q, want %q", info.PeerAddr, f.sess.LocalAddr())
	}
	if info.ReceiveStats.Size != proto.Size(req) || info.SendStats.Size != proto.Size(res) {
		t.Errorf("received %d bytes, sent %d; want %d, %d", info.ReceiveStats.Size, info.SendStats.Size, proto.Size(req), proto.Size(res))
	}
}

// Options.MaxMessageSize bounds what a caller sends and receives.
func TestMaxMessageSize(t *testing.T) {
	f := newFixture(t)
	client := pingv1connect.NewPingServiceClient(connect.NewClient(rpc.NewTransport(f.sess, &rpc.Options{MaxMessageSize: 100})))
	if _, err := client.Ping(t.Context(), &pingv1.PingRequest{Text: "small"}); err != nil {
		t.Fatal(err)
	}
	_, err := client.Ping(t.Context(), &pingv1.PingRequest{Text: strings.Repeat("x", 200)})
	wantCode(t, err, connect.CodeResourceExhausted, "request over the limit")
	up, err := client.CountUp(t.Context(), &pingv1.CountUpRequest{Number: 1, PayloadSize: 200})
	if err != nil {
		t.Fatal(err)
	}
	defer up.Close()
	_, err = up.Receive()
	wantCode(t, err, connect.CodeResourceExhausted, "response over the limit")
}

// A call made while a reconnect.Client dials its first session ends with
// its context, with the context's code.
func TestReconnectTransportFirstDial(t *testing.T) {
	dialed := make(chan struct{}, 1)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case dialed <- struct{}{}:
		default:
		}
		<-r.Context().Done() // the dial never completes
	}))
	t.Cleanup(srv.Close)
	c, err := reconnect.New(plextest.WebSocketURL(srv.URL), &reconnect.Options{Dial: mux.DialOptions{HandshakeTimeout: time.Hour}})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	recv(t, dialed, "the first dial")
	client := pingv1connect.NewPingServiceClient(connect.NewClient(rpc.NewReconnectTransport(c, nil)))
	// The deadline passes while the call waits for the session (should
	// the machine stall before, the call fails the same way).
	ctx, cancel := context.WithTimeout(t.Context(), 50*time.Millisecond)
	defer cancel()
	_, err = client.Ping(ctx, &pingv1.PingRequest{})
	wantCode(t, err, connect.CodeDeadlineExceeded, "call while the first dial waits")
}

// A deadline that passes at the caller resets the stream with
// deadline_exceeded, the cause the server's handler sees (SPEC.md §13.5).
func TestCallerDeadlineResetCode(t *testing.T) {
	client, _, causes := fakeServer(t)
	ctx, cancel := context.WithTimeout(t.Context(), 50*time.Millisecond)
	defer cancel()
	err := client.CallUnary(ctx, fakeSpec("wait"), &pingv1.PingRequest{}, &pingv1.PingResponse{})
	wantCode(t, err, connect.CodeDeadlineExceeded, "call past its deadline")
	if cause := recv(t, causes, "the handler's end"); wsplex.CodeOf(cause) != wsplex.CodeDeadlineExceeded {
		t.Fatalf("the handler's cause %v, want deadline_exceeded", cause)
	}
}

// A caller that reads a second response of a unary call cancels the call.
func TestExtraResponseCancelsCall(t *testing.T) {
	client, _, causes := fakeServer(t)
	err := client.CallUnary(t.Context(), fakeSpec("two"), &pingv1.PingRequest{}, &pingv1.PingResponse{})
	wantCode(t, err, connect.CodeUnimplemented, "two responses")
	if cause := recv(t, causes, "the handler's end"); wsplex.CodeOf(cause) != wsplex.CodeCanceled {
		t.Fatalf("the handler's cause %v, want canceled", cause)
	}
}

// A response the codec cannot decode fails the call with invalid_argument,
// and resets the stream with it.
func TestMalformedResponse(t *testing.T) {
	_, sess, causes := fakeServer(t)
	client := connect.NewClient(rpc.NewTransport(sess, &rpc.Options{Codecs: []connect.Codec{connectproto.NewJSONCodec()}}))
	err := client.CallUnary(t.Context(), fakeSpec("malformed"), &pingv1.PingRequest{}, &pingv1.PingResponse{})
	wantCode(t, err, connect.CodeInvalidArgument, "malformed response")
	if cause := recv(t, causes, "the handler's end"); wsplex.CodeOf(cause) != wsplex.CodeInvalidArgument {
		t.Fatalf("the handler's cause %v, want invalid_argument", cause)
	}
}

// A request the handler's codec cannot decode fails the call with
// invalid_argument.
func TestMalformedRequest(t *testing.T) {
	f := newFixture(t)
	st := openCall(t, f.sess, pingv1connect.PingServicePingProcedure, wsplex.Metadata{"wsplex-rpc": {"unary"}, "wsplex-codec": {"json"}})
	st.SendBytes([]byte("{"))
	st.CloseWrite()
	if err := st.ReceiveBytes(func([]byte) error { return nil }); wsplex.CodeOf(err) != wsplex.CodeInvalidArgument {
		t.Fatalf("got %v, want invalid_argument", err)
	}
}

// A request the codec cannot encode fails the call with internal, as
// connect-go's transports fail it.
func TestUnencodableRequest(t *testing.T) {
	f := newFixture(t)
	json := pingv1connect.NewPingServiceClient(connect.NewClient(rpc.NewTransport(f.sess,
		&rpc.Options{Codecs: []connect.Codec{connectproto.NewJSONCodec()}})))
	for name, client := range map[string]pingv1connect.PingServiceClient{"proto": f.client, "json": json} {
		_, err := client.Ping(t.Context(), &pingv1.PingRequest{Text: "\xff"}) // not UTF-8
		wantCode(t, err, connect.CodeInternal, name+": request with invalid UTF-8")
	}
}

// A call closed before it opened never opens: its operations report
// canceled.
func TestCloseBeforeOpen(t *testing.T) {
	f := newFixture(t)
	client := connect.NewClient(rpc.NewTransport(f.sess, nil))
	cs, err := client.CallClientStream(t.Context(), connect.Spec{Procedure: pingv1connect.PingServiceSumProcedure, StreamType: connect.StreamTypeClient})
	if err != nil {
		t.Fatal(err)
	}
	if err := cs.Close(); err != nil {
		t.Fatal(err)
	}
	wantCode(t, cs.Send(&pingv1.SumRequest{}), connect.CodeCanceled, "Send after Close")
	wantCode(t, cs.Receive(&pingv1.SumResponse{}), connect.CodeCanceled, "Receive after Close")
}

// When the server ends a bidi call cleanly while the caller still sends,
// Send reports io.EOF, CloseSend succeeds and Receive reports the end
// (SPEC.md §13.4).
func TestSendAfterCleanEnd(t *testing.T) {
	client, _, _ := fakeServer(t)
	cs, err := client.CallClientStream(t.Context(), connect.Spec{Procedure: "/fake.v1.Fake/end", StreamType: connect.StreamTypeBidi})
	if err != nil {
		t.Fatal(err)
	}
	defer cs.Close()
	if err := cs.Send(&pingv1.PingRequest{}); err != nil {
		t.Fatal(err)
	}
	if err := cs.Receive(&pingv1.PingResponse{}); err != io.EOF {
		t.Fatalf("Receive: %v, want io.EOF", err)
	}
	for err = nil; err == nil; {
		err = cs.Send(&pingv1.PingRequest{})
	}
	if err != io.EOF {
		t.Fatalf("Send after the end: %v, want io.EOF", err)
	}
	if err := cs.CloseSend(); err != nil {
		t.Fatalf("CloseSend after the end: %v", err)
	}
	if err := cs.Receive(&pingv1.PingResponse{}); err != io.EOF {
		t.Fatalf("Receive again: %v, want io.EOF", err)
	}
}

// A single-request call's Send leaves the outcome to Receive, even when
// the server refused the call already.
func TestSingleRequestSendAfterRefusal(t *testing.T) {
	f := newFixture(t)
	client := connect.NewClient(rpc.NewTransport(f.sess, nil))
	// Ping called as a server-streaming call: refused for its shape.
	cs, err := client.CallClientStream(t.Context(), connect.Spec{Procedure: pingv1connect.PingServicePingProcedure, StreamType: connect.StreamTypeServer})
	if err != nil {
		t.Fatal(err)
	}
	defer cs.Close()
	if err := cs.SendHeaders(); err != nil {
		t.Fatal(err)
	}
	wantCode(t, cs.Receive(&pingv1.PingResponse{}), connect.CodeUnimplemented, "wrong shape")
	if err := cs.Send(&pingv1.PingRequest{}); err != nil {
		t.Fatalf("Send after the refusal: %v, want nil", err)
	}
}

// flushHeaders is a server interceptor that, for calls with an x-flush
// header, sets x-early and sends the response headers before the handler
// runs.
func flushHeaders(next connect.ServerFunc) connect.ServerFunc {
	return func(ctx context.Context, spec connect.Spec, s connect.ServerStream) error {
		info, _ := connect.CallInfoForServerContext(ctx)
		if info.RequestHeader().Get("x-flush") != "" {
			info.ResponseHeader().Set("x-early", "1")
			if err := s.SendHeaders(); err != nil {
				return err
			}
		}
		return next(ctx, spec, s)
	}
}

// A streaming handler's SendHeaders answers the call at once with the
// response headers; a unary call's answer waits for its outcome (SPEC.md
// §13.3).
func TestSendHeaders(t *testing.T) {
	f := newFixture(t, flushHeaders)
	// CumSum's handler waits for a request that never comes: only
	// SendHeaders can answer.
	st := openCall(t, f.sess, pingv1connect.PingServiceCumSumProcedure, wsplex.Metadata{"wsplex-rpc": {"bidi"}, "x-flush": {"1"}})
	ctx, cancel := context.WithTimeout(t.Context(), guard)
	defer cancel()
	md, err := st.Response(ctx)
	if err != nil || md.Get("x-early") != "1" {
		t.Fatalf("answer %v, %v; want x-early", md, err)
	}
	st.CloseWrite()
	if _, err := st.Response(ctx); err != nil {
		t.Fatal(err)
	}
	// A unary call that fails after SendHeaders answers with its status.
	st = openCall(t, f.sess, pingv1connect.PingServiceFailProcedure, wsplex.Metadata{"wsplex-rpc": {"unary"}, "x-flush": {"1"}})
	st.Send(&pingv1.FailRequest{Code: int32(connect.CodeNotFound)})
	st.CloseWrite()
	md, err = st.Response(ctx)
	if wsplex.CodeOf(err) != wsplex.CodeNotFound {
		t.Fatalf("answer %v, %v; want not_found", md, err)
	}
	if md.Get("x-early") != "1" || md.Get("x-header") != "h" {
		t.Fatalf("answer metadata %v, want x-early and x-header", md)
	}
}

// recording is a server interceptor that reports what the handler's
// Receive returns, and the first error its Send returns.
type recording struct{ receives, sends chan error }

func newRecording() *recording {
	return &recording{receives: make(chan error, 16), sends: make(chan error, 1)}
}

func (r *recording) intercept(next connect.ServerFunc) connect.ServerFunc {
	return func(ctx context.Context, spec connect.Spec, s connect.ServerStream) error {
		return next(ctx, spec, &recordingStream{ServerStream: s, r: r})
	}
}

type recordingStream struct {
	connect.ServerStream
	r *recording
}

func (s *recordingStream) Receive(msg any) error {
	err := s.ServerStream.Receive(msg)
	select {
	case s.r.receives <- err:
	default:
	}
	return err
}

func (s *recordingStream) Send(msg any) error {
	err := s.ServerStream.Send(msg)
	if err != nil {
		select {
		case s.r.sends <- err:
		default:
		}
	}
	return err
}

// A single-request call whose stream fails after its request fails the
// handler's Receive, not only the call.
func TestSingleRequestReadError(t *testing.T) {
	rec := newRecording()
	server := connect.NewServer(rec.intercept)
	pingv1connect.RegisterPingServiceHandler(server, newPingServer())
	routes := stream.NewRouter(&stream.Options{MaxMessageSize: 64})
	rpc.Mount(routes, server, nil)
	st := openCall(t, serve(t, routes), pingv1connect.PingServicePingProcedure, wsplex.Metadata{"wsplex-rpc": {"unary"}})
	st.Send(&pingv1.PingRequest{Number: 1})
	st.SendBytes(make([]byte, 100)) // over the Router's limit
	st.CloseWrite()
	if err := recv(t, rec.receives, "the handler's Receive"); err == nil {
		t.Fatal("the handler received its request from a failed stream")
	}
	if err := st.Receive(&pingv1.PingResponse{}); wsplex.CodeOf(err) != wsplex.CodeResourceExhausted {
		t.Fatalf("the call: %v, want resource_exhausted", err)
	}
}

// A handler whose caller stops reading sees canceled from Send; one whose
// caller cancels sees canceled from Receive.
func TestHandlerSeesCallerGone(t *testing.T) {
	rec := newRecording()
	f := newFixture(t, rec.intercept)
	st := openCall(t, f.sess, pingv1connect.PingServiceCountUpProcedure, wsplex.Metadata{"wsplex-rpc": {"server"}})
	st.Send(&pingv1.CountUpRequest{Number: 1 << 30, PayloadSize: 1 << 10})
	st.CloseWrite()
	if err := st.Receive(&pingv1.CountUpResponse{}); err != nil {
		t.Fatal(err)
	}
	st.Close() // reads no more
	if err := recv(t, rec.sends, "the handler's Send"); connect.CodeOf(err) != connect.CodeCanceled {
		t.Fatalf("Send: %v, want canceled", err)
	}

	ctx, cancel := context.WithCancel(t.Context())
	cum, err := f.client.CumSum(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer cum.Close()
	cum.Send(&pingv1.CumSumRequest{Number: 1})
	if _, err := cum.Receive(); err != nil {
		t.Fatal(err)
	}
	cancel()
	for err = nil; err == nil; { // skip the requests received
		err = recv(t, rec.receives, "the handler's Receive")
	}
	var ce *connect.Error
	if !errors.As(err, &ce) || ce.Code() != connect.CodeCanceled || ce.IsRemote() {
		t.Fatalf("Receive: %v, want a local canceled", err)
	}
}

// A handler serves a codec by the first of its Codecs with that name.
func TestFirstCodecOfANameServes(t *testing.T) {
	server := connect.NewServer()
	pingv1connect.RegisterPingServiceHandler(server, newPingServer())
	routes := stream.NewRouter(nil)
	rpc.Mount(routes, server, &rpc.Options{Codecs: []connect.Codec{connectproto.NewBinaryCodec(), brokenCodec{}}})
	client := pingv1connect.NewPingServiceClient(connect.NewClient(rpc.NewTransport(serve(t, routes), nil)))
	if res, err := client.Ping(t.Context(), &pingv1.PingRequest{Number: 3}); err != nil || res.GetNumber() != 3 {
		t.Fatalf("Ping: %v, %v", res, err)
	}
}

// brokenCodec is a "proto" codec that fails.
type brokenCodec struct{}

func (brokenCodec) Name() string { return connect.CodecNameProto }
func (brokenCodec) MarshalWrite(context.Context, io.Writer, any) error {
	return errors.New("broken")
}
func (brokenCodec) UnmarshalRead(context.Context, io.Reader, any) error {
	return errors.New("broken")
}

// A procedure with no service in its name mounts no pattern that would
// take every stream.
func TestMountBareProcedure(t *testing.T) {
	server := connect.NewServer()
	server.Register(connect.Method{
		Spec:    connect.Spec{Procedure: "/Bare"},
		Handler: func(context.Context, connect.Spec, connect.ServerStream) error { return nil },
	})
	routes := stream.NewRouter(nil)
	rpc.Mount(routes, server, nil)
	st := openCall(t, serve(t, routes), "/nope", nil)
	if _, err := st.Response(t.Context()); wsplex.CodeOf(err) != wsplex.CodeNotFound {
		t.Fatalf("plain stream: %v, want not_found", err)
	}
}

// A call of a procedure the server does not register, without wsplex-rpc,
// is served as bidi, the shape connect-go gives unknown procedures.
func TestUnknownProcedureIsBidi(t *testing.T) {
	server := connect.NewServer()
	server.SetUnknownHandler(func(ctx context.Context, spec connect.Spec, s connect.ServerStream) error {
		for {
			var req pingv1.PingRequest
			if err := s.Receive(&req); errors.Is(err, io.EOF) {
				return nil
			} else if err != nil {
				return err
			}
			if err := s.Send(&pingv1.PingResponse{Number: req.GetNumber()}); err != nil {
				return err
			}
		}
	})
	routes := stream.NewRouter(nil)
	routes.Handle("/unknown.v1.Service/", rpc.NewHandler(server, nil))
	st := openCall(t, serve(t, routes), "/unknown.v1.Service/Echo", nil)
	for i := range int64(2) {
		st.Send(&pingv1.PingRequest{Number: i + 1})
	}
	st.CloseWrite()
	var got []int64
	for {
		var res pingv1.PingResponse
		err := st.Receive(&res)
		if err == io.EOF {
			break
		} else if err != nil {
			t.Fatalf("after %v: %v", got, err)
		}
		got = append(got, res.GetNumber())
	}
	if fmt.Sprint(got) != "[1 2]" {
		t.Fatalf("echoes %v", got)
	}
}

// After the caller cancels, Receive reports the cancellation, not the
// responses that had arrived before it: a caller that cancels after N
// responses sees N (the conformance suite's cancel-after-responses).
func TestNoResponseAfterCancel(t *testing.T) {
	server := connect.NewServer()
	pingv1connect.RegisterPingServiceHandler(server, newPingServer())
	routes := stream.NewRouter(nil)
	rpc.Mount(routes, server, nil)
	client := pingv1connect.NewPingServiceClient(connect.NewClient(rpc.NewTransport(serve(t, routes), nil)))
	for range 20 {
		ctx, cancel := context.WithCancel(t.Context())
		res, err := client.CountUp(ctx, &pingv1.CountUpRequest{Number: 3})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := res.Receive(); err != nil {
			t.Fatalf("first response: %v", err)
		}
		cancel()
		msg, err := res.Receive()
		if err == nil {
			t.Fatalf("received response %d after cancelling", msg.GetNumber())
		}
		wantCode(t, err, connect.CodeCanceled, "Receive after cancel")
		res.Close()
	}
}
