package rpc_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"connectrpc.com/connect/v2"
	"connectrpc.com/connect/v2/connectproto"
	"go.uber.org/goleak"

	"github.com/wsplex/wsplex"
	pingv1 "github.com/wsplex/wsplex/internal/gen/ping/v1"
	"github.com/wsplex/wsplex/internal/gen/ping/v1/pingv1connect"
	"github.com/wsplex/wsplex/internal/plextest"
	"github.com/wsplex/wsplex/mux"
	"github.com/wsplex/wsplex/reconnect"
	"github.com/wsplex/wsplex/rpc"
	"github.com/wsplex/wsplex/stream"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// guard bounds waits that succeed at once unless the code is broken; it
// is long so that a loaded machine never trips it.
const guard = 20 * time.Second

// pingServer implements PingService. Requests whose text names a
// behaviour ("headers", "block", "panic", ...) get it.
type pingServer struct {
	pingv1connect.UnimplementedPingServiceHandler
	// started receives the context of each handler that blocks.
	started chan context.Context
	// release ends the handlers that block without watching their context.
	release chan struct{}
	// relay, if set, is the client that "relay" calls.
	relay pingv1connect.PingServiceClient
}

func newPingServer() *pingServer {
	return &pingServer{started: make(chan context.Context, 16), release: make(chan struct{})}
}

func (p *pingServer) Ping(ctx context.Context, req *pingv1.PingRequest) (*pingv1.PingResponse, error) {
	info, _ := connect.CallInfoForServerContext(ctx)
	switch req.GetText() {
	case "headers":
		info.ResponseHeader().Set("x-out", info.RequestHeader().Get("x-in"))
		info.ResponseHeader().Set("x-bin", info.RequestHeader().Get("x-bin"))
		info.ResponseTrailer().Set("x-trailer", "t-"+info.RequestHeader().Get("x-in"))
	case "block":
		p.started <- ctx
		<-ctx.Done()
		return nil, ctx.Err()
	case "ignore":
		p.started <- ctx
		<-p.release
	case "panic":
		panic("boom")
	case "auth":
		return &pingv1.PingResponse{Text: fmt.Sprint(mux.AuthInfo(ctx))}, nil
	case "deadline":
		dl, ok := ctx.Deadline()
		if !ok {
			return &pingv1.PingResponse{Text: "none"}, nil
		}
		return &pingv1.PingResponse{Number: dl.UnixMilli()}, nil
	case "callback": // call the caller's end of the session
		caller := pingv1connect.NewPingServiceClient(connect.NewClient(rpc.NewTransport(rpc.Session(ctx), nil)))
		res, err := caller.Ping(ctx, &pingv1.PingRequest{Text: "from the server"})
		if err != nil {
			return nil, err
		}
		return &pingv1.PingResponse{Text: "called back: " + res.GetText()}, nil
	case "info":
		return &pingv1.PingResponse{Text: info.Protocol + " " + info.Codec + " " + info.Spec.StreamType.String()}, nil
	case "keys": // the request header keys
		var keys []string
		for k := range info.RequestHeader().All() {
			keys = append(keys, k)
		}
		slices.Sort(keys)
		return &pingv1.PingResponse{Text: strings.Join(keys, " ")}, nil
	case "canceled":
		return nil, context.Canceled
	case "deadline-exceeded":
		return nil, context.DeadlineExceeded
	case "secret":
		return nil, errors.New("secret")
	case "relay": // fail with the error of a call the handler made
		_, err := p.relay.Fail(ctx, &pingv1.FailRequest{Code: int32(connect.CodeNotFound), Message: "secret"})
		return nil, err
	}
	return &pingv1.PingResponse{Number: req.GetNumber(), Text: req.GetText()}, nil
}

func (p *pingServer) Fail(ctx context.Context, req *pingv1.FailRequest) (*pingv1.FailResponse, error) {
	info, _ := connect.CallInfoForServerContext(ctx)
	info.ResponseHeader().Set("x-header", "h")
	info.ResponseTrailer().Set("x-trailer", "t")
	detail, err := connectproto.NewErrorDetail(&pingv1.PingRequest{Text: req.GetMessage()})
	if err != nil {
		return nil, err
	}
	return nil, connect.NewError(connect.Code(req.GetCode()), req.GetMessage()).WithDetail(detail)
}

func (p *pingServer) Sum(ctx context.Context, s pingv1connect.PingServiceSumServerStream) (*pingv1.SumResponse, error) {
	var sum int64
	for {
		req, err := s.Receive()
		if errors.Is(err, io.EOF) {
			return &pingv1.SumResponse{Sum: sum}, nil
		} else if err != nil {
			return nil, err
		}
		sum += req.GetNumber()
	}
}

func (p *pingServer) CountUp(ctx context.Context, req *pingv1.CountUpRequest, s pingv1connect.PingServiceCountUpServerStream) error {
	if req.GetNumber() < 0 { // send one, then wait for the end
		if err := s.Send(&pingv1.CountUpResponse{Number: 1}); err != nil {
			return err
		}
		p.started <- ctx
		<-ctx.Done()
		return ctx.Err()
	}
	info, _ := connect.CallInfoForServerContext(ctx)
	info.ResponseHeader().Set("x-count", fmt.Sprint(req.GetNumber()))
	payload := make([]byte, req.GetPayloadSize())
	for i := range req.GetNumber() {
		if err := s.Send(&pingv1.CountUpResponse{Number: i + 1, Payload: payload}); err != nil {
			return err
		}
	}
	info.ResponseTrailer().Set("x-sent", fmt.Sprint(req.GetNumber()))
	return nil
}

func (p *pingServer) CumSum(ctx context.Context, s pingv1connect.PingServiceCumSumServerStream) error {
	var sum int64
	for {
		req, err := s.Receive()
		if errors.Is(err, io.EOF) {
			return nil
		} else if err != nil {
			return err
		}
		if req.GetNumber() < 0 {
			return connect.NewError(connect.CodeAborted, "negative number")
		}
		sum += req.GetNumber()
		if err := s.Send(&pingv1.CumSumResponse{Sum: sum}); err != nil {
			return err
		}
	}
}

// fixture is a server that serves p on every session, and a client
// session to it.
type fixture struct {
	srv     *plextest.Server
	sess    *mux.Session
	routes  *stream.Router
	ping    *pingServer
	client  pingv1connect.PingServiceClient
	servers chan *mux.Session // the server side of each session
}

func newFixture(t *testing.T, interceptors ...connect.ServerInterceptor) *fixture {
	t.Helper()
	f := &fixture{ping: newPingServer(), routes: stream.NewRouter(nil), servers: make(chan *mux.Session, 4)}
	server := connect.NewServer(interceptors...)
	pingv1connect.RegisterPingServiceHandler(server, f.ping)
	rpc.Mount(f.routes, server, nil)
	f.srv = plextest.NewServer(t, func(s *mux.Session) {
		f.servers <- s
		f.routes.Serve(s)
	}, &mux.HandlerOptions{Authenticate: func(r *http.Request) (any, error) { return "user-" + r.URL.Query().Get("user"), nil }})
	t.Cleanup(func() { close(f.ping.release) })
	sess, err := mux.Dial(t.Context(), f.srv.URL+"?user=ann", nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { sess.Close() })
	f.sess = sess
	f.client = pingv1connect.NewPingServiceClient(connect.NewClient(rpc.NewTransport(sess, nil)))
	return f
}

func (f *fixture) started(t *testing.T) context.Context {
	t.Helper()
	select {
	case ctx := <-f.ping.started:
		return ctx
	case <-time.After(guard):
		t.Fatal("the handler did not start")
		return nil
	}
}

func waitDone(t *testing.T, ctx context.Context, what string) {
	t.Helper()
	select {
	case <-ctx.Done():
	case <-time.After(guard):
		t.Fatalf("%s: not done", what)
	}
}

func wantCode(t *testing.T, err error, code connect.Code, what string) {
	t.Helper()
	if got := connect.CodeOf(err); err == nil || got != code {
		t.Fatalf("%s: %v (code %v), want code %v", what, err, got, code)
	}
}

// Every call shape works through generated code.
func TestCallShapes(t *testing.T) {
	f := newFixture(t)
	ctx := t.Context()

	res, err := f.client.Ping(ctx, &pingv1.PingRequest{Number: 42, Text: "hello"})
	if err != nil || res.GetNumber() != 42 || res.GetText() != "hello" {
		t.Fatalf("Ping: %v, %v", res, err)
	}

	sum, err := f.client.Sum(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for i := range int64(5) {
		if err := sum.Send(&pingv1.SumRequest{Number: i}); err != nil {
			t.Fatalf("Sum.Send: %v", err)
		}
	}
	if got, err := sum.CloseAndReceive(); err != nil || got.GetSum() != 10 {
		t.Fatalf("Sum: %v, %v", got, err)
	}

	up, err := f.client.CountUp(ctx, &pingv1.CountUpRequest{Number: 3})
	if err != nil {
		t.Fatal(err)
	}
	var got []int64
	for {
		msg, err := up.Receive()
		if errors.Is(err, io.EOF) {
			break
		} else if err != nil {
			t.Fatalf("CountUp.Receive: %v", err)
		}
		got = append(got, msg.GetNumber())
	}
	if fmt.Sprint(got) != "[1 2 3]" {
		t.Fatalf("CountUp: %v", got)
	}

	cum, err := f.client.CumSum(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer cum.Close()
	var want int64
	for i := range int64(4) {
		want += i
		if err := cum.Send(&pingv1.CumSumRequest{Number: i}); err != nil {
			t.Fatalf("CumSum.Send: %v", err)
		}
		if msg, err := cum.Receive(); err != nil || msg.GetSum() != want {
			t.Fatalf("CumSum.Receive: %v, %v, want %d", msg, err, want)
		}
	}
	if err := cum.CloseSend(); err != nil {
		t.Fatal(err)
	}
	if _, err := cum.Receive(); !errors.Is(err, io.EOF) {
		t.Fatalf("CumSum end: %v", err)
	}
}

// Every code, with its message and details, reaches the caller, and the
// response headers and trailers of a failed call too.
func TestStatusCodesAndDetails(t *testing.T) {
	f := newFixture(t)
	for code := connect.CodeCanceled; code <= connect.CodeUnauthenticated; code++ {
		ctx, info := connect.NewClientContext(t.Context())
		_, err := f.client.Fail(ctx, &pingv1.FailRequest{Code: int32(code), Message: "msg " + code.String()})
		var ce *connect.Error
		if !errors.As(err, &ce) || ce.Code() != code || ce.Message() != "msg "+code.String() || !ce.IsRemote() {
			t.Fatalf("code %v: %v", code, err)
		}
		details := ce.Details()
		if len(details) != 1 {
			t.Fatalf("code %v: %d details", code, len(details))
		}
		if details[0].Type != "wsplex.ping.v1.PingRequest" {
			t.Fatalf("code %v: detail type %q", code, details[0].Type)
		}
		d, err := connectproto.UnmarshalErrorDetail(details[0])
		if err != nil {
			t.Fatalf("code %v: detail: %v", code, err)
		}
		if p, ok := d.(*pingv1.PingRequest); !ok || p.GetText() != "msg "+code.String() {
			t.Fatalf("code %v: detail %v", code, d)
		}
		if info.ResponseHeader().Get("x-header") != "h" || info.ResponseTrailer().Get("x-trailer") != "t" {
			t.Fatalf("code %v: headers %v, trailers %v", code, info.ResponseHeader(), info.ResponseTrailer())
		}
	}
}

// Request headers reach the handler; response headers and trailers reach
// the caller, binary ones included.
func TestHeadersAndTrailers(t *testing.T) {
	f := newFixture(t)
	ctx, info := connect.NewClientContext(t.Context())
	info.RequestHeader().Set("X-In", "v1")
	bin := connect.EncodeBinaryHeader([]byte{0, 1, 2, 0xff})
	info.RequestHeader().Set("X-Bin", bin)
	info.RequestHeader().Set("Wsplex-Rpc", "bidi") // reserved: dropped
	if _, err := f.client.Ping(ctx, &pingv1.PingRequest{Text: "headers"}); err != nil {
		t.Fatal(err)
	}
	if got := info.ResponseHeader().Get("X-Out"); got != "v1" {
		t.Errorf("response header %q", got)
	}
	if got, err := connect.DecodeBinaryHeader(info.ResponseHeader().Get("x-bin")); err != nil || string(got) != "\x00\x01\x02\xff" {
		t.Errorf("binary header %q, %v", got, err)
	}
	if got := info.ResponseTrailer().Get("X-Trailer"); got != "t-v1" {
		t.Errorf("trailer %q", got)
	}

	// Server streaming: headers before the first message, trailers at the end.
	ctx, info = connect.NewClientContext(t.Context())
	up, err := f.client.CountUp(ctx, &pingv1.CountUpRequest{Number: 2})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := up.Receive(); err != nil {
		t.Fatal(err)
	}
	if info.ResponseHeader().Get("x-count") != "2" {
		t.Errorf("stream header %v", info.ResponseHeader())
	}
	for err == nil {
		_, err = up.Receive()
	}
	if !errors.Is(err, io.EOF) || info.ResponseTrailer().Get("x-sent") != "2" {
		t.Errorf("end %v, trailers %v", err, info.ResponseTrailer())
	}
}

// The handler's context carries the caller's deadline, and the session's
// AuthInfo.
func TestHandlerContext(t *testing.T) {
	f := newFixture(t)
	res, err := f.client.Ping(t.Context(), &pingv1.PingRequest{Text: "deadline"})
	if err != nil || res.GetText() != "none" {
		t.Fatalf("no deadline: %v, %v", res, err)
	}
	dl := time.Now().Add(time.Hour)
	ctx, cancel := context.WithDeadline(t.Context(), dl)
	defer cancel()
	res, err = f.client.Ping(ctx, &pingv1.PingRequest{Text: "deadline"})
	if err != nil {
		t.Fatal(err)
	}
	// The server measures from the call's arrival: later than the caller's
	// deadline by the transit and a millisecond's rounding at most.
	got := time.UnixMilli(res.GetNumber())
	if got.Before(dl.Add(-time.Minute)) || got.After(dl.Add(guard)) {
		t.Fatalf("handler deadline %v, caller's %v", got, dl)
	}
	// A deadline past what wsplex-timeout-ms can say is sent as its
	// largest value.
	ctx, cancel = context.WithDeadline(t.Context(), time.Now().AddDate(1000, 0, 0))
	defer cancel()
	res, err = f.client.Ping(ctx, &pingv1.PingRequest{Text: "deadline"})
	if err != nil || res.GetText() == "none" || time.UnixMilli(res.GetNumber()).Before(time.Now().AddDate(0, 0, 100)) {
		t.Fatalf("far deadline: %v, %v", res, err)
	}
	res, err = f.client.Ping(t.Context(), &pingv1.PingRequest{Text: "auth"})
	if err != nil || res.GetText() != "user-ann" {
		t.Fatalf("auth info: %v, %v", res, err)
	}
	res, err = f.client.Ping(t.Context(), &pingv1.PingRequest{Text: "info"})
	if err != nil || res.GetText() != "wsplex proto unary" {
		t.Fatalf("call info: %v, %v", res, err)
	}
}

// Cancelling the caller's context resets the call, which cancels the
// handler's context.
func TestCancelReachesHandler(t *testing.T) {
	f := newFixture(t)
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() {
		_, err := f.client.Ping(ctx, &pingv1.PingRequest{Text: "block"})
		done <- err
	}()
	hctx := f.started(t)
	cancel()
	waitDone(t, hctx, "handler context after the caller cancelled")
	if code := wsplex.CodeOf(context.Cause(hctx)); code != wsplex.CodeCanceled {
		t.Errorf("handler's cause %v, want canceled", context.Cause(hctx))
	}
	wantCode(t, <-done, connect.CodeCanceled, "cancelled call")
}

// Closing a stream before its end abandons the call: the handler's context
// ends.
func TestCloseAbandonsCall(t *testing.T) {
	f := newFixture(t)
	up, err := f.client.CountUp(t.Context(), &pingv1.CountUpRequest{Number: -1})
	if err != nil {
		t.Fatal(err)
	}
	if msg, err := up.Receive(); err != nil || msg.GetNumber() != 1 {
		t.Fatalf("first message: %v, %v", msg, err)
	}
	hctx := f.started(t)
	if err := up.Close(); err != nil {
		t.Fatal(err)
	}
	waitDone(t, hctx, "handler context after Close")
}

// A deadline that passes at the caller fails the call with
// deadline_exceeded and cancels the handler.
func TestDeadlineAtCaller(t *testing.T) {
	f := newFixture(t)
	ctx, cancel := context.WithTimeout(t.Context(), 200*time.Millisecond)
	defer cancel()
	_, err := f.client.Ping(ctx, &pingv1.PingRequest{Text: "block"})
	wantCode(t, err, connect.CodeDeadlineExceeded, "call past its deadline")
	waitDone(t, f.started(t), "handler context")
}

// A deadline passes at the server: the server ends the call with
// deadline_exceeded at once, even while its handler ignores its context.
// The caller here sets no deadline of its own, so only the server's
// measure of wsplex-timeout-ms can end the call.
func TestDeadlineAtServer(t *testing.T) {
	f := newFixture(t)
	st, err := stream.Open(t.Context(), f.sess, pingv1connect.PingServicePingProcedure, &stream.OpenOptions{
		Metadata: wsplex.Metadata{"wsplex-rpc": {"unary"}, "wsplex-timeout-ms": {"100"}},
	})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	st.Send(&pingv1.PingRequest{Text: "ignore"})
	st.CloseWrite()
	hctx := f.started(t)
	err = st.Receive(&pingv1.PingResponse{})
	if code := wsplex.CodeOf(err); code != wsplex.CodeDeadlineExceeded {
		t.Fatalf("got %v, want deadline_exceeded", err)
	}
	waitDone(t, hctx, "handler context")
	if !errors.Is(hctx.Err(), context.DeadlineExceeded) {
		t.Fatalf("handler context: %v", hctx.Err())
	}
}

// A handler that fails while the caller streams ends the call: the
// caller's pending Receive gets the status at once.
func TestHandlerEndsBidiCall(t *testing.T) {
	f := newFixture(t)
	cum, err := f.client.CumSum(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	defer cum.Close()
	if err := cum.Send(&pingv1.CumSumRequest{Number: -1}); err != nil {
		t.Fatal(err)
	}
	_, err = cum.Receive()
	wantCode(t, err, connect.CodeAborted, "Receive after the handler failed")
	// Sending on an ended call reports io.EOF; Receive keeps the outcome.
	for err = nil; err == nil; {
		err = cum.Send(&pingv1.CumSumRequest{Number: 1})
	}
	if !errors.Is(err, io.EOF) {
		t.Fatalf("Send after the end: %v", err)
	}
	if err := cum.CloseSend(); err != nil {
		t.Fatalf("CloseSend after the end: %v", err)
	}
	_, err = cum.Receive()
	wantCode(t, err, connect.CodeAborted, "Receive again")
}

// A handler that panics fails its call with internal; the session and
// its other calls go on.
func TestPanicFailsOnlyItsCall(t *testing.T) {
	f := newFixture(t)
	_, err := f.client.Ping(t.Context(), &pingv1.PingRequest{Text: "panic"})
	wantCode(t, err, connect.CodeInternal, "panicking handler")
	if res, err := f.client.Ping(t.Context(), &pingv1.PingRequest{Number: 7}); err != nil || res.GetNumber() != 7 {
		t.Fatalf("call after a panic: %v, %v", res, err)
	}
}

// A session lost mid-call fails the call with unavailable and cancels the
// handler.
func TestSessionLostMidCall(t *testing.T) {
	f := newFixture(t)
	server := <-f.servers
	done := make(chan error, 1)
	go func() {
		_, err := f.client.Ping(t.Context(), &pingv1.PingRequest{Text: "block"})
		done <- err
	}()
	hctx := f.started(t)
	server.Close()
	wantCode(t, <-done, connect.CodeUnavailable, "call on a lost session")
	waitDone(t, hctx, "handler context")
	_, err := f.client.Ping(t.Context(), &pingv1.PingRequest{})
	wantCode(t, err, connect.CodeUnavailable, "call on an ended session")
}

// Unknown procedures, of a known service or not, answer unimplemented;
// so do calls of the wrong shape and with a codec the server lacks.
func TestUnimplemented(t *testing.T) {
	f := newFixture(t)
	client := connect.NewClient(rpc.NewTransport(f.sess, nil))
	for _, procedure := range []string{"/wsplex.ping.v1.PingService/Nope", "/no.such.v1.Service/Method"} {
		err := client.CallUnary(t.Context(), connect.Spec{Procedure: procedure}, &pingv1.PingRequest{}, &pingv1.PingResponse{})
		wantCode(t, err, connect.CodeUnimplemented, procedure)
	}
	// Ping called as a bidi call.
	spec := connect.Spec{Procedure: pingv1connect.PingServicePingProcedure, StreamType: connect.StreamTypeBidi}
	cs, err := client.CallClientStream(t.Context(), spec)
	if err != nil {
		t.Fatal(err)
	}
	cs.Send(&pingv1.PingRequest{})
	cs.CloseSend()
	wantCode(t, cs.Receive(&pingv1.PingResponse{}), connect.CodeUnimplemented, "wrong shape")
	cs.Close()
	// A codec the server lacks.
	st, err := stream.Open(t.Context(), f.sess, pingv1connect.PingServicePingProcedure, &stream.OpenOptions{
		Metadata: wsplex.Metadata{"wsplex-rpc": {"unary"}, "wsplex-codec": {"xml"}},
	})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	if _, err := st.Response(t.Context()); wsplex.CodeOf(err) != wsplex.CodeUnimplemented {
		t.Fatalf("unknown codec: %v", err)
	}
}

// Malformed reserved keys are refused with invalid_argument.
func TestMalformedOpenIsRefused(t *testing.T) {
	f := newFixture(t)
	for _, md := range []wsplex.Metadata{
		{"wsplex-rpc": {"sideways"}},
		{"wsplex-rpc": {"unary"}, "wsplex-timeout-ms": {"0"}},
		{"wsplex-rpc": {"unary"}, "wsplex-timeout-ms": {"12345678901"}},
		{"wsplex-rpc": {"unary"}, "wsplex-timeout-ms": {"1s"}},
	} {
		st, err := stream.Open(t.Context(), f.sess, pingv1connect.PingServicePingProcedure, &stream.OpenOptions{Metadata: md})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := st.Response(t.Context()); wsplex.CodeOf(err) != wsplex.CodeInvalidArgument {
			t.Errorf("%v: %v, want invalid_argument", md, err)
		}
		st.Close()
	}
}

// A single-request call with no request or two is refused with
// unimplemented, as gRPC and Connect do.
func TestRequestCardinality(t *testing.T) {
	f := newFixture(t)
	for _, n := range []int{0, 2} {
		st, err := stream.Open(t.Context(), f.sess, pingv1connect.PingServicePingProcedure, &stream.OpenOptions{
			Metadata: wsplex.Metadata{"wsplex-rpc": {"unary"}},
		})
		if err != nil {
			t.Fatal(err)
		}
		for range n {
			st.Send(&pingv1.PingRequest{})
		}
		st.CloseWrite()
		if err := st.Receive(&pingv1.PingResponse{}); wsplex.CodeOf(err) != wsplex.CodeUnimplemented {
			t.Errorf("%d requests: %v, want unimplemented", n, err)
		}
		st.Close()
	}
}

// A caller that reads no response or two for a unary call fails it with
// unimplemented.
func TestResponseCardinality(t *testing.T) {
	routes := stream.NewRouter(nil)
	routes.HandleFunc("/fake.v1.Fake/{n}", func(ctx context.Context, s *stream.Stream) error {
		var n int
		fmt.Sscan(s.PathValue("n"), &n)
		for range n {
			s.Send(&pingv1.PingResponse{})
		}
		return nil
	})
	srv := plextest.NewServer(t, func(s *mux.Session) { routes.Serve(s) }, nil)
	client := connect.NewClient(rpc.NewTransport(srv.Dial(t, nil), nil))
	for _, n := range []int{0, 2} {
		spec := connect.Spec{Procedure: fmt.Sprintf("/fake.v1.Fake/%d", n)}
		err := client.CallUnary(t.Context(), spec, &pingv1.PingRequest{}, &pingv1.PingResponse{})
		wantCode(t, err, connect.CodeUnimplemented, fmt.Sprintf("%d responses", n))
	}
}

// The JSON codec carries calls too; the handler answers in it.
func TestJSONCodec(t *testing.T) {
	f := newFixture(t)
	client := pingv1connect.NewPingServiceClient(connect.NewClient(rpc.NewTransport(f.sess,
		&rpc.Options{Codecs: []connect.Codec{connectproto.NewJSONCodec()}})))
	res, err := client.Ping(t.Context(), &pingv1.PingRequest{Text: "info"})
	if err != nil || res.GetText() != "wsplex json unary" {
		t.Fatalf("Ping: %v, %v", res, err)
	}
	res, err = client.Ping(t.Context(), &pingv1.PingRequest{Number: 3, Text: "é\"x"})
	if err != nil || res.GetText() != "é\"x" || res.GetNumber() != 3 {
		t.Fatalf("Ping: %v, %v", res, err)
	}
}

// Interceptors work on both sides: a server interceptor rejects by header
// before any payload work, a client interceptor adds the header.
func TestInterceptors(t *testing.T) {
	auth := func(next connect.ServerFunc) connect.ServerFunc {
		return func(ctx context.Context, spec connect.Spec, s connect.ServerStream) error {
			info, _ := connect.CallInfoForServerContext(ctx)
			if info.RequestHeader().Get("Authorization") != "Bearer ok" {
				return connect.NewError(connect.CodeUnauthenticated, "who are you")
			}
			return next(ctx, spec, s)
		}
	}
	f := newFixture(t, auth)
	_, err := f.client.Ping(t.Context(), &pingv1.PingRequest{})
	wantCode(t, err, connect.CodeUnauthenticated, "call without a token")
	withToken := func(next connect.ClientFunc) connect.ClientFunc {
		return func(ctx context.Context, spec connect.Spec) (connect.ClientStream, error) {
			info, _ := connect.CallInfoForClientContext(ctx)
			info.RequestHeader().Set("Authorization", "Bearer ok")
			return next(ctx, spec)
		}
	}
	client := pingv1connect.NewPingServiceClient(connect.NewClient(rpc.NewTransport(f.sess, nil), withToken))
	if _, err := client.Ping(t.Context(), &pingv1.PingRequest{}); err != nil {
		t.Fatalf("call with a token: %v", err)
	}
}

// Named streams and RPC share a Router.
func TestMountBesideNamedStreams(t *testing.T) {
	f := newFixture(t)
	f.routes.HandleFunc("/plain", func(ctx context.Context, s *stream.Stream) error {
		return s.Send(&pingv1.PingResponse{Text: "plain"})
	})
	st, err := stream.Open(t.Context(), f.sess, "/plain", nil)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	var m pingv1.PingResponse
	if err := st.Receive(&m); err != nil || m.GetText() != "plain" {
		t.Fatalf("named stream: %v, %v", &m, err)
	}
	if _, err := f.client.Ping(t.Context(), &pingv1.PingRequest{}); err != nil {
		t.Fatal(err)
	}
	// A plain stream to an unknown name still gets not_found.
	nope, err := stream.Open(t.Context(), f.sess, "/nope", nil)
	if err != nil {
		t.Fatal(err)
	}
	defer nope.Close()
	if _, err := nope.Response(t.Context()); wsplex.CodeOf(err) != wsplex.CodeNotFound {
		t.Fatalf("unknown name: %v", err)
	}
}

// The server calls a service that the client serves on its session, with
// an ordinary generated client, in every shape.
func TestServerCallsClient(t *testing.T) {
	sessions := make(chan *mux.Session, 1)
	srv := plextest.NewServer(t, func(s *mux.Session) {
		sessions <- s
		<-s.Done()
	}, nil)
	// The client serves PingService on its session.
	server := connect.NewServer()
	pingv1connect.RegisterPingServiceHandler(server, newPingServer())
	routes := stream.NewRouter(nil)
	rpc.Mount(routes, server, nil)
	sess := srv.Dial(t, nil)
	served := make(chan error, 1)
	go func() { served <- routes.Serve(sess) }()

	agent := pingv1connect.NewPingServiceClient(connect.NewClient(rpc.NewTransport(<-sessions, nil)))
	res, err := agent.Ping(t.Context(), &pingv1.PingRequest{Number: 9, Text: "from the server"})
	if err != nil || res.GetNumber() != 9 {
		t.Fatalf("server-to-client Ping: %v, %v", res, err)
	}
	cum, err := agent.CumSum(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	cum.Send(&pingv1.CumSumRequest{Number: 2})
	if msg, err := cum.Receive(); err != nil || msg.GetSum() != 2 {
		t.Fatalf("server-to-client CumSum: %v, %v", msg, err)
	}
	cum.CloseSend()
	if _, err := cum.Receive(); !errors.Is(err, io.EOF) {
		t.Fatalf("end: %v", err)
	}
	sess.Close()
	if err := <-served; err != nil {
		t.Fatalf("Serve: %v", err)
	}
}

// Over a reconnect.Client, calls wait for the first dial and fail at once
// with unavailable while the client waits to dial again.
func TestReconnectTransport(t *testing.T) {
	f := newFixture(t)
	waiting := make(chan error, 1)
	c, err := reconnect.New(f.srv.URL, &reconnect.Options{
		MinDelay: time.Hour, MaxDelay: time.Hour,
		OnStateChange: func(st reconnect.State, err error) {
			if st == reconnect.Waiting {
				waiting <- err
			}
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	client := pingv1connect.NewPingServiceClient(connect.NewClient(rpc.NewReconnectTransport(c, nil)))
	if res, err := client.Ping(t.Context(), &pingv1.PingRequest{Number: 1}); err != nil || res.GetNumber() != 1 {
		t.Fatalf("first call: %v, %v", res, err)
	}
	sess, err := c.Session(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	for s := range f.servers { // find and close the server's side of sess
		if s.RemoteAddr().String() == sess.LocalAddr().String() {
			s.Close()
			break
		}
	}
	select {
	case <-waiting:
	case <-time.After(guard):
		t.Fatal("the client did not notice the lost session")
	}
	ctx, cancel := context.WithTimeout(t.Context(), guard)
	defer cancel()
	_, err = client.Ping(ctx, &pingv1.PingRequest{})
	wantCode(t, err, connect.CodeUnavailable, "call while the client waits to redial")
	if ctx.Err() != nil {
		t.Fatal("the call waited for its deadline instead of failing at once")
	}
}

// A handler calls back the services of its caller's end, on the session
// the call arrived on.
func TestHandlerCallsBack(t *testing.T) {
	f := newFixture(t)
	server := connect.NewServer()
	pingv1connect.RegisterPingServiceHandler(server, newPingServer())
	routes := stream.NewRouter(nil)
	rpc.Mount(routes, server, nil)
	served := make(chan error, 1)
	go func() { served <- routes.Serve(f.sess) }()
	res, err := f.client.Ping(t.Context(), &pingv1.PingRequest{Text: "callback"})
	if err != nil || res.GetText() != "called back: from the server" {
		t.Fatalf("Ping: %v, %v", res, err)
	}
	if rpc.Session(t.Context()) != nil {
		t.Fatal("Session outside a call is not nil")
	}
	f.sess.Close()
	if err := <-served; err != nil {
		t.Fatal(err)
	}
}

// sumEnds is a PingService whose Sum reports how its requests ended.
type sumEnds struct {
	pingv1connect.UnimplementedPingServiceHandler
	ended chan error
}

func (p *sumEnds) Sum(_ context.Context, s pingv1connect.PingServiceSumServerStream) (*pingv1.SumResponse, error) {
	for {
		if _, err := s.Receive(); err != nil {
			p.ended <- err
			if errors.Is(err, io.EOF) {
				return &pingv1.SumResponse{}, nil
			}
			return nil, err
		}
	}
}

// A caller that cancels a client-streaming call and then closes its
// requests gets connect.CodeCanceled, and the handler never sees the end of
// the requests: a cancelled upload must not look complete.
func TestCancelBeforeCloseSend(t *testing.T) {
	p := &sumEnds{ended: make(chan error, 1)}
	server := connect.NewServer()
	pingv1connect.RegisterPingServiceHandler(server, p)
	routes := stream.NewRouter(nil)
	rpc.Mount(routes, server, nil)
	srv := plextest.NewServer(t, func(s *mux.Session) { routes.Serve(s) }, nil)
	client := pingv1connect.NewPingServiceClient(connect.NewClient(rpc.NewTransport(srv.Dial(t, nil), nil)))
	for range 10 {
		ctx, cancel := context.WithCancel(t.Context())
		sum, err := client.Sum(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if err := sum.Send(&pingv1.SumRequest{Number: 1}); err != nil {
			t.Fatal(err)
		}
		cancel()
		_, err = sum.CloseAndReceive()
		wantCode(t, err, connect.CodeCanceled, "call cancelled before it closed its requests")
		select {
		case err := <-p.ended:
			if errors.Is(err, io.EOF) {
				t.Fatal("the handler saw the end of the requests of a cancelled call")
			}
		case <-time.After(guard):
			t.Fatal("the handler's requests did not end")
		}
	}
}
