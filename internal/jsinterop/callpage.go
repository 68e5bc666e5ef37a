package jsinterop

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"

	"connectrpc.com/connect/v2"
	"connectrpc.com/connect/v2/connectproto"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/wrapperspb"

	"github.com/wsplex/wsplex"
	pingv1 "github.com/wsplex/wsplex/internal/gen/ping/v1"
	"github.com/wsplex/wsplex/internal/gen/ping/v1/pingv1connect"
	"github.com/wsplex/wsplex/rpc"
	"github.com/wsplex/wsplex/stream"
)

// callPage serves "/call-page/{what}" for the tests of the client's
// serveConnect: opened by a page that serves PingService on its session,
// it calls that service on the same session with the generated connect-go
// client, as an application asks its page something, and sends back one
// StringValue that says what came of the call.
func callPage(ctx context.Context, st *stream.Stream) error {
	what := st.PathValue("what")
	var opts *rpc.Options
	if strings.HasSuffix(what, "-json") {
		opts = &rpc.Options{Codecs: []connect.Codec{connectproto.NewJSONCodec()}}
		what = strings.TrimSuffix(what, "-json")
	}
	c := connect.NewClient(rpc.NewTransport(st.Session(), opts))
	page := pingv1connect.NewPingServiceClient(c)
	var got string
	var err error
	switch what {
	case "shapes":
		got, err = callShapes(ctx, page)
	case "headers":
		got, err = callHeaders(ctx, page)
	case "error":
		got = callError(ctx, page)
	case "deadline":
		got, err = callPastDeadline(ctx, st)
	case "timeout":
		tctx, cancel := context.WithTimeout(ctx, 100*time.Millisecond)
		defer cancel()
		_, err := page.Ping(tctx, &pingv1.PingRequest{Text: "block"})
		got = fmt.Sprint(connect.CodeOf(err))
	case "cancel":
		got, err = callCancel(ctx, page)
	case "unknown": // a procedure no service of the page serves
		err := c.CallUnary(ctx, connect.Spec{Procedure: "/wsplex.ping.v1.Missing/Ping", StreamType: connect.StreamTypeUnary},
			&pingv1.PingRequest{}, new(pingv1.PingResponse))
		got = errorText(err)
	case "mismatch": // Ping called as a bidi call
		got, err = callMismatch(ctx, c)
	default:
		return wsplex.Errorf(wsplex.CodeInvalidArgument, "no case %q", what)
	}
	if err != nil {
		got = "failed: " + errorText(err)
	}
	return st.Send(wrapperspb.String(got))
}

// callShapes makes one call of each shape.
func callShapes(ctx context.Context, page pingv1connect.PingServiceClient) (string, error) {
	var out []string
	res, err := page.Ping(ctx, &pingv1.PingRequest{Number: 7, Text: "hi"})
	if err != nil {
		return "", fmt.Errorf("ping: %w", err)
	}
	out = append(out, fmt.Sprintf("ping=%d %s", res.GetNumber(), res.GetText()))

	sctx, info := connect.NewClientContext(ctx)
	up, err := page.CountUp(sctx, &pingv1.CountUpRequest{Number: 3})
	if err != nil {
		return "", err
	}
	var counted []string
	for {
		r, err := up.Receive()
		if errors.Is(err, io.EOF) {
			break
		} else if err != nil {
			return "", fmt.Errorf("countUp: %w", err)
		}
		counted = append(counted, fmt.Sprint(r.GetNumber()))
	}
	up.Close()
	out = append(out, fmt.Sprintf("countUp=%s header=%s trailer=%s", strings.Join(counted, ","),
		info.ResponseHeader().Get("x-count"), info.ResponseTrailer().Get("x-sent")))

	sctx, info = connect.NewClientContext(ctx)
	sum, err := page.Sum(sctx)
	if err != nil {
		return "", err
	}
	for n := range int64(4) {
		if err := sum.Send(&pingv1.SumRequest{Number: n + 1}); err != nil {
			return "", fmt.Errorf("sum: %w", err)
		}
	}
	total, err := sum.CloseAndReceive()
	if err != nil {
		return "", fmt.Errorf("sum: %w", err)
	}
	out = append(out, fmt.Sprintf("sum=%d trailer=%s", total.GetSum(), info.ResponseTrailer().Get("x-count")))

	cum, err := page.CumSum(ctx)
	if err != nil {
		return "", err
	}
	defer cum.Close()
	var sums []string
	for n := range int64(3) {
		if err := cum.Send(&pingv1.CumSumRequest{Number: n + 1}); err != nil {
			return "", fmt.Errorf("cumSum: %w", err)
		}
		r, err := cum.Receive()
		if err != nil {
			return "", fmt.Errorf("cumSum: %w", err)
		}
		sums = append(sums, fmt.Sprint(r.GetSum()))
	}
	if err := cum.CloseSend(); err != nil {
		return "", err
	}
	if _, err := cum.Receive(); !errors.Is(err, io.EOF) {
		return "", fmt.Errorf("cumSum's end: %v", err)
	}
	out = append(out, "cumSum="+strings.Join(sums, ","))
	return strings.Join(out, "; "), nil
}

// callHeaders sends request headers, a reserved key among them, and
// reports the response headers and trailers and the keys the page saw.
func callHeaders(ctx context.Context, page pingv1connect.PingServiceClient) (string, error) {
	hctx, info := connect.NewClientContext(ctx)
	info.RequestHeader().Set("x-in", "v1")
	if _, err := page.Ping(hctx, &pingv1.PingRequest{Text: "headers"}); err != nil {
		return "", err
	}
	kctx, kinfo := connect.NewClientContext(ctx)
	kinfo.RequestHeader().Set("x-in", "v1")
	kinfo.RequestHeader().Set("wsplex-rpc", "bidi") // reserved: the transport drops it
	keys, err := page.Ping(kctx, &pingv1.PingRequest{Text: "keys"})
	if err != nil {
		return "", err
	}
	return fmt.Sprintf("header=%s trailer=%s keys=%s", info.ResponseHeader().Get("x-out"),
		info.ResponseTrailer().Get("x-trailer"), keys.GetText()), nil
}

// callError calls Fail, which the page fails with a detail, a response
// header, a trailer and the error's metadata.
func callError(ctx context.Context, page pingv1connect.PingServiceClient) string {
	ectx, info := connect.NewClientContext(ctx)
	_, err := page.Fail(ectx, &pingv1.FailRequest{Code: int32(connect.CodeFailedPrecondition), Message: "not now"})
	var ce *connect.Error
	if !errors.As(err, &ce) {
		return fmt.Sprintf("not a connect error: %v", err)
	}
	var details []string
	for _, d := range ce.Details() {
		var m pingv1.PingRequest
		if err := proto.Unmarshal(d.Value, &m); err != nil {
			details = append(details, fmt.Sprintf("%s: %v", d.Type, err))
			continue
		}
		details = append(details, d.Type+": "+m.GetText())
	}
	return fmt.Sprintf("%v %q details=[%s] header=%s trailer=%s meta=%s", ce.Code(), ce.Message(), strings.Join(details, ", "),
		info.ResponseHeader().Get("x-header"), info.ResponseTrailer().Get("x-trailer"), info.ResponseTrailer().Get("x-meta"))
}

// callPastDeadline opens a call with wsplex-timeout-ms and a request the
// page's handler blocks on, without a deadline of its own, so that only
// the page ends the call when its time is up (SPEC.md §13.5).
func callPastDeadline(ctx context.Context, st *stream.Stream) (string, error) {
	call, err := stream.Open(ctx, st.Session(), pingv1connect.PingServicePingProcedure, &stream.OpenOptions{
		Metadata: wsplex.Metadata{"wsplex-rpc": {"unary"}, "wsplex-timeout-ms": {"100"}},
	})
	if err != nil {
		return "", err
	}
	defer call.Close()
	if err := call.Send(&pingv1.PingRequest{Text: "block"}); err != nil {
		return "", err
	}
	call.CloseWrite()
	err = call.Receive(new(pingv1.PingResponse))
	return fmt.Sprint(wsplex.CodeOf(err)), nil
}

// callCancel reads the first response of a call the page's handler then
// blocks in, and cancels the call.
func callCancel(ctx context.Context, page pingv1connect.PingServiceClient) (string, error) {
	cctx, cancel := context.WithCancel(ctx)
	defer cancel()
	up, err := page.CountUp(cctx, &pingv1.CountUpRequest{Number: -1})
	if err != nil {
		return "", err
	}
	defer up.Close()
	first, err := up.Receive()
	if err != nil {
		return "", err
	}
	cancel()
	_, err = up.Receive()
	return fmt.Sprintf("got %d, then %v", first.GetNumber(), connect.CodeOf(err)), nil
}

// callMismatch calls the unary Ping as a bidi call.
func callMismatch(ctx context.Context, c *connect.Client) (string, error) {
	call, err := c.CallClientStream(ctx, connect.Spec{Procedure: pingv1connect.PingServicePingProcedure, StreamType: connect.StreamTypeBidi})
	if err != nil {
		return "", err
	}
	defer call.Close()
	if err := call.Send(&pingv1.PingRequest{}); err != nil && !errors.Is(err, io.EOF) {
		return "", err
	}
	call.CloseSend()
	return errorText(call.Receive(new(pingv1.PingResponse))), nil
}

// errorText is an error's code and message.
func errorText(err error) string {
	var ce *connect.Error
	if errors.As(err, &ce) {
		return fmt.Sprintf("%v: %s", ce.Code(), ce.Message())
	}
	return fmt.Sprint(err)
}
