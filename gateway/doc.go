// Package gateway puts wsplex in front of services that already speak
// HTTP: Connect, gRPC and gRPC-Web backends (connect-go, grpc-go, or any
// other language) are reached through a wsplex session without changing
// them. Each call that arrives as a stream (SPEC.md §13) is forwarded to an
// upstream with connect-go's connecthttp transport, and its answer comes
// back the same way.
//
// Forwarding is schema-agnostic: messages travel as the bytes the caller
// encoded, in the caller's codec ("proto" or "json"), and are never
// decoded. Request and response headers, trailers, error codes, messages
// and details go through as the upstream sent them; the caller's deadline
// becomes the upstream call's (connect-timeout-ms, grpc-timeout), and a
// caller that cancels cancels the upstream call.
//
// A server mounts a Handler on a stream.Router, at "/" to forward every
// call, or at a service's pattern to forward one service:
//
//	backend := gateway.NewTransport(h2cClient, "http://backend:8080", connecthttp.WithGRPC())
//	routes := stream.NewRouter(nil)
//	routes.Handle("/", gateway.NewHandler(gateway.To(backend), nil))
//
// A Route may choose the upstream per call, from the procedure, a request
// header or the session's mux.AuthInfo. NewLocal serves an http.Handler in
// process, so that a service mounted with connecthttp.Mount, or a grpc-go
// server (an http.Handler too), is reached without opening a port.
//
// Forward is the forwarding itself, a connect.ServerFunc: register it on a
// connect.Server that serves some procedures and forwards the others, or
// mount it with connecthttp to forward HTTP calls to a wsplex session with
// an rpc transport.
//
// # Concurrency
//
// Handler, Transport, Local and the functions Forward returns are safe for
// concurrent use; each call is forwarded independently.
//
// # Caveats
//
// A wsplex call does not carry the procedure's idempotency level, so
// calls go upstream as POST, never as Connect GET. The upstream's
// compression is its own: messages are decompressed on arrival and
// compressed again as the Transport's options say, while the WebSocket
// compresses the wsplex side (mux.Options.Compression). A bidi call, and
// every gRPC call, needs an upstream reached over HTTP/2.
package gateway
