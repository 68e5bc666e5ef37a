// Package wsplexgrpc runs unmodified grpc-go clients and servers over
// wsplex sessions: each gRPC connection, with gRPC's own HTTP/2 inside, is
// one wsplex stream, used as a net.Conn.
//
// So a gRPC service reaches clients wherever a WebSocket gets through
// (browsers' networks, HTTP proxies, load balancers that speak only
// HTTP/1.1), next to the plain named streams of the same session, and
// either side of a session may call the other: a server can call services
// that its clients serve.
//
// The serving side mounts a [Listener] on the stream.Router of its
// sessions and serves it with a grpc.Server:
//
//	lis := wsplexgrpc.NewListener(nil)
//	go grpcServer.Serve(lis)
//	routes.Handle(wsplexgrpc.DefaultName, lis) // next to routes.HandleFunc("/chat/{room}", ...)
//
// The calling side gives gRPC a [Dialer] on its session, or a
// [ReconnectDialer] on a reconnect.Client:
//
//	cc, err := grpc.NewClient("passthrough:///wsplex",
//		grpc.WithContextDialer(wsplexgrpc.Dialer(sess, nil)),
//		grpc.WithTransportCredentials(insecure.NewCredentials()))
//
// The target only names the connection; "passthrough:///" keeps gRPC from
// resolving it. The streams are named [DefaultName] ("/grpc") unless
// DialOptions.Name says otherwise. Deadlines, cancellation, metadata,
// status details and all four call shapes are gRPC's own, unchanged.
//
// Listeners and dial funcs are safe for concurrent use. A Listener must be
// closed; grpc.Server.Stop closes it.
//
// # Security
//
// The session's TLS (wss://) protects the gRPC traffic, so gRPC inside
// uses insecure transport credentials, on both sides: gRPC then refuses
// per-RPC credentials that require transport security, such as oauth's.
// Authenticate the session instead (mux.HandlerOptions.Authenticate); a
// gRPC handler reads what it returned with [AuthInfo].
//
// # Peers
//
// Inside a gRPC handler, peer.FromContext gives the remote address of the
// session's TCP connection, as the stream's RemoteAddr does (behind a
// reverse proxy, the proxy's); its AuthInfo is gRPC's, nil or insecure.
// [Session] returns the session the call came over, which the handler may
// use to call the client back (a Dialer on that session) or to open plain
// streams, and [AuthInfo] what mux.HandlerOptions.Authenticate returned
// for it.
//
// # Lost sessions
//
// When a session ends, its gRPC connections break: calls under way fail
// with codes.Unavailable and their handlers' contexts end. A Dialer on
// that session fails every later dial, so later calls fail with
// codes.Unavailable too. A ReconnectDialer waits for the reconnect.Client's
// next session, so that gRPC's own redial brings calls back.
//
// # Backpressure
//
// A stream waits in Listener.ServeStream until Accept takes it, one at a
// time, without a queue in between; grpc.Server.Serve accepts at once, so
// the wait is short while the server serves. A stream that no Accept takes
// within ListenerOptions.AcceptTimeout (10 s), or that waits when the
// Listener closes, is refused with wsplex.CodeUnavailable, and gRPC's
// dialer retries with its backoff. Waiting streams count against the
// session's mux.Options.MaxStreams like any other. Each accepted
// connection holds one goroutine of the Router (the stream's handler) for
// as long as gRPC keeps it open.
package wsplexgrpc
