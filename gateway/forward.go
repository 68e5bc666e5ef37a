package gateway

import (
	"context"
	"errors"
	"io"
	"slices"
	"strings"
	"sync"

	"connectrpc.com/connect/v2"

	"github.com/wsplex/wsplex/rpc"
)

// Route chooses the upstream of one call. call is the call's server-side
// info: its Spec (the procedure and its real shape, from the call's
// wsplex-rpc key), request headers, codec and peer; ctx carries the
// session's mux.AuthInfo. A Route may change the request headers, for
// example to drop one it routes by, before they go upstream.
//
// The transport must send the call's messages as Forward hands them over:
// use a *Transport, or an rpc transport (rpc.NewTransport) whose first codec
// is the one of Codecs named call.Codec. An error fails the call: a
// *connect.Error the Route made travels with its code and message, other
// errors as connect.CodeUnknown without one.
type Route func(ctx context.Context, call *connect.CallInfo) (connect.Transport, error)

// To returns a Route that sends every call to t.
func To(t connect.Transport) Route {
	return func(context.Context, *connect.CallInfo) (connect.Transport, error) { return t, nil }
}

// Options configure a Handler. A nil *Options means defaults.
type Options struct {
	// Interceptors run around each forwarded call, outermost first, as
	// connect.NewServer's do: to check credentials, say, before the call
	// goes upstream. Default: none.
	Interceptors []connect.ServerInterceptor
}

// NewHandler returns a stream.Handler that forwards every call routed to it
// to the upstream route chooses, in any shape, schema-agnostic: mount it at
// "/" on a stream.Router to forward all calls, or at a service's pattern
// ("/acme.chat.v1.ChatService/") to forward one service. Streams that are
// not calls (no wsplex-rpc key) are served as bidi calls.
func NewHandler(route Route, opts *Options) *rpc.Handler {
	var interceptors []connect.ServerInterceptor
	if opts != nil {
		interceptors = opts.Interceptors
	}
	server := connect.NewServer(interceptors...)
	server.SetUnknownHandler(Forward(route))
	return rpc.NewHandler(server, &rpc.Options{Codecs: Codecs()})
}

// Forward returns a connect.ServerFunc that forwards the call it serves to
// the upstream route chooses: request headers, messages and the end of the
// requests go up; response headers, messages, trailers and the outcome
// (code, message, details) come back. The call's deadline and
// cancellation reach the upstream through the context. Register it for the
// procedures a connect.Server forwards (connect.Method, or
// connect.Server.SetUnknownHandler), on a server whose transport decodes
// with Codecs (rpc.Options.Codecs, connecthttp.WithCodecs).
//
// Forward takes the call's shape from its CallInfo, not from the Spec it is
// passed: connect.Server gives unknown procedures a bidi Spec, and the
// rpc package's handler puts the real shape in the CallInfo. Headers that
// belong to one HTTP hop (Content-Type, Connection, Te, and the like) and
// the protocols' own (Grpc-*, Connect-*) are not forwarded either way.
func Forward(route Route) connect.ServerFunc {
	return func(ctx context.Context, spec connect.Spec, ss connect.ServerStream) error {
		info, ok := connect.CallInfoForServerContext(ctx)
		if !ok {
			return connect.NewError(connect.CodeInternal, "gateway: no call info")
		}
		if info.Spec.Procedure != "" {
			spec = info.Spec
		}
		upstream, err := route(ctx, info)
		if err != nil {
			return err
		}
		// The upstream call ends when this one does.
		ctx, cancel := context.WithCancel(ctx)
		defer cancel()
		cctx, out := connect.NewClientContext(context.WithValue(ctx, codecKey{}, info.Codec))
		copyHeader(out.RequestHeader(), info.RequestHeader())
		cs, err := upstream.NewClientStream(cctx, spec)
		if err != nil {
			return verdict(ctx, err)
		}
		f := &forward{ctx: ctx, ss: ss, cs: cs, info: info, out: out}
		defer f.close(cancel)
		if spec.StreamType&connect.StreamTypeClient == 0 {
			// One request: read it before the upstream call opens, so
			// that a caller that sends none fails here.
			if err := f.request(); err != nil {
				return err
			}
		} else {
			go f.requests(cancel)
		}
		return f.responses(spec.StreamType&connect.StreamTypeServer == 0)
	}
}

// forward is one forwarded call.
type forward struct {
	ctx  context.Context
	ss   connect.ServerStream
	cs   connect.ClientStream
	info *connect.CallInfo // the call's
	out  *connect.CallInfo // the upstream call's

	// mu guards the send side of cs, which the goroutine forwarding the
	// requests of a streaming call drives, against close.
	mu      sync.Mutex
	closed  bool
	recvErr error // why reading the requests failed
}

// close ends the upstream call. A goroutine forwarding requests may still
// wait for the next one; it ends when the call's transport ends the call,
// once Forward returned, and no longer touches cs.
func (f *forward) close(cancel context.CancelFunc) {
	cancel()
	f.mu.Lock()
	f.closed = true
	f.mu.Unlock()
	f.cs.Close()
}

// request forwards the one request of a unary or server-streaming call.
// The upstream's outcome, if sending fails, comes with its response.
func (f *forward) request() error {
	m := new(message)
	if err := f.ss.Receive(m); err != nil {
		return err
	}
	f.cs.Send(m)
	f.cs.CloseSend()
	return nil
}

// requests forwards the requests of a client-streaming or bidi call until
// their end. If reading them fails, the caller is gone or broke the call:
// cancel ends the upstream call too.
func (f *forward) requests(cancel context.CancelFunc) {
	for {
		m := new(message)
		err := f.ss.Receive(m)
		f.mu.Lock()
		if f.closed {
			f.mu.Unlock()
			return
		}
		switch {
		case errors.Is(err, io.EOF):
			f.cs.CloseSend()
		case err != nil:
			f.recvErr = err
			cancel()
		default:
			// An error means the upstream ended the call: its outcome
			// comes with the responses.
			err = f.cs.Send(m)
		}
		f.mu.Unlock()
		if err != nil {
			return
		}
	}
}

// responses forwards the responses, then the outcome. A single response
// goes on with the outcome read, so that the trailers go with it: the
// Connect protocol sends a unary call's trailers as headers.
func (f *forward) responses(single bool) error {
	headers := false
	for {
		m := new(message)
		err := f.cs.Receive(m)
		if !headers {
			headers = true
			copyHeader(f.info.ResponseHeader(), f.out.ResponseHeader())
		}
		if err == nil && single {
			if err = f.cs.Receive(new(message)); err == nil {
				err = connect.NewError(connect.CodeUnimplemented, "unary response has multiple messages")
			} else if errors.Is(err, io.EOF) {
				copyHeader(f.info.ResponseTrailer(), f.out.ResponseTrailer())
				return f.ss.Send(m)
			}
		}
		if err != nil {
			copyHeader(f.info.ResponseTrailer(), f.out.ResponseTrailer())
			if errors.Is(err, io.EOF) {
				return nil
			}
			f.mu.Lock()
			recvErr := f.recvErr
			f.mu.Unlock()
			if recvErr != nil {
				// Reading the requests failed first: that is the outcome.
				return recvErr
			}
			return verdict(f.ctx, err)
		}
		if err := f.ss.Send(m); err != nil {
			return err
		}
	}
}

// verdict turns what the upstream call failed with into this call's
// outcome. The upstream's verdict is forwarded as the gateway's own: code,
// message and details (connect-go would scrub a remote error to
// connect.CodeInternal). When this call's context ended, that is the
// outcome.
func verdict(ctx context.Context, err error) error {
	if ctx.Err() != nil {
		code := connect.CodeCanceled
		if errors.Is(ctx.Err(), context.DeadlineExceeded) {
			code = connect.CodeDeadlineExceeded
		}
		return connect.NewError(code, ctx.Err().Error()).WithCause(err)
	}
	ce, ok := errors.AsType[*connect.Error](err)
	if !ok {
		switch {
		case errors.Is(err, context.Canceled):
			return connect.NewError(connect.CodeCanceled, err.Error())
		case errors.Is(err, context.DeadlineExceeded):
			return connect.NewError(connect.CodeDeadlineExceeded, err.Error())
		}
		return connect.NewError(connect.CodeUnknown, err.Error())
	}
	if !ce.IsRemote() {
		return ce
	}
	local := connect.NewError(ce.Code(), ce.Message())
	for _, d := range ce.Details() {
		local = local.WithDetail(d)
	}
	return local
}

// copyHeader adds src's entries to dst, except those of one HTTP hop or
// of the protocols themselves.
func copyHeader(dst, src *connect.Header) {
	for k, v := range src.All() {
		if !hopHeader(k) {
			dst.SetValues(k, slices.Clone(v))
		}
	}
}

func hopHeader(key string) bool {
	key = strings.ToLower(key)
	switch key {
	case "connection", "keep-alive", "proxy-connection", "proxy-authenticate", "proxy-authorization",
		"te", "trailer", "transfer-encoding", "upgrade", "host",
		"content-type", "content-length", "content-encoding", "accept-encoding", "date":
		return true
	}
	return strings.HasPrefix(key, "grpc-") || strings.HasPrefix(key, "connect-")
}
