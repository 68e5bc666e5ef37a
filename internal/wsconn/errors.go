package wsconn

import (
	"errors"
	"fmt"
)

// The errors that end a Conn. Package transport re-exports each of them
// under the same name, so errors.Is matches across the two packages; their
// texts carry transport's prefix because that is the package users see.
var (
	// ErrTextMessage is the error after the peer sent a text message. The
	// connection was closed with code 1003 (unsupported data).
	ErrTextMessage = errors.New("wsplex/transport: text message received; only binary messages are allowed")

	// ErrMessageTooBig is the error after the peer sent a message larger than
	// Options.ReadLimit. The connection was closed with code 1009.
	ErrMessageTooBig = errors.New("wsplex/transport: message exceeds read limit")

	// ErrKeepAliveTimeout is the error after nothing arrived from the peer for
	// Options.KeepAliveTimeout.
	ErrKeepAliveTimeout = errors.New("wsplex/transport: keepalive timeout: nothing received from peer")

	// ErrWriteTimeout is the error after a write made no progress for
	// Options.WriteTimeout: the peer stopped reading.
	ErrWriteTimeout = errors.New("wsplex/transport: write timeout: peer is not reading")

	// ErrPeerClosed is the error after the peer closed the connection
	// normally (close code 1000 or 1001).
	ErrPeerClosed = errors.New("wsplex/transport: connection closed by peer")
)

// CloseError reports that the peer closed the connection with a close code
// other than 1000 (normal closure) or 1001 (going away), or that the
// connection ended without a close frame (code 1006).
type CloseError struct {
	Code   int    // WebSocket close code, RFC 6455 section 7.4
	Reason string // close reason sent by the peer, possibly empty
}

func (e *CloseError) Error() string {
	if e.Code == closeAbnormal {
		if e.Reason != "" {
			return "wsplex/transport: connection lost (1006): " + e.Reason
		}
		return "wsplex/transport: connection lost (1006)"
	}
	if e.Reason == "" {
		return fmt.Sprintf("wsplex/transport: peer closed connection with code %d", e.Code)
	}
	return fmt.Sprintf("wsplex/transport: peer closed connection with code %d: %s", e.Code, e.Reason)
}

const closeAbnormal = 1006
