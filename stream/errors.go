package stream

import (
	"errors"

	"github.com/wsplex/wsplex"
)

// statusOf returns the status a stream ending with err reports: nil for
// nil; an *wsplex.Error in err's chain as it is; otherwise the code
// wsplex.CodeOf gives and err's text.
func statusOf(err error) *wsplex.Error {
	if err == nil {
		return nil
	}
	var e *wsplex.Error
	if errors.As(err, &e) {
		return e
	}
	return &wsplex.Error{Code: wsplex.CodeOf(err), Message: err.Error()}
}

// errTooBig is a message whose length prefix exceeds the limit.
type errTooBig struct{ size, limit int }

func (e *errTooBig) Error() string { return "message too big" }
