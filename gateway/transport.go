package gateway

import (
	"context"
	"io"
	"net/http"

	"connectrpc.com/connect/v2"
	"connectrpc.com/connect/v2/connecthttp"
)

// Transport is an upstream reached over HTTP with connect-go's connecthttp
// transport: a Connect, gRPC or gRPC-Web service. It sends each forwarded
// call in the codec the caller chose, and passes messages through as bytes.
// It is safe for concurrent use.
type Transport struct {
	proto, json connect.Transport
}

var _ connect.Transport = (*Transport)(nil)

// NewTransport returns a Transport that sends calls with client to the
// service at baseURL ("http://backend:8080", "https://api.example.com/rpc"),
// configured by options as connecthttp.NewTransport is: the protocol
// (connecthttp.WithGRPC, connecthttp.WithGRPCWeb; Connect by default),
// compression, message limits. Codec options have no effect: the Transport
// uses Codecs, and each call keeps its caller's codec. An *http.Client
// reaches HTTP/1.1 and TLS servers; a gRPC server, and bidi calls of the
// other protocols, need HTTP/2: over TLS, or h2c with an http.Transport
// whose Protocols hold only UnencryptedHTTP2.
func NewTransport(client connecthttp.HTTPClient, baseURL string, options ...connecthttp.Option) *Transport {
	client = abortingClient{client}
	codecs := connecthttp.WithCodecs(Codecs()...)
	with := func(name string) []connecthttp.Option {
		return append(append(options[:len(options):len(options)], codecs), connecthttp.WithSendCodec(name))
	}
	return &Transport{
		proto: connecthttp.NewTransport(client, baseURL, with(connect.CodecNameProto)...),
		json:  connecthttp.NewTransport(client, baseURL, with(connect.CodecNameJSON)...),
	}
}

// NewClientStream implements connect.Transport. Within a call that Forward
// serves it sends in that call's codec, elsewhere in "proto".
func (t *Transport) NewClientStream(ctx context.Context, spec connect.Spec) (connect.ClientStream, error) {
	if name, _ := ctx.Value(codecKey{}).(string); name == connect.CodecNameJSON {
		return t.json.NewClientStream(ctx, spec)
	}
	return t.proto.NewClientStream(ctx, spec)
}

// codecKey marks the context of a forwarded call with its codec's name.
type codecKey struct{}

// abortingClient aborts a streaming request when its context ends. Over
// HTTP/2, net/http does not watch the context of a request whose body is
// open and idle once its response headers came: a caller that cancels a
// client-streaming or bidi call would leave it open upstream, its handler
// waiting for the next request. connecthttp streams a request body through
// an io.Pipe; closing the pipe's reader fails the body, and net/http resets
// the stream (RST_STREAM), so the upstream sees a cancel, not the end of the
// requests.
type abortingClient struct {
	client connecthttp.HTTPClient
}

func (c abortingClient) Do(req *http.Request) (*http.Response, error) {
	body, ok := req.Body.(*io.PipeReader)
	if !ok {
		return c.client.Do(req)
	}
	stop := context.AfterFunc(req.Context(), func() { body.Close() })
	res, err := c.client.Do(req)
	if err != nil {
		stop()
		return res, err
	}
	res.Body = &stopOnClose{ReadCloser: res.Body, stop: stop}
	return res, nil
}

// stopOnClose is a response body that stops watching the request's
// context once closed.
type stopOnClose struct {
	io.ReadCloser
	stop func() bool
}

func (b *stopOnClose) Close() error {
	b.stop()
	return b.ReadCloser.Close()
}
