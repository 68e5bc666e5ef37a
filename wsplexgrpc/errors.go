package wsplexgrpc

import (
	closederr "github.com/wsplex/wsplex/internal/closed"
)

// ErrListenerClosed is returned by Listener.Accept after Close. It matches
// net.ErrClosed, as grpc.Server.Serve expects of a closed listener.
var ErrListenerClosed error = closederr.Error("wsplexgrpc: listener closed")
