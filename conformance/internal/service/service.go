// Package service implements connectrpc.conformance.v1.ConformanceService
// with connect-go v2 generated handlers, as the conformance suite's
// docs/testing_servers.md describes: each call answers as its request's
// response definition says, and echoes what the server saw of the
// request (headers, timeout, messages).
package service

import (
	"context"
	"errors"
	"io"
	"time"

	"connectrpc.com/connect/v2"
	"connectrpc.com/connect/v2/connectproto"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/anypb"

	conformancev1 "github.com/wsplex/wsplex/conformance/internal/gen/conformancev1"
	"github.com/wsplex/wsplex/conformance/internal/gen/conformancev1/conformancev1connect"
)

// Service is the ConformanceService. Unimplemented stays unimplemented,
// as the suite expects.
type Service struct {
	conformancev1connect.UnimplementedConformanceServiceHandler
}

var _ conformancev1connect.ConformanceServiceHandler = Service{}

func (Service) Unary(ctx context.Context, req *conformancev1.UnaryRequest) (*conformancev1.UnaryResponse, error) {
	payload, err := unary(ctx, req.GetResponseDefinition(), []proto.Message{req})
	if err != nil {
		return nil, err
	}
	return &conformancev1.UnaryResponse{Payload: payload}, nil
}

func (Service) IdempotentUnary(ctx context.Context, req *conformancev1.IdempotentUnaryRequest) (*conformancev1.IdempotentUnaryResponse, error) {
	payload, err := unary(ctx, req.GetResponseDefinition(), []proto.Message{req})
	if err != nil {
		return nil, err
	}
	return &conformancev1.IdempotentUnaryResponse{Payload: payload}, nil
}

func (Service) ClientStream(ctx context.Context, s conformancev1connect.ConformanceServiceClientStreamServerStream) (*conformancev1.ClientStreamResponse, error) {
	var def *conformancev1.UnaryResponseDefinition
	var reqs []proto.Message
	for {
		req, err := s.Receive()
		if errors.Is(err, io.EOF) {
			break
		} else if err != nil {
			return nil, err
		}
		if len(reqs) == 0 {
			def = req.GetResponseDefinition()
		}
		reqs = append(reqs, req)
	}
	payload, err := unary(ctx, def, reqs)
	if err != nil {
		return nil, err
	}
	return &conformancev1.ClientStreamResponse{Payload: payload}, nil
}

func (Service) ServerStream(ctx context.Context, req *conformancev1.ServerStreamRequest, s conformancev1connect.ConformanceServiceServerStreamServerStream) error {
	info, _ := connect.CallInfoForServerContext(ctx)
	def := req.GetResponseDefinition()
	addHeaders(info.ResponseHeader(), def.GetResponseHeaders())
	addHeaders(info.ResponseTrailer(), def.GetResponseTrailers())
	if len(def.GetResponseData()) > 0 {
		if err := s.SendHeaders(); err != nil {
			return err
		}
	}
	for i, data := range def.GetResponseData() {
		payload := &conformancev1.ConformancePayload{Data: data}
		if i == 0 {
			payload.RequestInfo = requestInfo(ctx, []proto.Message{req})
		}
		if err := delay(ctx, def.GetResponseDelayMs()); err != nil {
			return err
		}
		if err := s.Send(&conformancev1.ServerStreamResponse{Payload: payload}); err != nil {
			return err
		}
	}
	if e := def.GetError(); e != nil {
		var reqs []proto.Message
		if len(def.GetResponseData()) == 0 {
			reqs = []proto.Message{req}
		}
		return toError(ctx, e, reqs)
	}
	return nil
}

func (Service) BidiStream(ctx context.Context, s conformancev1connect.ConformanceServiceBidiStreamServerStream) error {
	info, _ := connect.CallInfoForServerContext(ctx)
	var def *conformancev1.StreamResponseDefinition
	fullDuplex := false
	sent := 0
	var reqs []proto.Message // received since the last response
	send := func() error {
		payload := &conformancev1.ConformancePayload{Data: def.GetResponseData()[sent]}
		if sent == 0 {
			payload.RequestInfo = requestInfo(ctx, reqs)
		} else {
			payload.RequestInfo = &conformancev1.ConformancePayload_RequestInfo{Requests: anys(reqs)}
		}
		if err := delay(ctx, def.GetResponseDelayMs()); err != nil {
			return err
		}
		if err := s.Send(&conformancev1.BidiStreamResponse{Payload: payload}); err != nil {
			return err
		}
		sent++
		reqs = nil
		return nil
	}
	for first := true; ; first = false {
		req, err := s.Receive()
		if errors.Is(err, io.EOF) {
			break
		} else if err != nil {
			return err
		}
		reqs = append(reqs, req)
		if first {
			def = req.GetResponseDefinition()
			fullDuplex = req.GetFullDuplex()
			addHeaders(info.ResponseHeader(), def.GetResponseHeaders())
			addHeaders(info.ResponseTrailer(), def.GetResponseTrailers())
			if fullDuplex && len(def.GetResponseData()) > 0 {
				if err := s.SendHeaders(); err != nil {
					return err
				}
			}
		}
		if fullDuplex {
			if sent >= len(def.GetResponseData()) {
				break
			}
			if err := send(); err != nil {
				return err
			}
		}
	}
	if !fullDuplex && len(def.GetResponseData()) > 0 {
		if err := s.SendHeaders(); err != nil {
			return err
		}
	}
	for sent < len(def.GetResponseData()) {
		if err := send(); err != nil {
			return err
		}
	}
	if e := def.GetError(); e != nil {
		if sent > 0 {
			reqs = nil
		}
		return toError(ctx, e, reqs)
	}
	return nil
}

// unary answers a call with one response: the payload, or the error, its
// definition asks for, after its delay.
func unary(ctx context.Context, def *conformancev1.UnaryResponseDefinition, reqs []proto.Message) (*conformancev1.ConformancePayload, error) {
	info, _ := connect.CallInfoForServerContext(ctx)
	addHeaders(info.ResponseHeader(), def.GetResponseHeaders())
	addHeaders(info.ResponseTrailer(), def.GetResponseTrailers())
	if err := delay(ctx, def.GetResponseDelayMs()); err != nil {
		return nil, err
	}
	if e := def.GetError(); e != nil {
		return nil, toError(ctx, e, reqs)
	}
	return &conformancev1.ConformancePayload{Data: def.GetResponseData(), RequestInfo: requestInfo(ctx, reqs)}, nil
}

// toError is the error e describes, with the request info as its last
// detail when reqs is not nil.
func toError(ctx context.Context, e *conformancev1.Error, reqs []proto.Message) error {
	ce := connect.NewError(connect.Code(e.GetCode()), e.GetMessage())
	details := e.GetDetails()
	if reqs != nil {
		info, err := anypb.New(requestInfo(ctx, reqs))
		if err != nil {
			return connect.NewError(connect.CodeInternal, err.Error())
		}
		details = append(details[:len(details):len(details)], info)
	}
	for _, d := range details {
		detail, err := connectproto.NewErrorDetail(d)
		if err != nil {
			return connect.NewError(connect.CodeInternal, err.Error())
		}
		ce = ce.WithDetail(detail)
	}
	return ce
}

// requestInfo is what the server saw of the call: its request headers,
// the time it had left, and reqs.
func requestInfo(ctx context.Context, reqs []proto.Message) *conformancev1.ConformancePayload_RequestInfo {
	info, _ := connect.CallInfoForServerContext(ctx)
	ri := &conformancev1.ConformancePayload_RequestInfo{Requests: anys(reqs)}
	for k, v := range info.RequestHeader().All() {
		ri.RequestHeaders = append(ri.RequestHeaders, &conformancev1.Header{Name: k, Value: v})
	}
	if dl, ok := ctx.Deadline(); ok {
		ms := time.Until(dl).Milliseconds()
		ri.TimeoutMs = &ms
	}
	return ri
}

func anys(msgs []proto.Message) []*anypb.Any {
	out := make([]*anypb.Any, 0, len(msgs))
	for _, m := range msgs {
		a, err := anypb.New(m)
		if err == nil {
			out = append(out, a)
		}
	}
	return out
}

func addHeaders(h *connect.Header, headers []*conformancev1.Header) {
	for _, hdr := range headers {
		for _, v := range hdr.GetValue() {
			h.Add(hdr.GetName(), v)
		}
	}
}

// delay waits ms milliseconds, or until the call ends.
func delay(ctx context.Context, ms uint32) error {
	if ms == 0 {
		return nil
	}
	t := time.NewTimer(time.Duration(ms) * time.Millisecond)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}
