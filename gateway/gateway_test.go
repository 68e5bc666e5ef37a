package gateway_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"
	"time"

	"connectrpc.com/connect/v2"
	"connectrpc.com/connect/v2/connecthttp"
	"connectrpc.com/connect/v2/connectproto"
	"go.uber.org/goleak"

	"github.com/wsplex/wsplex/gateway"
	pingv1 "github.com/wsplex/wsplex/internal/gen/ping/v1"
	"github.com/wsplex/wsplex/internal/gen/ping/v1/pingv1connect"
	"github.com/wsplex/wsplex/internal/plextest"
	"github.com/wsplex/wsplex/mux"
	"github.com/wsplex/wsplex/rpc"
	"github.com/wsplex/wsplex/stream"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// guard bounds waits that succeed at once unless the code is broken; it
// is long so that a loaded machine never trips it.
const guard = 20 * time.Second

// upstream implements PingService over HTTP, the service the gateway
// forwards to. Requests whose text names a behaviour get it.
type upstream struct {
	pingv1connect.UnimplementedPingServiceHandler
	// started receives the context of each handler that blocks.
	started chan context.Context
}

func (u *upstream) Ping(ctx context.Context, req *pingv1.PingRequest) (*pingv1.PingResponse, error) {
	info, _ := connect.CallInfoForServerContext(ctx)
	switch req.GetText() {
	case "headers":
		info.ResponseHeader().Set("x-out", info.RequestHeader().Get("x-in"))
		info.ResponseHeader().Set("x-bin", info.RequestHeader().Get("x-bin"))
		info.ResponseTrailer().Set("x-trailer", "t-"+info.RequestHeader().Get("x-in"))
		return &pingv1.PingResponse{Text: info.Protocol + " " + info.Codec + " " + info.RequestHeader().Get("x-route")}, nil
	case "block":
		u.started <- ctx
		<-ctx.Done()
		return nil, ctx.Err()
	case "deadline":
		dl, ok := ctx.Deadline()
		if !ok {
			return &pingv1.PingResponse{Text: "none"}, nil
		}
		return &pingv1.PingResponse{Number: dl.UnixMilli()}, nil
	}
	return &pingv1.PingResponse{Number: req.GetNumber(), Text: req.GetText()}, nil
}

func (u *upstream) Fail(ctx context.Context, req *pingv1.FailRequest) (*pingv1.FailResponse, error) {
	info, _ := connect.CallInfoForServerContext(ctx)
	info.ResponseHeader().Set("x-header", "h")
	info.ResponseTrailer().Set("x-trailer", "t")
	detail, err := connectproto.NewErrorDetail(&pingv1.PingRequest{Text: req.GetMessage()})
	if err != nil {
		return nil, err
	}
	return nil, connect.NewError(connect.Code(req.GetCode()), req.GetMessage()).WithDetail(detail)
}

func (u *upstream) Sum(ctx context.Context, s pingv1connect.PingServiceSumServerStream) (*pingv1.SumResponse, error) {
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

func (u *upstream) CountUp(ctx context.Context, req *pingv1.CountUpRequest, s pingv1connect.PingServiceCountUpServerStream) error {
	info, _ := connect.CallInfoForServerContext(ctx)
	info.ResponseHeader().Set("x-count", fmt.Sprint(req.GetNumber()))
	for i := range req.GetNumber() {
		if err := s.Send(&pingv1.CountUpResponse{Number: i + 1}); err != nil {
			return err
		}
	}
	info.ResponseTrailer().Set("x-sent", fmt.Sprint(req.GetNumber()))
	return nil
}

func (u *upstream) CumSum(ctx context.Context, s pingv1connect.PingServiceCumSumServerStream) error {
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

// newUpstream serves a connect-go PingService over HTTP/1.1 and h2c on
// loopback, and returns it and its URL.
func newUpstream(t *testing.T) (*upstream, string) {
	t.Helper()
	u := &upstream{started: make(chan context.Context, 16)}
	return u, serveHTTP(t, u.handler())
}

func (u *upstream) handler() http.Handler {
	server := connect.NewServer()
	pingv1connect.RegisterPingServiceHandler(server, u)
	routes := http.NewServeMux()
	connecthttp.Mount(routes, server)
	return routes
}

// serveHTTP serves h over HTTP/1.1 and h2c on loopback until the test ends.
func serveHTTP(t *testing.T, h http.Handler) string {
	t.Helper()
	srv := httptest.NewUnstartedServer(h)
	srv.Config.Protocols = new(http.Protocols)
	srv.Config.Protocols.SetHTTP1(true)
	srv.Config.Protocols.SetUnencryptedHTTP2(true)
	srv.Start()
	t.Cleanup(srv.Close)
	return srv.URL
}

// httpClient returns a client for HTTP/1.1, or h2c if h2c is set.
func httpClient(t *testing.T, h2c bool) *http.Client {
	t.Helper()
	tr := &http.Transport{}
	if h2c {
		tr.Protocols = new(http.Protocols)
		tr.Protocols.SetUnencryptedHTTP2(true)
	}
	t.Cleanup(tr.CloseIdleConnections)
	return &http.Client{Transport: tr}
}

// dialGateway serves a gateway Handler that forwards every call along
// route, at "/" on a wsplex server, and returns a client session to it.
func dialGateway(t *testing.T, route gateway.Route, opts *gateway.Options) *mux.Session {
	t.Helper()
	routes := stream.NewRouter(nil)
	routes.Handle("/", gateway.NewHandler(route, opts))
	srv := plextest.NewServer(t, func(s *mux.Session) { routes.Serve(s) }, nil)
	return srv.Dial(t, nil)
}

func pingClient(sess *mux.Session, opts *rpc.Options) pingv1connect.PingServiceClient {
	return pingv1connect.NewPingServiceClient(connect.NewClient(rpc.NewTransport(sess, opts)))
}

func wantCode(t *testing.T, err error, code connect.Code, what string) {
	t.Helper()
	if got := connect.CodeOf(err); err == nil || got != code {
		t.Fatalf("%s: %v (code %v), want code %v", what, err, got, code)
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

// mode is one way to reach the upstream.
type mode struct {
	name    string
	h2c     bool
	options []connecthttp.Option
}

var modes = []mode{
	{"connect/http1", false, nil},
	{"connect/h2c", true, nil},
	{"grpc/h2c", true, []connecthttp.Option{connecthttp.WithGRPC()}},
	{"grpcweb/http1", false, []connecthttp.Option{connecthttp.WithGRPCWeb()}},
	{"grpcweb/h2c", true, []connecthttp.Option{connecthttp.WithGRPCWeb()}},
	{"connect-gzip/h2c", true, []connecthttp.Option{connecthttp.WithSendGzip()}},
}

// Every call shape is forwarded, in both codecs, with each protocol; bidi
// over HTTP/2.
func TestCallShapes(t *testing.T) {
	_, url := newUpstream(t)
	for _, m := range modes {
		for _, codec := range []connect.Codec{connectproto.NewBinaryCodec(), connectproto.NewJSONCodec()} {
			t.Run(m.name+"/"+codec.Name(), func(t *testing.T) {
				up := gateway.NewTransport(httpClient(t, m.h2c), url, m.options...)
				client := pingClient(dialGateway(t, gateway.To(up), nil), &rpc.Options{Codecs: []connect.Codec{codec}})
				checkShapes(t, client, m.h2c)
			})
		}
	}
}

func checkShapes(t *testing.T, client pingv1connect.PingServiceClient, bidi bool) {
	t.Helper()
	ctx := t.Context()
	res, err := client.Ping(ctx, &pingv1.PingRequest{Number: 42, Text: "hello"})
	if err != nil || res.GetNumber() != 42 || res.GetText() != "hello" {
		t.Fatalf("Ping: %v, %v", res, err)
	}

	sum, err := client.Sum(ctx)
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

	up, err := client.CountUp(ctx, &pingv1.CountUpRequest{Number: 3})
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

	if !bidi {
		return
	}
	cum, err := client.CumSum(ctx)
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
		// Full duplex: each answer arrives before the next request.
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

// The upstream's error codes, messages and details reach the caller as
// the upstream sent them, with the headers and trailers of the failed
// call, with every protocol; so does an error that ends a bidi call.
func TestErrorsAndDetails(t *testing.T) {
	_, url := newUpstream(t)
	for _, m := range modes {
		t.Run(m.name, func(t *testing.T) {
			client := pingClient(dialGateway(t, gateway.To(gateway.NewTransport(httpClient(t, m.h2c), url, m.options...)), nil), nil)
			for _, code := range []connect.Code{connect.CodeCanceled, connect.CodeInvalidArgument, connect.CodeNotFound,
				connect.CodeResourceExhausted, connect.CodeInternal, connect.CodeUnavailable, connect.CodeUnauthenticated} {
				ctx, info := connect.NewClientContext(t.Context())
				_, err := client.Fail(ctx, &pingv1.FailRequest{Code: int32(code), Message: "msg " + code.String()})
				ce, ok := errors.AsType[*connect.Error](err)
				if !ok || ce.Code() != code || ce.Message() != "msg "+code.String() {
					t.Fatalf("code %v: %v", code, err)
				}
				if len(ce.Details()) != 1 {
					t.Fatalf("code %v: %d details", code, len(ce.Details()))
				}
				d, err := connectproto.UnmarshalErrorDetail(ce.Details()[0])
				if p, ok := d.(*pingv1.PingRequest); err != nil || !ok || p.GetText() != "msg "+code.String() {
					t.Fatalf("code %v: detail %v, %v", code, d, err)
				}
				if info.ResponseHeader().Get("x-header") != "h" || info.ResponseTrailer().Get("x-trailer") != "t" {
					t.Fatalf("code %v: headers %v, trailers %v", code, info.ResponseHeader(), info.ResponseTrailer())
				}
			}
			if !m.h2c {
				return
			}
			cum, err := client.CumSum(t.Context())
			if err != nil {
				t.Fatal(err)
			}
			defer cum.Close()
			cum.Send(&pingv1.CumSumRequest{Number: 1})
			if _, err := cum.Receive(); err != nil {
				t.Fatal(err)
			}
			cum.Send(&pingv1.CumSumRequest{Number: -1})
			_, err = cum.Receive()
			wantCode(t, err, connect.CodeAborted, "bidi call the upstream failed")
		})
	}
}

// Request headers reach the upstream, binary ones included; response
// headers and trailers come back; the protocols' own headers stay on
// their hop.
func TestHeadersAndTrailers(t *testing.T) {
	_, url := newUpstream(t)
	for _, m := range modes {
		t.Run(m.name, func(t *testing.T) {
			client := pingClient(dialGateway(t, gateway.To(gateway.NewTransport(httpClient(t, m.h2c), url, m.options...)), nil), nil)
			ctx, info := connect.NewClientContext(t.Context())
			info.RequestHeader().Set("X-In", "v1")
			info.RequestHeader().Set("X-Bin", connect.EncodeBinaryHeader([]byte{0, 1, 2, 0xff}))
			if _, err := client.Ping(ctx, &pingv1.PingRequest{Text: "headers"}); err != nil {
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
			for _, h := range []*connect.Header{info.ResponseHeader(), info.ResponseTrailer()} {
				for k := range h.All() {
					if k == "Content-Type" || k == "Grpc-Status" || k == "Grpc-Message" || k == "Date" {
						t.Errorf("hop header %s reached the caller", k)
					}
				}
			}

			// Server streaming: headers with the first message, trailers
			// at the end.
			ctx, info = connect.NewClientContext(t.Context())
			up, err := client.CountUp(ctx, &pingv1.CountUpRequest{Number: 2})
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
		})
	}
}

// A gRPC or gRPC-Web "trailers-only" response carries the status and the
// call's metadata in one header block: the caller gets the block as both
// the response headers and the trailers, as connect-go reports it
// (SPEC.md §13.6), in every call shape, without the protocol's own keys.
func TestTrailersOnly(t *testing.T) {
	url := serveHTTP(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body)
		w.Header().Set("Content-Type", r.Header.Get("Content-Type"))
		w.Header()["X-Custom-Trailer"] = []string{"bing", "quuz"}
		w.Header().Set("Grpc-Status", "9")
		w.Header().Set("Grpc-Message", "error")
		w.WriteHeader(http.StatusOK)
	}))
	for _, m := range modes {
		if !strings.HasPrefix(m.name, "grpc") {
			continue // Connect has no trailers-only response
		}
		t.Run(m.name, func(t *testing.T) {
			client := pingClient(dialGateway(t, gateway.To(gateway.NewTransport(httpClient(t, m.h2c), url, m.options...)), nil), nil)
			check := func(what string, info *connect.CallInfo, err error) {
				t.Helper()
				if ce, ok := errors.AsType[*connect.Error](err); !ok || ce.Code() != connect.CodeFailedPrecondition || ce.Message() != "error" {
					t.Errorf("%s: %v", what, err)
				}
				for _, h := range []*connect.Header{info.ResponseHeader(), info.ResponseTrailer()} {
					var keys []string
					for k := range h.All() {
						keys = append(keys, k)
					}
					if got := h.Values("x-custom-trailer"); len(keys) != 1 || !slices.Equal(got, []string{"bing", "quuz"}) {
						t.Errorf("%s: headers %v, trailers %v; want x-custom-trailer [bing quuz] in both, alone",
							what, info.ResponseHeader(), info.ResponseTrailer())
					}
				}
			}
			ctx, info := connect.NewClientContext(t.Context())
			_, err := client.Ping(ctx, &pingv1.PingRequest{})
			check("unary", info, err)

			ctx, info = connect.NewClientContext(t.Context())
			up, err := client.CountUp(ctx, &pingv1.CountUpRequest{Number: 1})
			if err != nil {
				t.Fatal(err)
			}
			defer up.Close()
			for err == nil {
				_, err = up.Receive()
			}
			check("server streaming", info, err)
		})
	}
}

// The caller's deadline reaches the upstream handler.
func TestDeadlinePropagates(t *testing.T) {
	_, url := newUpstream(t)
	for _, m := range modes[:3] {
		t.Run(m.name, func(t *testing.T) {
			client := pingClient(dialGateway(t, gateway.To(gateway.NewTransport(httpClient(t, m.h2c), url, m.options...)), nil), nil)
			res, err := client.Ping(t.Context(), &pingv1.PingRequest{Text: "deadline"})
			if err != nil || res.GetText() != "none" {
				t.Fatalf("no deadline: %v, %v", res, err)
			}
			dl := time.Now().Add(time.Hour)
			ctx, cancel := context.WithDeadline(t.Context(), dl)
			defer cancel()
			res, err = client.Ping(ctx, &pingv1.PingRequest{Text: "deadline"})
			if err != nil {
				t.Fatal(err)
			}
			// Each hop measures from the call's arrival: later than the
			// caller's deadline by the transit and rounding at most.
			got := time.UnixMilli(res.GetNumber())
			if got.Before(dl.Add(-time.Minute)) || got.After(dl.Add(guard)) {
				t.Fatalf("upstream deadline %v, caller's %v", got, dl)
			}
		})
	}
}

// A call whose deadline passes fails with deadline_exceeded, and the
// upstream handler's context ends.
func TestDeadlineEndsUpstreamCall(t *testing.T) {
	u, url := newUpstream(t)
	client := pingClient(dialGateway(t, gateway.To(gateway.NewTransport(httpClient(t, true), url)), nil), nil)
	ctx, cancel := context.WithTimeout(t.Context(), 300*time.Millisecond)
	defer cancel()
	_, err := client.Ping(ctx, &pingv1.PingRequest{Text: "block"})
	wantCode(t, err, connect.CodeDeadlineExceeded, "call past its deadline")
	waitDone(t, <-u.started, "upstream handler's context")
}

// Cancelling the caller's context cancels the upstream handler's, with
// each protocol.
func TestCancelReachesUpstream(t *testing.T) {
	u, url := newUpstream(t)
	for _, m := range modes {
		t.Run(m.name, func(t *testing.T) {
			client := pingClient(dialGateway(t, gateway.To(gateway.NewTransport(httpClient(t, m.h2c), url, m.options...)), nil), nil)
			ctx, cancel := context.WithCancel(t.Context())
			done := make(chan error, 1)
			go func() {
				_, err := client.Ping(ctx, &pingv1.PingRequest{Text: "block"})
				done <- err
			}()
			var hctx context.Context
			select {
			case hctx = <-u.started:
			case <-time.After(guard):
				t.Fatal("the upstream handler did not start")
			}
			cancel()
			waitDone(t, hctx, "upstream handler's context after the caller cancelled")
			wantCode(t, <-done, connect.CodeCanceled, "cancelled call")
		})
	}
}

// An upstream nobody listens at fails calls with unavailable.
func TestUpstreamUnreachable(t *testing.T) {
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	url := "http://" + lis.Addr().String()
	lis.Close()
	for _, m := range modes[:3] {
		t.Run(m.name, func(t *testing.T) {
			client := pingClient(dialGateway(t, gateway.To(gateway.NewTransport(httpClient(t, m.h2c), url, m.options...)), nil), nil)
			_, err := client.Ping(t.Context(), &pingv1.PingRequest{})
			wantCode(t, err, connect.CodeUnavailable, "unary call")
			up, err := client.CountUp(t.Context(), &pingv1.CountUpRequest{Number: 1})
			if err == nil {
				_, err = up.Receive()
			}
			wantCode(t, err, connect.CodeUnavailable, "server-streaming call")
		})
	}
}

// A Route chooses each call's upstream, from a request header that it
// drops; its error fails the call with the Route's code and message.
func TestRoutePerCall(t *testing.T) {
	_, url := newUpstream(t)
	upstreams := map[string]*gateway.Transport{
		"connect": gateway.NewTransport(httpClient(t, false), url),
		"grpc":    gateway.NewTransport(httpClient(t, true), url, connecthttp.WithGRPC()),
	}
	route := func(ctx context.Context, call *connect.CallInfo) (connect.Transport, error) {
		name := call.RequestHeader().Get("x-route")
		call.RequestHeader().Delete("x-route")
		if up := upstreams[name]; up != nil {
			return up, nil
		}
		return nil, connect.NewError(connect.CodePermissionDenied, "no upstream "+name)
	}
	sess := dialGateway(t, route, nil)
	for _, codec := range []connect.Codec{connectproto.NewBinaryCodec(), connectproto.NewJSONCodec()} {
		client := pingClient(sess, &rpc.Options{Codecs: []connect.Codec{codec}})
		for _, name := range []string{"connect", "grpc", "connect"} {
			ctx, info := connect.NewClientContext(t.Context())
			info.RequestHeader().Set("x-route", name)
			res, err := client.Ping(ctx, &pingv1.PingRequest{Text: "headers"})
			// The upstream answers with the protocol and codec it saw, and
			// the x-route header: empty, since the route dropped it.
			if want := name + " " + codec.Name() + " "; err != nil || res.GetText() != want {
				t.Fatalf("via %s: %q, %v; want %q", name, res.GetText(), err, want)
			}
		}
	}
	ctx, info := connect.NewClientContext(t.Context())
	info.RequestHeader().Set("x-route", "nowhere")
	_, err := pingClient(sess, nil).Ping(ctx, &pingv1.PingRequest{})
	if ce, ok := errors.AsType[*connect.Error](err); !ok || ce.Code() != connect.CodePermissionDenied || ce.Message() != "no upstream nowhere" {
		t.Fatalf("unknown route: %v", err)
	}
}

// A Local reaches an http.Handler without a port, in every shape and
// protocol, bidi included.
func TestLocal(t *testing.T) {
	u := &upstream{started: make(chan context.Context, 16)}
	local := gateway.NewLocal(u.handler())
	t.Cleanup(func() { local.Close() })
	for _, m := range modes {
		t.Run(m.name, func(t *testing.T) {
			client := pingClient(dialGateway(t, gateway.To(local.Transport(m.options...)), nil), nil)
			checkShapes(t, client, true)
		})
	}
	if err := local.Close(); err != nil {
		t.Fatal(err)
	}
	// Closed: calls fail with unavailable.
	client := pingClient(dialGateway(t, gateway.To(local.Transport()), nil), nil)
	_, err := client.Ping(t.Context(), &pingv1.PingRequest{})
	wantCode(t, err, connect.CodeUnavailable, "call to a closed Local")
}

// Interceptors run around forwarded calls; a server that serves some
// procedures itself forwards the others with Forward, on one rpc.Handler.
func TestInterceptorsAndMixedServer(t *testing.T) {
	_, url := newUpstream(t)
	up := gateway.NewTransport(httpClient(t, false), url)
	auth := func(next connect.ServerFunc) connect.ServerFunc {
		return func(ctx context.Context, spec connect.Spec, s connect.ServerStream) error {
			info, _ := connect.CallInfoForServerContext(ctx)
			if info.RequestHeader().Get("Authorization") != "Bearer ok" {
				return connect.NewError(connect.CodeUnauthenticated, "who are you")
			}
			return next(ctx, spec, s)
		}
	}
	client := pingClient(dialGateway(t, gateway.To(up), &gateway.Options{Interceptors: []connect.ServerInterceptor{auth}}), nil)
	_, err := client.Ping(t.Context(), &pingv1.PingRequest{})
	wantCode(t, err, connect.CodeUnauthenticated, "call without a token")
	ctx, info := connect.NewClientContext(t.Context())
	info.RequestHeader().Set("Authorization", "Bearer ok")
	if res, err := client.Ping(ctx, &pingv1.PingRequest{Number: 3}); err != nil || res.GetNumber() != 3 {
		t.Fatalf("call with a token: %v, %v", res, err)
	}

	// Sum is served here; the rest goes upstream.
	server := connect.NewServer()
	server.Register(connect.Method{
		Spec: connect.Spec{Procedure: pingv1connect.PingServiceSumProcedure, StreamType: connect.StreamTypeClient},
		Handler: func(ctx context.Context, spec connect.Spec, s connect.ServerStream) error {
			for {
				if err := s.Receive(&pingv1.SumRequest{}); errors.Is(err, io.EOF) {
					return s.Send(&pingv1.SumResponse{Sum: -1})
				} else if err != nil {
					return err
				}
			}
		},
	})
	server.SetUnknownHandler(gateway.Forward(gateway.To(up)))
	routes := stream.NewRouter(nil)
	routes.Handle("/", rpc.NewHandler(server, &rpc.Options{Codecs: gateway.Codecs()}))
	srv := plextest.NewServer(t, func(s *mux.Session) { routes.Serve(s) }, nil)
	client = pingClient(srv.Dial(t, nil), nil)
	sum, err := client.Sum(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	sum.Send(&pingv1.SumRequest{Number: 5})
	if res, err := sum.CloseAndReceive(); err != nil || res.GetSum() != -1 {
		t.Fatalf("local Sum: %v, %v", res, err)
	}
	if res, err := client.Ping(t.Context(), &pingv1.PingRequest{Number: 4}); err != nil || res.GetNumber() != 4 {
		t.Fatalf("forwarded Ping: %v, %v", res, err)
	}
}

// newBridge serves, over HTTP/1.1 and h2c, a connect.Server that forwards
// every PingService call to a wsplex session whose server serves u, and
// returns its URL: the other direction, HTTP callers to a wsplex service.
func newBridge(t *testing.T, u *upstream) string {
	t.Helper()
	service := connect.NewServer()
	pingv1connect.RegisterPingServiceHandler(service, u)
	routes := stream.NewRouter(nil)
	rpc.Mount(routes, service, nil)
	sess := plextest.NewServer(t, func(s *mux.Session) { routes.Serve(s) }, nil).Dial(t, nil)
	transports := make(map[string]connect.Transport)
	for _, c := range gateway.Codecs() {
		transports[c.Name()] = rpc.NewTransport(sess, &rpc.Options{Codecs: []connect.Codec{c}})
	}
	forward := gateway.Forward(func(_ context.Context, call *connect.CallInfo) (connect.Transport, error) {
		return transports[call.Codec], nil
	})
	bridge := connect.NewServer()
	for spec := range service.Specs() {
		bridge.Register(connect.Method{Spec: spec, Handler: forward})
	}
	h := http.NewServeMux()
	connecthttp.Mount(h, bridge, connecthttp.WithCodecs(gateway.Codecs()...))
	return serveHTTP(t, h)
}

// Forward serves HTTP callers too: a unary call's trailers, which the
// Connect protocol sends as headers, reach them, and a request body that
// breaks off fails the call as broken, not as cancelled.
func TestForwardFromHTTP(t *testing.T) {
	u := &upstream{started: make(chan context.Context, 16)}
	url := newBridge(t, u)
	for _, m := range modes {
		t.Run(m.name, func(t *testing.T) {
			client := pingv1connect.NewPingServiceClient(connect.NewClient(connecthttp.NewTransport(httpClient(t, m.h2c), url, m.options...)))
			ctx, info := connect.NewClientContext(t.Context())
			info.RequestHeader().Set("X-In", "v1")
			res, err := client.Ping(ctx, &pingv1.PingRequest{Text: "headers"})
			if err != nil {
				t.Fatal(err)
			}
			if got := res.GetText(); got != "wsplex proto " {
				t.Errorf("protocol and codec at the service: %q", got)
			}
			if info.ResponseHeader().Get("X-Out") != "v1" || info.ResponseTrailer().Get("X-Trailer") != "t-v1" {
				t.Errorf("headers %v, trailers %v", info.ResponseHeader(), info.ResponseTrailer())
			}
			if m.h2c {
				checkShapes(t, client, true)
			}
		})
	}
	// A Connect client-streaming request whose only message is cut short.
	body := []byte{0, 0, 0, 0, 100, 1, 2}
	res, err := httpClient(t, false).Post(url+pingv1connect.PingServiceSumProcedure, "application/connect+proto", bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	out, _ := io.ReadAll(res.Body)
	if !strings.Contains(string(out), `"code":"internal"`) || !strings.Contains(string(out), "promised 100 bytes") {
		t.Fatalf("truncated request: %s", out)
	}
}

// cumSum is an upstream whose CumSum announces its start, answers each
// number with itself until its requests fail or end, and reports how.
type cumSum struct {
	pingv1connect.UnimplementedPingServiceHandler
	started chan struct{}
	ended   chan error
}

func (u *cumSum) CumSum(_ context.Context, s pingv1connect.PingServiceCumSumServerStream) error {
	u.started <- struct{}{}
	for {
		req, err := s.Receive()
		if err != nil {
			u.ended <- err
			return err
		}
		if err := s.Send(&pingv1.CumSumResponse{Sum: req.GetNumber()}); err != nil {
			u.ended <- err
			return err
		}
	}
}

// A caller that cancels a bidi call while its requests are open cancels the
// upstream call, which sees a failure, not the end of the requests. Over
// HTTP/2, net/http does not watch the context of a request whose body is
// open and idle.
func TestCancelMidBidiCall(t *testing.T) {
	for _, m := range modes {
		if !m.h2c {
			continue
		}
		t.Run(m.name, func(t *testing.T) {
			u := &cumSum{started: make(chan struct{}, 1), ended: make(chan error, 1)}
			server := connect.NewServer()
			pingv1connect.RegisterPingServiceHandler(server, u)
			h := http.NewServeMux()
			connecthttp.Mount(h, server)
			srv := httptest.NewUnstartedServer(h)
			srv.Config.Protocols = new(http.Protocols)
			srv.Config.Protocols.SetUnencryptedHTTP2(true)
			srv.Start()
			t.Cleanup(srv.Close)
			client := pingClient(dialGateway(t, gateway.To(gateway.NewTransport(httpClient(t, m.h2c), srv.URL, m.options...)), nil), nil)
			ctx, cancel := context.WithCancel(t.Context())
			defer cancel()
			cum, err := client.CumSum(ctx)
			if err != nil {
				t.Fatal(err)
			}
			defer cum.Close()
			cum.Send(&pingv1.CumSumRequest{Number: 1})
			if _, err := cum.Receive(); err != nil {
				t.Fatal(err)
			}
			<-u.started
			cancel()
			_, err = cum.Receive()
			wantCode(t, err, connect.CodeCanceled, "cancelled call")
			select {
			case err := <-u.ended:
				if err == nil || errors.Is(err, io.EOF) {
					t.Fatalf("upstream's requests ended with %v, want a failure", err)
				}
			case <-time.After(guard):
				// Unblock the forwarded call, so that the session closes.
				srv.CloseClientConnections()
				t.Fatal("upstream call not cancelled")
			}
		})
	}
}
