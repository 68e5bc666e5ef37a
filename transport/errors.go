package transport

import "github.com/wsplex/wsplex/internal/wsconn"

// The errors that end a Conn. They are the very values that package mux
// reports, so errors.Is matches whichever layer an error came through.
var (
	// ErrTextMessage is the error after the peer sent a text message. The
	// connection was closed with code 1003 (unsupported data).
	ErrTextMessage = wsconn.ErrTextMessage

	// ErrMessageTooBig is the error after the peer sent a message larger than
	// Options.ReadLimit. The connection was closed with code 1009.
	ErrMessageTooBig = wsconn.ErrMessageTooBig

	// ErrKeepAliveTimeout is the error after nothing arrived from the peer for
	// Options.KeepAliveTimeout.
	ErrKeepAliveTimeout = wsconn.ErrKeepAliveTimeout

	// ErrWriteTimeout is the error after a write made no progress for
	// Options.WriteTimeout. Unlike a deadline set with SetWriteDeadline, it
	// ends the connection: the peer stopped reading.
	ErrWriteTimeout = wsconn.ErrWriteTimeout

	// ErrPeerClosed is returned by Write after the peer closed the connection
	// normally.
	ErrPeerClosed = wsconn.ErrPeerClosed
)

// CloseError reports that the peer closed the connection with a close code
// other than 1000 (normal closure) or 1001 (going away), or that the
// connection ended without a close frame (code 1006).
type CloseError = wsconn.CloseError
