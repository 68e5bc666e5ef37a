package mux

import (
	"context"
	"errors"
	"os"

	closederr "github.com/wsplex/wsplex/internal/closed"
)

var (
	// ErrSessionClosed is returned by calls on a session, and on its
	// streams, after the session ended. It matches net.ErrClosed. Session.Err
	// says why the session ended.
	ErrSessionClosed error = closederr.Error("wsplex/mux: session closed")

	// ErrGoAway is returned by Open after the peer announced that it accepts
	// no new streams (it is shutting down).
	ErrGoAway = errors.New("wsplex/mux: peer accepts no new streams")

	// ErrWriteClosed is returned by Write after CloseWrite.
	ErrWriteClosed = errors.New("wsplex/mux: write after CloseWrite")

	// ErrHandlerClosed is the HTTP error text after Handler.Shutdown or
	// Handler.Close.
	ErrHandlerClosed = errors.New("wsplex/mux: handler shutting down")

	// ErrSubprotocol is returned by Dial when the server did not agree to
	// the wsplex subprotocol.
	ErrSubprotocol = errors.New("wsplex/mux: server did not accept subprotocol " + Subprotocol)
)

// ErrHandshakeTimeout is returned by Dial when the handshake took longer
// than DialOptions.HandshakeTimeout. It matches context.DeadlineExceeded and
// os.ErrDeadlineExceeded.
var ErrHandshakeTimeout error = handshakeTimeoutError{}

type handshakeTimeoutError struct{}

func (handshakeTimeoutError) Error() string { return "wsplex/mux: handshake timed out" }
func (handshakeTimeoutError) Timeout() bool { return true }
func (handshakeTimeoutError) Is(target error) bool {
	return target == context.DeadlineExceeded || target == os.ErrDeadlineExceeded
}
