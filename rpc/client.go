package rpc

import (
	"bytes"
	"context"
	"errors"
	"io"
	"sync"
	"sync/atomic"

	"connectrpc.com/connect/v2"
	"google.golang.org/protobuf/proto"

	"github.com/wsplex/wsplex"
	"github.com/wsplex/wsplex/mux"
	"github.com/wsplex/wsplex/reconnect"
	"github.com/wsplex/wsplex/stream"
)

// NewTransport returns a connect.Transport that carries each call as a
// stream on sess. Once sess has ended, calls fail with
// connect.CodeUnavailable.
func NewTransport(sess *mux.Session, opts *Options) connect.Transport {
	return newTransport(func(context.Context) (*mux.Session, error) { return sess, nil }, opts)
}

// NewReconnectTransport returns a connect.Transport that carries each call
// on c's current session. As gRPC's fail-fast calls do, a call made while c
// dials its first session waits for it, within the call's context, and a
// call made while c waits to redial after a failure fails at once with
// connect.CodeUnavailable and the reason. A call whose session ends fails
// with connect.CodeUnavailable too; it is not retried, since only the
// application knows whether that is safe.
func NewReconnectTransport(c *reconnect.Client, opts *Options) connect.Transport {
	return newTransport(func(ctx context.Context) (*mux.Session, error) {
		sess, err := c.SessionFailFast(ctx)
		if err == nil {
			return sess, nil
		}
		if ctx.Err() != nil {
			return nil, contextError(ctx)
		}
		return nil, connect.NewError(connect.CodeUnavailable, err.Error()).WithCause(err)
	}, opts)
}

type transport struct {
	session func(context.Context) (*mux.Session, error)
	codec   connect.Codec
	opts    stream.Options
}

func newTransport(session func(context.Context) (*mux.Session, error), opts *Options) *transport {
	return &transport{
		session: session,
		codec:   opts.codecs()[0],
		opts:    stream.Options{MaxMessageSize: opts.maxMessageSize()},
	}
}

// NewClientStream implements connect.Transport. The stream opens on the
// first Send, SendHeaders, CloseSend or Receive, which carries the request
// headers set until then.
func (t *transport) NewClientStream(ctx context.Context, spec connect.Spec) (connect.ClientStream, error) {
	info, ok := connect.CallInfoForClientContext(ctx)
	if !ok {
		info = &connect.CallInfo{}
	}
	info.Spec = spec
	info.Protocol = protocolName
	info.Codec = t.codec.Name()
	info.RequestEncoding = connect.CompressionNameIdentity
	info.ResponseEncoding = connect.CompressionNameIdentity
	return &clientStream{t: t, ctx: ctx, spec: spec, info: info}, nil
}

// clientStream is one call, from the caller's side.
type clientStream struct {
	t    *transport
	ctx  context.Context
	spec connect.Spec
	info *connect.CallInfo

	mu      sync.Mutex // guards the open
	opened  bool
	st      *stream.Stream
	openErr error
	stop    func() bool // stops the context watch

	// Receive side.
	received int         // messages received
	ended    atomic.Bool // the outcome was read
	endErr   error
}

// open opens the call's stream once.
func (c *clientStream) open() (*stream.Stream, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.opened {
		return c.st, c.openErr
	}
	c.opened = true
	if c.ctx.Err() != nil {
		c.openErr = contextError(c.ctx)
		return nil, c.openErr
	}
	sess, err := c.t.session(c.ctx)
	if err != nil {
		c.openErr = err
		return nil, err
	}
	md := requestMetadata(c.info.RequestHeader(), c.spec.StreamType, c.t.codec.Name(), c.ctx)
	st, err := stream.Open(c.ctx, sess, c.spec.Procedure, &stream.OpenOptions{Options: c.t.opts, Metadata: md})
	if err != nil {
		if c.ctx.Err() != nil {
			err = contextError(c.ctx)
		}
		c.openErr = errorOf(err)
		return nil, c.openErr
	}
	if c.spec.StreamType&connect.StreamTypeClient == 0 {
		// One request: the open, the request and the half-close leave
		// together, when CloseSend ends the hold.
		st.Hold()
	}
	c.info.PeerAddr = sess.RemoteAddr().String()
	c.st = st
	c.stop = context.AfterFunc(c.ctx, func() { st.CloseWithError(contextStatus(c.ctx)) })
	return st, nil
}

func (c *clientStream) SendHeaders() error {
	_, err := c.open()
	return err
}

// Send sends a request. When the server has ended a client-streaming or
// bidi call, it returns io.EOF, and Receive returns the call's outcome.
func (c *clientStream) Send(msg any) error {
	st, err := c.open()
	if err != nil {
		return err
	}
	n, err := send(c.ctx, st, c.t.codec, msg)
	if err == nil {
		c.info.SendStats = connect.MessageStats{Size: n}
		return nil
	}
	switch {
	case c.ctx.Err() != nil:
		return contextError(c.ctx)
	case errors.Is(err, wsplex.ErrPeerClosed), isRemote(err):
		if c.spec.StreamType&connect.StreamTypeClient == 0 {
			// Unary and server-streaming calls send their one request
			// and then read: let the read report the outcome, as
			// connect-go's own transports do.
			return nil
		}
		return io.EOF
	}
	return errorOf(err)
}

func (c *clientStream) CloseSend() error {
	st, err := c.open()
	if err != nil {
		return err
	}
	if c.ctx.Err() != nil {
		// The context watch resets the stream, perhaps not yet: the
		// handler must not see a clean end of the requests first.
		return contextError(c.ctx)
	}
	if err := st.CloseWrite(); err != nil && !errors.Is(err, wsplex.ErrPeerClosed) && !isRemote(err) {
		if c.ctx.Err() != nil {
			return contextError(c.ctx)
		}
		return errorOf(err)
	}
	return nil
}

// Receive reads the next response. For unary and client-streaming calls
// it reads the call's outcome with the response, so that an error the
// server ends the call with after it reaches the caller.
func (c *clientStream) Receive(msg any) error {
	st, err := c.open()
	if err != nil {
		return err
	}
	if c.ended.Load() {
		return c.endErr
	}
	if c.ctx.Err() != nil {
		// The context watch resets the stream, perhaps not yet: responses
		// that arrived before must not be read after the cancel.
		st.CloseWithError(contextStatus(c.ctx))
		return c.end(st, contextError(c.ctx))
	}
	n, err := receive(c.ctx, st, c.t.codec, msg)
	if c.received == 0 {
		toHeader(c.info.ResponseHeader(), st.ResponseMetadata())
	}
	if err == nil {
		c.received++
		c.info.ReceiveStats = connect.MessageStats{Size: n}
		if c.spec.StreamType&connect.StreamTypeServer != 0 {
			return nil
		}
		// One response: the outcome follows it.
		err = st.ReceiveBytes(func([]byte) error { return nil })
		if err == nil {
			err = connect.NewError(connect.CodeUnimplemented, "unary response has multiple messages")
			st.Cancel()
		} else if err == io.EOF {
			c.end(st, io.EOF)
			return nil
		}
	} else if err == io.EOF && c.received == 0 && c.spec.StreamType&connect.StreamTypeServer == 0 {
		err = connect.NewError(connect.CodeUnimplemented, "unary response has zero messages")
	}
	return c.end(st, err)
}

// end records the call's outcome, err, and returns what Receive reports.
func (c *clientStream) end(st *stream.Stream, err error) error {
	switch {
	case err == io.EOF:
		toHeader(c.info.ResponseTrailer(), st.Trailers())
	case c.ctx.Err() != nil && !isRemote(err):
		err = contextError(c.ctx)
	default:
		if e, ok := errors.AsType[*wsplex.Error](err); ok {
			toHeader(c.info.ResponseTrailer(), e.Trailers)
		}
		err = errorOf(err)
	}
	c.endErr = err
	c.ended.Store(true)
	c.stop()
	return err
}

// Close abandons the call if its outcome was not read: the stream is reset
// with connect.CodeCanceled, which cancels the handler. It is idempotent.
func (c *clientStream) Close() error {
	c.mu.Lock()
	c.opened = true // a call not opened yet never will be
	if c.openErr == nil && c.st == nil {
		c.openErr = connect.NewError(connect.CodeCanceled, "call closed")
	}
	st := c.st
	c.mu.Unlock()
	if st == nil {
		return nil
	}
	c.stop()
	if c.ended.Load() {
		return st.Close()
	}
	return st.CloseWithError(wsplex.NewError(wsplex.CodeCanceled, "canceled"))
}

// isRemote reports whether err is a status the peer sent.
func isRemote(err error) bool {
	e, ok := errors.AsType[*wsplex.Error](err)
	return ok && e.Remote
}

// contextStatus is the status a call ends with when its context ends.
func contextStatus(ctx context.Context) *wsplex.Error {
	if errors.Is(ctx.Err(), context.DeadlineExceeded) {
		return wsplex.NewError(wsplex.CodeDeadlineExceeded, "deadline exceeded")
	}
	return wsplex.NewError(wsplex.CodeCanceled, "canceled")
}

// contextError is the error a call reports when its context ended.
func contextError(ctx context.Context) error {
	code := connect.CodeCanceled
	if errors.Is(ctx.Err(), context.DeadlineExceeded) {
		code = connect.CodeDeadlineExceeded
	}
	return connect.NewError(code, ctx.Err().Error()).WithCause(context.Cause(ctx))
}

// send writes msg, encoded with codec, and returns its size.
func send(ctx context.Context, st *stream.Stream, codec connect.Codec, msg any) (int, error) {
	if m, ok := msg.(proto.Message); ok && codec == protoCodec {
		n := proto.Size(m)
		if err := st.Send(m); errors.Is(err, proto.Error) {
			return 0, connect.NewError(connect.CodeInternal, err.Error()).WithCause(err)
		} else if err != nil {
			return 0, err
		}
		return n, nil
	}
	buf := bufPool.Get().(*bytes.Buffer)
	defer putBuffer(buf)
	buf.Reset()
	if err := codec.MarshalWrite(ctx, buf, msg); err != nil {
		return 0, connect.NewError(connect.CodeInternal, "marshal: "+err.Error()).WithCause(err)
	}
	return buf.Len(), st.SendBytes(buf.Bytes())
}

// receive reads the next message into msg, decoded with codec, and returns
// its size.
func receive(ctx context.Context, st *stream.Stream, codec connect.Codec, msg any) (int, error) {
	if m, ok := msg.(proto.Message); ok && codec == protoCodec {
		if err := st.Receive(m); err != nil {
			return 0, err
		}
		return proto.Size(m), nil
	}
	n := 0
	var uerr error
	err := st.ReceiveBytes(func(b []byte) error {
		n = len(b)
		uerr = codec.UnmarshalRead(ctx, bytes.NewReader(b), msg)
		return nil
	})
	if err != nil {
		return 0, err
	}
	if uerr != nil {
		st.CloseWithError(wsplex.NewError(wsplex.CodeInvalidArgument, "malformed message"))
		return n, connect.NewError(connect.CodeInvalidArgument, "unmarshal: "+uerr.Error()).WithCause(uerr)
	}
	return n, nil
}

var bufPool = sync.Pool{New: func() any { return new(bytes.Buffer) }}

func putBuffer(b *bytes.Buffer) {
	if b.Cap() <= 1<<20 {
		bufPool.Put(b)
	}
}
