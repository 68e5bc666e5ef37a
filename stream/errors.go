package stream

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/wsplex/wsplex/mux"
	wsplexv1 "github.com/wsplex/wsplex/proto/wsplex/v1"
)

// Code says how a stream open or a stream ended. The values are those of
// wsplexv1.Code, which reuses gRPC's numbers.
type Code = wsplexv1.Code

// The codes. SPEC.md says when each is used.
const (
	CodeOK                = wsplexv1.Code_CODE_OK
	CodeCanceled          = wsplexv1.Code_CODE_CANCELED
	CodeUnknown           = wsplexv1.Code_CODE_UNKNOWN
	CodeInvalidArgument   = wsplexv1.Code_CODE_INVALID_ARGUMENT
	CodeDeadlineExceeded  = wsplexv1.Code_CODE_DEADLINE_EXCEEDED
	CodeNotFound          = wsplexv1.Code_CODE_NOT_FOUND
	CodePermissionDenied  = wsplexv1.Code_CODE_PERMISSION_DENIED
	CodeResourceExhausted = wsplexv1.Code_CODE_RESOURCE_EXHAUSTED
	CodeInternal          = wsplexv1.Code_CODE_INTERNAL
	CodeUnavailable       = wsplexv1.Code_CODE_UNAVAILABLE
	CodeUnauthenticated   = wsplexv1.Code_CODE_UNAUTHENTICATED
)

// Sentinels to test an error's code with errors.Is: any *Error with the
// same code matches, whatever its message.
var (
	ErrCanceled          = &Error{Code: CodeCanceled}
	ErrUnknown           = &Error{Code: CodeUnknown}
	ErrInvalidArgument   = &Error{Code: CodeInvalidArgument}
	ErrDeadlineExceeded  = &Error{Code: CodeDeadlineExceeded}
	ErrNotFound          = &Error{Code: CodeNotFound}
	ErrPermissionDenied  = &Error{Code: CodePermissionDenied}
	ErrResourceExhausted = &Error{Code: CodeResourceExhausted}
	ErrInternal          = &Error{Code: CodeInternal}
	ErrUnavailable       = &Error{Code: CodeUnavailable}
	ErrUnauthenticated   = &Error{Code: CodeUnauthenticated}

	// ErrPeerClosed is returned by Send and Write after the peer closed
	// the stream without error before reading all of it.
	ErrPeerClosed = errors.New("wsplex/stream: peer closed the stream")
)

// Error is a stream that was refused or ended with a status: by the peer
// (Remote), or locally. A handler returns one to choose the status its
// stream ends with.
type Error struct {
	Code    Code
	Message string
	// Metadata is the response metadata of a refused open, if any.
	Metadata Metadata
	// Remote reports that the status came from the peer.
	Remote bool
}

// NewError returns an *Error with the code and a formatted message, for a
// handler to return.
func NewError(code Code, format string, args ...any) *Error {
	return &Error{Code: code, Message: fmt.Sprintf(format, args...)}
}

func (e *Error) Error() string {
	if e.Message == "" {
		return "wsplex/stream: " + codeText(e.Code)
	}
	return "wsplex/stream: " + codeText(e.Code) + ": " + e.Message
}

// Is makes errors.Is(err, ErrNotFound) true for every *Error with
// CodeNotFound, and errors.Is(err, context.Canceled) true for
// CodeCanceled.
func (e *Error) Is(target error) bool {
	if t, ok := target.(*Error); ok {
		return t.Message == "" && t.Metadata == nil && t.Code == e.Code
	}
	return e.Code == CodeCanceled && target == context.Canceled ||
		e.Code == CodeDeadlineExceeded && target == context.DeadlineExceeded
}

// CodeOf returns the code a stream ending with err reports: CodeOK for nil,
// the code of an *Error, CodeCanceled and CodeDeadlineExceeded for the
// context errors, and CodeUnknown otherwise.
func CodeOf(err error) Code {
	var e *Error
	var re *mux.ResetError
	switch {
	case err == nil:
		return CodeOK
	case errors.As(err, &e):
		return e.Code
	case errors.As(err, &re):
		return re.Code
	case errors.Is(err, context.Canceled):
		return CodeCanceled
	case errors.Is(err, context.DeadlineExceeded):
		return CodeDeadlineExceeded
	}
	return CodeUnknown
}

// codeText turns CODE_NOT_FOUND into "not found".
func codeText(c Code) string {
	return strings.ReplaceAll(strings.ToLower(strings.TrimPrefix(c.String(), "CODE_")), "_", " ")
}

// fromMux translates the mux layer's reset into our error type.
func fromMux(err error) error {
	var re *mux.ResetError
	if !errors.As(err, &re) {
		return err
	}
	if re.Code == CodeOK {
		return ErrPeerClosed
	}
	return &Error{Code: re.Code, Message: re.Message, Remote: re.Remote}
}

// statusOf returns the code and message a stream ending with err reports.
func statusOf(err error) (Code, string) {
	if err == nil {
		return CodeOK, ""
	}
	var e *Error
	if errors.As(err, &e) {
		return e.Code, e.Message
	}
	return CodeOf(err), err.Error()
}
