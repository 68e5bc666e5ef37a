package wsplex_test

import (
	"context"
	"errors"
	"fmt"

	"github.com/wsplex/wsplex"
)

// A handler ends its stream with a status by returning a *wsplex.Error;
// the other side reads the code with CodeOf.
func ExampleCodeOf() {
	err := error(wsplex.Errorf(wsplex.CodeNotFound, "no room %q", "lobby"))
	wrapped := fmt.Errorf("joining: %w", err)
	fmt.Println(wsplex.CodeOf(wrapped))
	fmt.Println(wsplex.CodeOf(context.DeadlineExceeded))
	fmt.Println(wsplex.CodeOf(errors.New("plain")))
	fmt.Println(wsplex.CodeOf(nil))
	// Output:
	// not_found
	// deadline_exceeded
	// unknown
	// ok
}

func ExampleError() {
	err := &wsplex.Error{
		Code:     wsplex.CodeUnavailable,
		Message:  "draining",
		Trailers: wsplex.Metadata{"retry-after": {"5"}},
	}
	fmt.Println(err)
	fmt.Println(err.Trailers.Get("Retry-After"))
	// Output:
	// wsplex: unavailable: draining
	// 5
}
