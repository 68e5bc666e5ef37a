package rpc

import (
	"context"
	"errors"
	"strconv"
	"strings"
	"time"

	"connectrpc.com/connect/v2"
	"google.golang.org/protobuf/types/known/anypb"

	"github.com/wsplex/wsplex"
	"github.com/wsplex/wsplex/mux"
)

// The reserved metadata keys of a call's open (SPEC.md §13.1).
const (
	keyRPC     = "wsplex-rpc"
	keyCodec   = "wsplex-codec"
	keyTimeout = "wsplex-timeout-ms"
)

// protocolName is what CallInfo.Protocol reports for calls over wsplex.
const protocolName = "wsplex"

// maxTimeout is the largest wsplex-timeout-ms: ten digits.
const maxTimeout = 9_999_999_999 * time.Millisecond

var shapeNames = map[connect.StreamType]string{
	connect.StreamTypeUnary:  "unary",
	connect.StreamTypeClient: "client",
	connect.StreamTypeServer: "server",
	connect.StreamTypeBidi:   "bidi",
}

func parseShape(s string) (connect.StreamType, bool) {
	switch s {
	case "unary":
		return connect.StreamTypeUnary, true
	case "client":
		return connect.StreamTypeClient, true
	case "server":
		return connect.StreamTypeServer, true
	case "bidi":
		return connect.StreamTypeBidi, true
	}
	return 0, false
}

// formatTimeout encodes the time left until deadline, rounded up to a whole
// millisecond, so that a call never claims more time than its caller
// gives, nor rounds a remaining fraction down to nothing.
func formatTimeout(left time.Duration) string {
	ms := (min(left, maxTimeout) + time.Millisecond - 1) / time.Millisecond
	return strconv.FormatInt(int64(max(ms, 1)), 10)
}

// parseTimeout decodes wsplex-timeout-ms.
func parseTimeout(s string) (time.Duration, bool) {
	if len(s) == 0 || len(s) > 10 {
		return 0, false
	}
	n, err := strconv.ParseUint(s, 10, 64)
	if err != nil || n == 0 {
		return 0, false
	}
	return time.Duration(n) * time.Millisecond, true
}

// requestMetadata builds a call's open metadata from its request headers
// and the reserved keys. Header keys travel in lowercase; reserved keys
// the application set are dropped.
func requestMetadata(h *connect.Header, shape connect.StreamType, codec string, ctx context.Context) wsplex.Metadata {
	md := make(wsplex.Metadata, h.Len()+3)
	for k, v := range h.All() {
		k = strings.ToLower(k)
		if strings.HasPrefix(k, "wsplex-") {
			continue
		}
		md[k] = v
	}
	md[keyRPC] = []string{shapeNames[shape]}
	if codec != connect.CodecNameProto {
		md[keyCodec] = []string{codec}
	}
	if dl, ok := ctx.Deadline(); ok {
		md[keyTimeout] = []string{formatTimeout(time.Until(dl))}
	}
	return md
}

// toHeader adds md's entries to h, leaving out reserved keys.
func toHeader(h *connect.Header, md wsplex.Metadata) {
	for k, v := range md {
		if strings.HasPrefix(k, "wsplex-") {
			continue
		}
		h.SetValues(k, v)
	}
}

// toMetadata adds h's entries to md with lowercase keys.
func toMetadata(md wsplex.Metadata, h *connect.Header) {
	for k, v := range h.All() {
		md[strings.ToLower(k)] = v
	}
}

// metadataOf returns h's entries as Metadata, nil if there are none.
func metadataOf(h *connect.Header) wsplex.Metadata {
	if h.Len() == 0 {
		return nil
	}
	md := make(wsplex.Metadata, h.Len())
	toMetadata(md, h)
	return md
}

// statusOf turns a handler's error into the status that ends its call,
// with connect-go's rules: only a *connect.Error the handler authored
// travels with its message and details; a remote one (from a call the
// handler made) becomes CodeInternal, context errors their codes, and any
// other error CodeUnknown, all without a message.
func statusOf(err error) *wsplex.Error {
	if ce, ok := errors.AsType[*connect.Error](err); ok && ce != nil {
		if ce.IsRemote() {
			return &wsplex.Error{Code: wsplex.CodeInternal}
		}
		e := &wsplex.Error{Code: wsplex.Code(ce.Code()), Message: ce.Message()}
		for _, d := range ce.Details() {
			e.Details = append(e.Details, &anypb.Any{TypeUrl: "type.googleapis.com/" + d.Type, Value: d.Value})
		}
		return e
	}
	switch {
	case errors.Is(err, context.Canceled):
		return &wsplex.Error{Code: wsplex.CodeCanceled}
	case errors.Is(err, context.DeadlineExceeded):
		return &wsplex.Error{Code: wsplex.CodeDeadlineExceeded}
	}
	return &wsplex.Error{Code: wsplex.CodeUnknown}
}

// errorOf turns what a stream operation failed with into the error a
// connect-go caller or handler sees: a peer's status as a remote
// *connect.Error with its details; a lost session as CodeUnavailable; other
// errors with the code wsplex gives them.
func errorOf(err error) error {
	if err == nil {
		return nil
	}
	if _, ok := errors.AsType[*connect.Error](err); ok {
		return err
	}
	if e, ok := errors.AsType[*wsplex.Error](err); ok {
		ce := connect.NewError(connect.Code(e.Code), e.Message).WithCause(err)
		for _, d := range e.Details {
			ce = ce.WithDetail(&connect.ErrorDetail{Type: typeName(d.GetTypeUrl()), Value: d.GetValue()})
		}
		if e.Remote {
			ce = ce.WithRemote()
		}
		return ce
	}
	if errors.Is(err, mux.ErrSessionClosed) {
		return connect.NewError(connect.CodeUnavailable, err.Error()).WithCause(err)
	}
	return connect.NewError(connect.Code(wsplex.CodeOf(err)), err.Error()).WithCause(err)
}

// typeName returns the message name of an Any's type URL: what follows
// its last "/".
func typeName(url string) string {
	return url[strings.LastIndexByte(url, '/')+1:]
}
