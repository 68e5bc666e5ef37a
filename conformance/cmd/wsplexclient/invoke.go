package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"time"

	"connectrpc.com/connect/v2"
	"connectrpc.com/connect/v2/connectproto"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/anypb"

	conformancev1 "github.com/wsplex/wsplex/conformance/internal/gen/conformancev1"
	"github.com/wsplex/wsplex/conformance/internal/gen/conformancev1/conformancev1connect"
	"github.com/wsplex/wsplex/conformance/internal/tunnel"
	"github.com/wsplex/wsplex/conformance/internal/upstream"
	"github.com/wsplex/wsplex/rpc"
)

const serviceName = "connectrpc.conformance.v1.ConformanceService"

// call is one test case's call in progress.
type call struct {
	req    *conformancev1.ClientCompatRequest
	client conformancev1connect.ConformanceServiceClient
	ctx    context.Context
	cancel context.CancelFunc
	info   *connect.CallInfo
	res    *conformancev1.ClientResponseResult
}

// invoke makes the call req describes, as docs/testing_clients.md says,
// and returns what came of it. An error means the call could not be made.
func invoke(ctx context.Context, tun *tunnel.Tunnel, req *conformancev1.ClientCompatRequest) (*conformancev1.ClientResponseResult, error) {
	if req.GetService() != serviceName {
		return nil, fmt.Errorf("service %q not supported", req.GetService())
	}
	if req.GetRawRequest() != nil {
		return nil, errors.New("raw requests not supported")
	}
	id, err := upstream.Key(req)
	if err != nil {
		return nil, err
	}
	var codec connect.Codec
	switch req.GetCodec() {
	case conformancev1.Codec_CODEC_PROTO:
		codec = connectproto.NewBinaryCodec()
	case conformancev1.Codec_CODEC_JSON:
		codec = connectproto.NewJSONCodec()
	default:
		return nil, fmt.Errorf("codec %v not supported", req.GetCodec())
	}
	transport := rpc.NewTransport(tun.Session, &rpc.Options{Codecs: []connect.Codec{codec}, MaxMessageSize: int(req.GetMessageReceiveLimit())})
	c := &call{req: req, client: conformancev1connect.NewConformanceServiceClient(connect.NewClient(transport)),
		res: &conformancev1.ClientResponseResult{}}
	ctx, c.cancel = context.WithCancel(ctx)
	defer c.cancel()
	if ms := req.GetTimeoutMs(); ms > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, time.Duration(ms)*time.Millisecond)
		defer cancel()
	}
	c.ctx, c.info = connect.NewClientContext(ctx)
	for _, h := range req.GetRequestHeaders() {
		for _, v := range h.GetValue() {
			c.info.RequestHeader().Add(h.GetName(), v)
		}
	}
	c.info.RequestHeader().Set(upstream.Header, id)

	switch req.GetMethod() {
	case "Unary":
		err = unary(c, func(ctx context.Context, m *conformancev1.UnaryRequest) (*conformancev1.ConformancePayload, error) {
			res, err := c.client.Unary(ctx, m)
			return res.GetPayload(), err
		})
	case "IdempotentUnary":
		err = unary(c, func(ctx context.Context, m *conformancev1.IdempotentUnaryRequest) (*conformancev1.ConformancePayload, error) {
			res, err := c.client.IdempotentUnary(ctx, m)
			return res.GetPayload(), err
		})
	case "Unimplemented":
		err = unary(c, func(ctx context.Context, m *conformancev1.UnimplementedRequest) (*conformancev1.ConformancePayload, error) {
			_, err := c.client.Unimplemented(ctx, m)
			return nil, err
		})
	case "ServerStream":
		err = c.serverStream()
	case "ClientStream":
		err = c.clientStream()
	case "BidiStream":
		err = c.bidiStream()
	default:
		return nil, fmt.Errorf("method %q not supported", req.GetMethod())
	}
	if err != nil {
		return nil, err
	}
	c.res.ResponseHeaders = headersOf(c.info.ResponseHeader())
	c.res.ResponseTrailers = headersOf(c.info.ResponseTrailer())
	return c.res, nil
}

// unary makes a unary call with method, which returns the response's
// payload.
func unary[Req any, PReq interface {
	*Req
	proto.Message
}](c *call, method func(context.Context, PReq) (*conformancev1.ConformancePayload, error)) error {
	if len(c.req.GetRequestMessages()) != 1 {
		return fmt.Errorf("unary call with %d requests", len(c.req.GetRequestMessages()))
	}
	msg := PReq(new(Req))
	if err := c.req.GetRequestMessages()[0].UnmarshalTo(msg); err != nil {
		return err
	}
	c.afterCloseSend()
	payload, err := method(c.ctx, msg)
	if err != nil {
		c.fail(err)
		return nil
	}
	c.addPayload(payload)
	return nil
}

func (c *call) serverStream() error {
	msg := new(conformancev1.ServerStreamRequest)
	if err := c.req.GetRequestMessages()[0].UnmarshalTo(msg); err != nil {
		return err
	}
	s, err := c.client.ServerStream(c.ctx, msg)
	if err != nil {
		c.fail(err)
		return nil
	}
	defer s.Close()
	c.afterCloseSend()
	for {
		res, err := s.Receive()
		if err != nil {
			if !errors.Is(err, io.EOF) {
				c.fail(err)
			}
			return nil
		}
		c.addPayload(res.GetPayload())
	}
}

func (c *call) clientStream() error {
	s, err := c.client.ClientStream(c.ctx)
	if err != nil {
		c.fail(err)
		return nil
	}
	msgs := c.req.GetRequestMessages()
	for i, m := range msgs {
		msg := new(conformancev1.ClientStreamRequest)
		if err := m.UnmarshalTo(msg); err != nil {
			return err
		}
		c.delay()
		if err := s.Send(msg); err != nil {
			c.res.NumUnsentRequests = int32(len(msgs) - i)
			break
		}
	}
	c.beforeCloseSend()
	c.afterCloseSend()
	res, err := s.CloseAndReceive()
	if err != nil {
		c.fail(err)
		return nil
	}
	c.addPayload(res.GetPayload())
	return nil
}

func (c *call) bidiStream() error {
	s, err := c.client.BidiStream(c.ctx)
	if err != nil {
		c.fail(err)
		return nil
	}
	defer s.Close()
	fullDuplex := c.req.GetStreamType() == conformancev1.StreamType_STREAM_TYPE_FULL_DUPLEX_BIDI_STREAM
	msgs := c.req.GetRequestMessages()
	failed := false
	for i, m := range msgs {
		msg := new(conformancev1.BidiStreamRequest)
		if err := m.UnmarshalTo(msg); err != nil {
			return err
		}
		c.delay()
		if err := s.Send(msg); err != nil {
			// The call ended: its outcome comes with Receive.
			c.res.NumUnsentRequests = int32(len(msgs) - i)
			if _, rerr := s.Receive(); rerr != nil && !errors.Is(rerr, io.EOF) {
				err = rerr
			}
			c.fail(err)
			failed = true
			break
		}
		if fullDuplex {
			res, err := s.Receive()
			if err != nil {
				if !errors.Is(err, io.EOF) {
					c.fail(err)
					failed = true
				}
				break
			}
			c.addPayload(res.GetPayload())
		}
	}
	c.beforeCloseSend()
	s.CloseSend()
	c.afterCloseSend()
	if failed {
		return nil
	}
	for {
		res, err := s.Receive()
		if err != nil {
			if !errors.Is(err, io.EOF) {
				c.fail(err)
			}
			return nil
		}
		c.addPayload(res.GetPayload())
	}
}

// addPayload records a response, and cancels the call after as many as
// the test case says.
func (c *call) addPayload(p *conformancev1.ConformancePayload) {
	if p == nil {
		p = new(conformancev1.ConformancePayload)
	}
	c.res.Payloads = append(c.res.Payloads, p)
	if n := c.req.GetCancel().GetAfterNumResponses(); n > 0 && len(c.res.Payloads) == int(n) {
		if _, ok := c.req.GetCancel().GetCancelTiming().(*conformancev1.ClientCompatRequest_Cancel_AfterNumResponses); ok {
			c.cancel()
		}
	}
}

func (c *call) fail(err error) { c.res.Error = errorOf(err) }

func (c *call) delay() {
	if ms := c.req.GetRequestDelayMs(); ms > 0 {
		time.Sleep(time.Duration(ms) * time.Millisecond)
	}
}

func (c *call) beforeCloseSend() {
	if c.req.GetCancel().GetBeforeCloseSend() != nil {
		c.cancel()
	}
}

// afterCloseSend cancels the call as long after now as the test case
// says, in the background, while the call goes on receiving.
func (c *call) afterCloseSend() {
	if _, ok := c.req.GetCancel().GetCancelTiming().(*conformancev1.ClientCompatRequest_Cancel_AfterCloseSendMs); ok {
		time.AfterFunc(time.Duration(c.req.GetCancel().GetAfterCloseSendMs())*time.Millisecond, c.cancel)
	}
}

func headersOf(h *connect.Header) []*conformancev1.Header {
	var out []*conformancev1.Header
	for k, v := range h.All() {
		out = append(out, &conformancev1.Header{Name: k, Value: v})
	}
	return out
}

func anyOf(d *connect.ErrorDetail) *anypb.Any {
	return connectproto.ErrorDetailToAny(d)
}
