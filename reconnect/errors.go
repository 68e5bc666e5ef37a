package reconnect

import "net"

// ErrClosed is returned by Client.Session after Close. It matches
// net.ErrClosed.
var ErrClosed error = closedError("wsplex/reconnect: client closed")

// closedError is an error text that also matches net.ErrClosed.
type closedError string

func (e closedError) Error() string        { return string(e) }
func (e closedError) Is(target error) bool { return target == net.ErrClosed }
