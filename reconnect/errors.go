package reconnect

import (
	"errors"

	closederr "github.com/wsplex/wsplex/internal/closed"
)

// ErrClosed is returned by Client.Session after Close. It matches
// net.ErrClosed.
var ErrClosed error = closederr.Error("wsplex/reconnect: client closed")

// ErrNoSession is returned by Client.SessionFailFast while the client waits
// to dial again.
var ErrNoSession = errors.New("wsplex/reconnect: no session")
