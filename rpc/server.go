package rpc

import (
	"context"
	"errors"
	"io"
	"strings"
	"time"

	"connectrpc.com/connect/v2"

	"github.com/wsplex/wsplex"
	"github.com/wsplex/wsplex/mux"
	"github.com/wsplex/wsplex/stream"
)

// Handler serves the procedures of a *connect.Server on the streams a
// stream.Router routes to it, one call per stream (SPEC.md §13). It
// implements stream.Handler, and stream.Answerer so that the call's
// response headers travel in the stream's answer.
//
// A handler's connect.CallInfo has Protocol "wsplex", the peer's address,
// and as TransportInfo the call's *stream.Stream, whose Session serves to
// call back the caller's end of the session.
type Handler struct {
	server *connect.Server
	specs  map[string]connect.Spec
	codecs map[string]connect.Codec
}

var (
	_ stream.Handler  = (*Handler)(nil)
	_ stream.Answerer = (*Handler)(nil)
)

// NewHandler returns a Handler for server's procedures. It takes their
// specs from server.Specs, so register every service before; a call of a
// procedure registered later is still served, without checking its shape.
func NewHandler(server *connect.Server, opts *Options) *Handler {
	h := &Handler{server: server, specs: make(map[string]connect.Spec), codecs: make(map[string]connect.Codec)}
	for spec := range server.Specs() {
		h.specs[spec.Procedure] = spec
	}
	for _, c := range opts.codecs() {
		if _, ok := h.codecs[c.Name()]; !ok {
			h.codecs[c.Name()] = c
		}
	}
	return h
}

// Mount registers a Handler for server on routes, with one pattern per
// service ("/acme.chat.v1.ChatService/"), so that procedures of a service
// it does not know get connect.CodeUnimplemented from the handler, and
// other names are left to other patterns. Like NewHandler, it reads
// server.Specs once.
func Mount(routes *stream.Router, server *connect.Server, opts *Options) {
	h := NewHandler(server, opts)
	seen := make(map[string]bool)
	for spec := range server.Specs() {
		i := strings.LastIndexByte(spec.Procedure, '/')
		if i <= 0 {
			continue
		}
		if service := spec.Procedure[:i+1]; !seen[service] {
			seen[service] = true
			routes.Handle(service, h)
		}
	}
}

// Session returns the session a call arrived on, from its handler's
// context: the session on which the handler can call the services that
// the caller's end serves. It returns nil outside a call that a Handler
// serves.
func Session(ctx context.Context) *mux.Session {
	info, ok := connect.CallInfoForServerContext(ctx)
	if !ok {
		return nil
	}
	if s, ok := info.TransportInfo.(*stream.Stream); ok {
		return s.Session()
	}
	return nil
}

// AnswersOpen reports true: a call's answer carries the response headers
// its handler sets before its first message.
func (h *Handler) AnswersOpen() bool { return true }

// ServeStream serves one call.
func (h *Handler) ServeStream(ctx context.Context, s *stream.Stream) error {
	arrived := time.Now()
	md := s.Metadata()
	spec, known := h.specs[s.Name()]
	shape := spec.StreamType
	if v := md.Values(keyRPC); len(v) > 0 {
		var ok bool
		if shape, ok = parseShape(v[0]); !ok {
			return wsplex.Errorf(wsplex.CodeInvalidArgument, "malformed %s %q", keyRPC, v[0])
		}
		if known && shape != spec.StreamType {
			return wsplex.Errorf(wsplex.CodeUnimplemented, "%s is a %s call, not %s", s.Name(), shapeNames[spec.StreamType], v[0])
		}
	} else if !known {
		shape = connect.StreamTypeBidi
	}
	if !known {
		spec = connect.Spec{Procedure: s.Name(), StreamType: shape}
	}
	name := connect.CodecNameProto
	if v := md.Values(keyCodec); len(v) > 0 {
		name = v[0]
	}
	codec := h.codecs[name]
	if codec == nil {
		return wsplex.Errorf(wsplex.CodeUnimplemented, "codec %q not supported", name)
	}
	if v := md.Values(keyTimeout); len(v) > 0 {
		d, ok := parseTimeout(v[0])
		if !ok {
			return wsplex.Errorf(wsplex.CodeInvalidArgument, "malformed %s %q", keyTimeout, v[0])
		}
		var cancel context.CancelFunc
		ctx, cancel = context.WithDeadline(ctx, arrived.Add(d))
		defer cancel()
		// End the call when its time is up, whatever the handler does.
		stop := context.AfterFunc(ctx, func() {
			if errors.Is(ctx.Err(), context.DeadlineExceeded) {
				s.CloseWithError(&wsplex.Error{Code: wsplex.CodeDeadlineExceeded, Message: "deadline exceeded", Metadata: wsplex.Metadata{}})
			}
		})
		defer stop()
	}
	info := &connect.CallInfo{
		Spec:             spec,
		PeerAddr:         s.RemoteAddr().String(),
		Protocol:         protocolName,
		Codec:            codec.Name(),
		RequestEncoding:  connect.CompressionNameIdentity,
		ResponseEncoding: connect.CompressionNameIdentity,
		TransportInfo:    s,
	}
	toHeader(info.RequestHeader(), md)
	ss := &serverStream{st: s, ctx: ctx, info: info, codec: codec,
		single: shape&connect.StreamTypeClient == 0, unary: shape == connect.StreamTypeUnary}
	err := h.server.Call(ctx, s.Name(), info, ss)
	ss.answer()
	if err != nil {
		e := statusOf(err)
		e.Trailers = metadataOf(info.ResponseTrailer())
		return e
	}
	if info.ResponseTrailer().Len() > 0 {
		return &wsplex.Error{Code: wsplex.CodeOK, Trailers: metadataOf(info.ResponseTrailer())}
	}
	return nil
}

// serverStream is one call, from the handler's side.
type serverStream struct {
	st     *stream.Stream
	ctx    context.Context
	info   *connect.CallInfo
	codec  connect.Codec
	single bool // one request: unary and server-streaming calls
	unary  bool

	rxEnd    bool // the single request was read
	answered bool // the response headers were handed to the stream
}

// Receive reads the next request. For unary and server-streaming calls it
// also reads the end of the requests, as connect-go's transports do.
func (s *serverStream) Receive(msg any) error {
	if !s.single {
		return s.receive(msg)
	}
	if s.rxEnd {
		return io.EOF
	}
	s.rxEnd = true
	if err := s.receive(msg); err != nil {
		if err == io.EOF {
			return connect.NewError(connect.CodeUnimplemented, "unary request has zero messages")
		}
		return err
	}
	switch err := s.st.ReceiveBytes(func([]byte) error { return nil }); {
	case err == nil:
		return connect.NewError(connect.CodeUnimplemented, "unary request has multiple messages")
	case err != io.EOF:
		return s.error(err)
	}
	return nil
}

func (s *serverStream) receive(msg any) error {
	n, err := receive(s.ctx, s.st, s.codec, msg)
	if err != nil {
		if err == io.EOF {
			return io.EOF
		}
		return s.error(err)
	}
	s.info.ReceiveStats = connect.MessageStats{Size: n}
	return nil
}

// SendHeaders answers the call's open with its response headers. A unary
// call answers with its response, or its error.
func (s *serverStream) SendHeaders() error {
	if s.unary || s.answered {
		return nil
	}
	s.answer()
	if err := s.st.Respond(); err != nil {
		return s.error(err)
	}
	return nil
}

func (s *serverStream) Send(msg any) error {
	s.answer()
	n, err := send(s.ctx, s.st, s.codec, msg)
	if err != nil {
		return s.error(err)
	}
	s.info.SendStats = connect.MessageStats{Size: n}
	return nil
}

// answer hands the response headers to the stream, which sends them with
// its answer, before the first response or the end.
func (s *serverStream) answer() {
	if !s.answered {
		s.answered = true
		toMetadata(s.st.ResponseMetadata(), s.info.ResponseHeader())
	}
}

// error turns what a stream operation failed with into the error the
// handler sees.
func (s *serverStream) error(err error) error {
	switch {
	case s.ctx.Err() != nil:
		return contextError(s.ctx)
	case errors.Is(err, wsplex.ErrPeerClosed):
		return connect.NewError(connect.CodeCanceled, "the caller closed the call").WithCause(err)
	}
	return errorOf(err)
}
