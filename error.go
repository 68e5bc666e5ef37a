package wsplex

import (
	"context"
	"errors"
	"fmt"

	"google.golang.org/protobuf/types/known/anypb"
)

// Error is a status: why a stream was refused or how it ended, as both
// ends see it. A stream handler returns one to choose the status its
// stream ends with; reads and writes on a stream return one after a reset.
// Test a code with CodeOf, not by comparing errors.
type Error struct {
	Code    Code
	Message string // for developers, not end users

	// Details say more about an error, as google.rpc.Status details do
	// (for instance a google.rpc.RetryInfo).
	Details []*anypb.Any

	// Metadata is the response metadata of a refused open.
	Metadata Metadata

	// Trailers travel with the end of the stream.
	Trailers Metadata

	// Remote reports that the status came from the peer.
	Remote bool
}

// NewError returns an *Error with code and message.
func NewError(code Code, message string) *Error {
	return &Error{Code: code, Message: message}
}

// Errorf returns an *Error with code and a formatted message.
func Errorf(code Code, format string, args ...any) *Error {
	return &Error{Code: code, Message: fmt.Sprintf(format, args...)}
}

func (e *Error) Error() string {
	if e.Message == "" {
		return "wsplex: " + e.Code.String()
	}
	return "wsplex: " + e.Code.String() + ": " + e.Message
}

// Is makes errors.Is(err, context.Canceled) true for CodeCanceled and
// errors.Is(err, context.DeadlineExceeded) for CodeDeadlineExceeded.
func (e *Error) Is(target error) bool {
	return e.Code == CodeCanceled && target == context.Canceled ||
		e.Code == CodeDeadlineExceeded && target == context.DeadlineExceeded
}

// CodeOf returns the code a stream ending with err reports: CodeOK for nil,
// the code of an *Error in err's chain, CodeCanceled and
// CodeDeadlineExceeded for the context errors, and CodeUnknown otherwise.
func CodeOf(err error) Code {
	var e *Error
	switch {
	case err == nil:
		return CodeOK
	case errors.As(err, &e):
		return e.Code
	case errors.Is(err, context.Canceled):
		return CodeCanceled
	case errors.Is(err, context.DeadlineExceeded):
		return CodeDeadlineExceeded
	}
	return CodeUnknown
}

// ErrPeerClosed is returned by writes on a stream whose peer closed it
// before reading all of it (SPEC.md §5: a reset with CodeOK): the peer
// reads no more, but what it sent can still be read.
var ErrPeerClosed = errors.New("wsplex: peer closed the stream")
