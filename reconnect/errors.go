package reconnect

import closederr "github.com/wsplex/wsplex/internal/closed"

// ErrClosed is returned by Client.Session after Close. It matches
// net.ErrClosed.
var ErrClosed error = closederr.Error("wsplex/reconnect: client closed")
