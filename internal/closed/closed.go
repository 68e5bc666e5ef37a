// Package closed has the error type of calls on closed things: sessions,
// streams and clients.
package closed

import "net"

// Error is an error text that also matches net.ErrClosed.
type Error string

func (e Error) Error() string        { return string(e) }
func (e Error) Is(target error) bool { return target == net.ErrClosed }
