// Package wire converts between wsplex's Go types and the generated
// wsplex.v1 messages, and applies the wire's limits (SPEC.md), so that the
// generated package stays out of the public API and every package
// sanitises the same way.
package wire

import (
	"fmt"
	"strings"

	"google.golang.org/protobuf/proto"

	"github.com/wsplex/wsplex"
	wsplexv1 "github.com/wsplex/wsplex/proto/wsplex/v1"
)

// MaxStatusSize is the largest encoded Status a reset frame may carry
// (SPEC.md §5).
const MaxStatusSize = 16 << 10

// ValidUTF8 replaces invalid UTF-8 in s with U+FFFD: proto3 strings must be
// valid UTF-8, or marshalling fails.
func ValidUTF8(s string) string { return strings.ToValidUTF8(s, "\uFFFD") }

// MetadataProto returns m as it travels, keys lowercased and values made
// valid UTF-8; nil for an empty m.
func MetadataProto(m wsplex.Metadata) map[string]*wsplexv1.Values {
	if len(m) == 0 {
		return nil
	}
	out := make(map[string]*wsplexv1.Values, len(m))
	for k, vs := range m {
		k = ValidUTF8(strings.ToLower(k)) // keys set on the map directly may be mixed-case
		v := out[k]
		if v == nil {
			v = &wsplexv1.Values{}
			out[k] = v
		}
		for _, s := range vs {
			v.Values = append(v.Values, ValidUTF8(s))
		}
	}
	return out
}

// Metadata returns the metadata p carries, never nil.
func Metadata(p map[string]*wsplexv1.Values) wsplex.Metadata {
	m := make(wsplex.Metadata, len(p))
	for k, v := range p {
		k = strings.ToLower(k)
		m[k] = append(m[k], v.GetValues()...)
	}
	return m
}

// StatusProto returns the Status that e sends; nil e is CODE_OK.
func StatusProto(e *wsplex.Error) *wsplexv1.Status {
	if e == nil {
		return &wsplexv1.Status{}
	}
	return &wsplexv1.Status{
		Code:     wsplexv1.Code(e.Code),
		Message:  ValidUTF8(e.Message),
		Details:  e.Details,
		Trailers: MetadataProto(e.Trailers),
	}
}

// EncodeStatus encodes e's status for a reset frame, within MaxStatusSize:
// a status that would be larger loses its details and trailers, and its
// message is cut (on a UTF-8 boundary) and says so.
func EncodeStatus(e *wsplex.Error) []byte {
	st := StatusProto(e)
	b, err := proto.Marshal(st)
	if err == nil && len(b) <= MaxStatusSize {
		return b
	}
	msg := st.Message
	const note = " [status over 16 KiB: details and trailers dropped]"
	if max := MaxStatusSize - 64 - len(note); len(msg) > max {
		msg = strings.ToValidUTF8(msg[:max], "") + "..."
	}
	b, _ = proto.Marshal(&wsplexv1.Status{Code: st.Code, Message: msg + note})
	return b
}

// Error returns the status st describes as an *Error, nil for CODE_OK
// without trailers. A code this version does not know is reported as
// CodeUnknown, its number kept in the message.
func Error(st *wsplexv1.Status, remote bool) *wsplex.Error {
	code := wsplex.Code(st.GetCode())
	if code == wsplex.CodeOK && len(st.GetTrailers()) == 0 {
		return nil
	}
	e := &wsplex.Error{Code: code, Message: st.GetMessage(), Details: st.GetDetails(), Remote: remote}
	if len(st.GetTrailers()) > 0 {
		e.Trailers = Metadata(st.GetTrailers())
	}
	if !code.Known() {
		e.Code = wsplex.CodeUnknown
		e.Message = fmt.Sprintf("unknown code %d: %s", uint32(code), e.Message)
	}
	return e
}

// DecodeStatus decodes the body of a reset frame. A body that does not
// decode is CodeUnknown, with a message saying so. It never returns nil:
// a clean end is an *Error with CodeOK.
func DecodeStatus(b []byte) *wsplex.Error {
	var st wsplexv1.Status
	if err := proto.Unmarshal(b, &st); err != nil {
		return &wsplex.Error{Code: wsplex.CodeUnknown, Message: "malformed reset status: " + err.Error(), Remote: true}
	}
	if e := Error(&st, true); e != nil {
		return e
	}
	return &wsplex.Error{Code: wsplex.CodeOK, Remote: true}
}
