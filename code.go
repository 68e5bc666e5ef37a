package wsplex

import "strconv"

// Code says how a stream open or a stream ended. The numbers and meanings
// are gRPC's and Connect's, so an RPC status maps one to one; SPEC.md §9
// says where wsplex itself uses each.
type Code uint32

// The codes. A code above CodeUnauthenticated that arrives from a peer is
// reported as CodeUnknown.
const (
	CodeOK                 Code = 0  // success
	CodeCanceled           Code = 1  // cancelled, typically by the caller
	CodeUnknown            Code = 2  // an error that fits no other code
	CodeInvalidArgument    Code = 3  // the request is malformed
	CodeDeadlineExceeded   Code = 4  // a deadline passed before the work was done
	CodeNotFound           Code = 5  // what was asked for does not exist
	CodeAlreadyExists      Code = 6  // what the caller tried to create exists
	CodePermissionDenied   Code = 7  // the caller may not do this
	CodeResourceExhausted  Code = 8  // a limit or quota was hit
	CodeFailedPrecondition Code = 9  // the system is not in the state needed
	CodeAborted            Code = 10 // aborted, typically by a concurrency conflict
	CodeOutOfRange         Code = 11 // past a valid range
	CodeUnimplemented      Code = 12 // not implemented, such as an unknown procedure
	CodeInternal           Code = 13 // an invariant broke: the handler failed
	CodeUnavailable        Code = 14 // cannot serve now; retrying later may help
	CodeDataLoss           Code = 15 // data lost or corrupted beyond recovery
	CodeUnauthenticated    Code = 16 // the caller did not prove who it is
)

var codeNames = [...]string{
	"ok", "canceled", "unknown", "invalid_argument", "deadline_exceeded",
	"not_found", "already_exists", "permission_denied", "resource_exhausted",
	"failed_precondition", "aborted", "out_of_range", "unimplemented",
	"internal", "unavailable", "data_loss", "unauthenticated",
}

// String returns the code's name as Connect spells it, such as
// "not_found", or "code_99" for a number that names no code.
func (c Code) String() string {
	if int(c) < len(codeNames) {
		return codeNames[c]
	}
	return "code_" + strconv.FormatUint(uint64(c), 10)
}

// Known reports whether c is one of the codes above.
func (c Code) Known() bool { return int(c) < len(codeNames) }
