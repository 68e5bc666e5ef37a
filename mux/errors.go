package mux

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"

	wsplexv1 "github.com/wsplex/wsplex/proto/wsplex/v1"
)

var (
	// ErrSessionClosed is returned by calls on a session, and on its
	// streams, after the session ended. It matches net.ErrClosed. Session.Err
	// says why the session ended.
	ErrSessionClosed error = closedError("wsplex/mux: session closed")

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

// ResetError says that a stream was reset, by the peer (Remote) or locally,
// with a status. A peer that closes a stream before reading all of it
// resets it with CODE_OK: reads still end with io.EOF, writes fail with a
// ResetError whose Code is CODE_OK.
type ResetError struct {
	Code    wsplexv1.Code
	Message string
	Remote  bool // the peer reset the stream
}

func (e *ResetError) Error() string {
	who := "locally"
	if e.Remote {
		who = "by peer"
	}
	if e.Code == wsplexv1.Code_CODE_OK {
		return "wsplex/mux: stream closed " + who
	}
	if e.Message == "" {
		return fmt.Sprintf("wsplex/mux: stream reset %s: %s", who, codeName(e.Code))
	}
	return fmt.Sprintf("wsplex/mux: stream reset %s: %s: %s", who, codeName(e.Code), e.Message)
}

// codeName turns CODE_NOT_FOUND into "not found".
func codeName(c wsplexv1.Code) string {
	name := c.String()
	if len(name) > 5 && name[:5] == "CODE_" {
		name = name[5:]
	}
	b := []byte(name)
	for i, r := range b {
		switch {
		case r == '_':
			b[i] = ' '
		case 'A' <= r && r <= 'Z':
			b[i] = r + 'a' - 'A'
		}
	}
	return string(b)
}

// timeoutError is returned when a stream deadline passes. It matches
// os.ErrDeadlineExceeded and is a net.Error whose Timeout is true.
type timeoutError struct{ op string }

func (e timeoutError) Error() string   { return "wsplex/mux: " + e.op + ": i/o timeout" }
func (e timeoutError) Timeout() bool   { return true }
func (e timeoutError) Temporary() bool { return true }
func (e timeoutError) Is(target error) bool {
	return target == os.ErrDeadlineExceeded
}

// closedError is an error text that also matches net.ErrClosed.
type closedError string

func (e closedError) Error() string        { return string(e) }
func (e closedError) Is(target error) bool { return target == net.ErrClosed }

const codeResourceExhausted = wsplexv1.Code_CODE_RESOURCE_EXHAUSTED
