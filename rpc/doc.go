// Package rpc carries connect-go RPCs over wsplex streams: each call is one
// stream named by its procedure, as SPEC.md §13 defines, so that services
// written for connect-go v2 (connectrpc.com/connect/v2) and the clients
// protoc-gen-connect-go generates work through one WebSocket, in every call
// shape, bidi streaming included, and in both directions.
//
// A server mounts a *connect.Server on a stream.Router, beside plain named
// streams:
//
//	server := connect.NewServer()
//	chatv1connect.RegisterChatServiceHandler(server, &chat{})
//	routes := stream.NewRouter(nil)
//	rpc.Mount(routes, server, nil)
//	h, _ := mux.NewHandler(func(s *mux.Session) { routes.Serve(s) }, nil)
//
// and a client calls through the session with an ordinary generated client:
//
//	client := chatv1connect.NewChatServiceClient(connect.NewClient(rpc.NewTransport(sess, nil)))
//
// Either end of a session may serve and call: a server reaches services
// that its clients serve on their sessions with the same two calls, which
// is how a server asks an agent behind NAT, a device or a page.
//
// # Semantics
//
// Headers, trailers and error details travel as connect-go documents them,
// through connect.CallInfo and *connect.Error. A caller's context deadline
// becomes the handler's, measured from the call's arrival; cancelling the
// caller's context resets the stream with connect.CodeCanceled (or
// connect.CodeDeadlineExceeded), which cancels the handler's context. A
// handler's context also carries the session's mux.AuthInfo, and ends
// when the session does. A call on a session that ended fails with
// connect.CodeUnavailable. As with connect-go's own transports, only a
// *connect.Error that the handler authored travels with its message and
// details; other errors reach the caller as a bare code, and a panic as
// connect.CodeInternal, while the session and its other calls go on.
//
// Messages use protobuf's binary encoding unless the first of a
// Transport's Options.Codecs is another, such as connectproto's JSON
// codec; handlers answer in the encoding of the call. Compression is the
// WebSocket's (mux.Options.Compression), not per message.
//
// A call with one request sends its open, its request and its half-close
// in one WebSocket message, and a handler with one response its answer,
// the response and the status likewise (see stream.Stream.Hold).
package rpc
