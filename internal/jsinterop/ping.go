package jsinterop

import (
	"context"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
	"time"

	"connectrpc.com/connect/v2"
	"connectrpc.com/connect/v2/connectproto"

	pingv1 "github.com/wsplex/wsplex/internal/gen/ping/v1"
	"github.com/wsplex/wsplex/internal/gen/ping/v1/pingv1connect"
	"github.com/wsplex/wsplex/rpc"
)

// pingService is PingService for the client's connect-es tests. Requests
// whose text names a behaviour get it; a handler that waits for its
// context to end reports how it ended to the next Ping "last-end".
type pingService struct {
	pingv1connect.UnimplementedPingServiceHandler
	ended chan string
}

func newPingService() *pingService { return &pingService{ended: make(chan string, 16)} }

// waitEnd blocks until ctx ends, reports why, and returns its error.
func (p *pingService) waitEnd(ctx context.Context) error {
	<-ctx.Done()
	p.ended <- fmt.Sprint(context.Cause(ctx))
	return ctx.Err()
}

func (p *pingService) Ping(ctx context.Context, req *pingv1.PingRequest) (*pingv1.PingResponse, error) {
	info, _ := connect.CallInfoForServerContext(ctx)
	switch req.GetText() {
	case "headers": // echo the request headers, set a trailer
		info.ResponseHeader().Set("x-out", info.RequestHeader().Get("x-in"))
		info.ResponseHeader().Set("x-bin", info.RequestHeader().Get("x-bin"))
		info.ResponseTrailer().Set("x-trailer", "t-"+info.RequestHeader().Get("x-in"))
	case "keys": // the request header keys, sorted
		var keys []string
		for k := range info.RequestHeader().All() {
			keys = append(keys, k)
		}
		slices.Sort(keys)
		return &pingv1.PingResponse{Text: strings.Join(keys, " ")}, nil
	case "codec":
		return &pingv1.PingResponse{Text: info.Codec}, nil
	case "deadline": // the milliseconds left, or "none"
		dl, ok := ctx.Deadline()
		if !ok {
			return &pingv1.PingResponse{Text: "none"}, nil
		}
		return &pingv1.PingResponse{Number: time.Until(dl).Milliseconds()}, nil
	case "block":
		return nil, p.waitEnd(ctx)
	case "last-end":
		select {
		case why := <-p.ended:
			return &pingv1.PingResponse{Text: why}, nil
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	case "drop-session": // the session is lost mid-call
		rpc.Session(ctx).Close()
		<-ctx.Done()
		return nil, ctx.Err()
	}
	return &pingv1.PingResponse{Number: req.GetNumber(), Text: req.GetText()}, nil
}

// Fail fails with the request's code and message, a detail (a PingRequest
// whose text is the message), a response header and a trailer.
func (p *pingService) Fail(ctx context.Context, req *pingv1.FailRequest) (*pingv1.FailResponse, error) {
	info, _ := connect.CallInfoForServerContext(ctx)
	info.ResponseHeader().Set("x-header", "h")
	info.ResponseTrailer().Set("x-trailer", "t")
	detail, err := connectproto.NewErrorDetail(&pingv1.PingRequest{Text: req.GetMessage()})
	if err != nil {
		return nil, err
	}
	return nil, connect.NewError(connect.Code(req.GetCode()), req.GetMessage()).WithDetail(detail)
}

// Sum adds the numbers sent, and sets a trailer with their count.
func (p *pingService) Sum(ctx context.Context, s pingv1connect.PingServiceSumServerStream) (*pingv1.SumResponse, error) {
	info, _ := connect.CallInfoForServerContext(ctx)
	var sum, n int64
	for {
		req, err := s.Receive()
		if errors.Is(err, io.EOF) {
			info.ResponseTrailer().Set("x-count", fmt.Sprint(n))
			return &pingv1.SumResponse{Sum: sum}, nil
		} else if err != nil {
			return nil, err
		}
		sum += req.GetNumber()
		n++
	}
}

// CountUp sends the numbers from 1 to the request's number, with a
// response header and a trailer. For -1 it sends 1, then waits for the
// call to end; for -2 it sends 1, then drops the session.
func (p *pingService) CountUp(ctx context.Context, req *pingv1.CountUpRequest, s pingv1connect.PingServiceCountUpServerStream) error {
	if req.GetNumber() < 0 {
		if err := s.Send(&pingv1.CountUpResponse{Number: 1}); err != nil {
			return err
		}
		if req.GetNumber() == -2 {
			rpc.Session(ctx).Close()
		}
		return p.waitEnd(ctx)
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

// CumSum answers each number with the sum so far. A negative number fails
// the call with CodeAborted; 0 ends it cleanly, while the caller may still
// send; 999 waits for the call to end.
func (p *pingService) CumSum(ctx context.Context, s pingv1connect.PingServiceCumSumServerStream) error {
	var sum int64
	for {
		req, err := s.Receive()
		if errors.Is(err, io.EOF) {
			return nil
		} else if err != nil {
			return err
		}
		switch n := req.GetNumber(); {
		case n < 0:
			return connect.NewError(connect.CodeAborted, "negative number")
		case n == 0:
			info, _ := connect.CallInfoForServerContext(ctx)
			info.ResponseTrailer().Set("x-ended", "early")
			return nil
		case n == 999:
			return p.waitEnd(ctx)
		}
		sum += req.GetNumber()
		if err := s.Send(&pingv1.CumSumResponse{Sum: sum}); err != nil {
			return err
		}
	}
}
