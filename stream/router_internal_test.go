package stream

import (
	"bytes"
	"testing"
	"unicode/utf8"

	"google.golang.org/protobuf/encoding/protodelim"
	"google.golang.org/protobuf/proto"

	"github.com/wsplex/wsplex"
	wsplexv1 "github.com/wsplex/wsplex/proto/wsplex/v1"
)

// FuzzReadOpenRequest decodes arbitrary bytes as the start of a stream. It
// must never panic; a refusal must carry a message; an accepted request
// must have a valid name and survive encode-decode unchanged.
func FuzzReadOpenRequest(f *testing.F) {
	for _, req := range []*wsplexv1.OpenRequest{
		{Name: "/echo"},
		{Name: "/chat/room/42", Metadata: map[string]*wsplexv1.Values{"token": {Values: []string{"a", "b"}}}},
		{Name: "no-slash"},
		{Name: "/bad\x7fname"},
	} {
		var buf bytes.Buffer
		protodelim.MarshalTo(&buf, req)
		f.Add(buf.Bytes())
	}
	f.Add([]byte{0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01})
	f.Add([]byte{3, 0x0a, 0x05})
	f.Fuzz(func(t *testing.T, in []byte) {
		const limit = 1024
		req, refusal := readOpenRequest(&bytesPeeker{b: in}, limit)
		switch {
		case req == nil && refusal == nil:
			return // the input ended before a request: the peer left
		case req == nil:
			if refusal.Message == "" || refusal.Code == wsplex.CodeOK {
				t.Fatalf("refusal %v without a code or message", refusal)
			}
			return
		}
		if err := CheckName(req.GetName()); err != nil {
			t.Fatalf("accepted invalid name %q: %v", req.GetName(), err)
		}
		var buf bytes.Buffer
		if _, err := protodelim.MarshalTo(&buf, req); err != nil {
			t.Fatalf("re-encode: %v", err)
		}
		again, refusal := readOpenRequest(&bytesPeeker{b: buf.Bytes()}, limit)
		if again == nil || !proto.Equal(req, again) {
			t.Fatalf("round trip changed %v into %v (%v)", req, again, refusal)
		}
	})
}

// FuzzCheckName checks that an accepted name is one the spec allows and
// that routing it never panics, whatever its bytes.
func FuzzCheckName(f *testing.F) {
	for _, s := range []string{"/echo", "", "/a\x00", "/\u00e9t\u00e9", "/\xff", "/a/../b", "/files/%2F{x}"} {
		f.Add(s)
	}
	routes := NewRouter(nil)
	routes.HandleFunc("/files/{path...}", nil)
	routes.HandleFunc("/chat/room/{id}", nil)
	f.Fuzz(func(t *testing.T, name string) {
		if CheckName(name) != nil {
			return
		}
		if name[0] != '/' || len(name) > MaxNameLen || !utf8.ValidString(name) {
			t.Fatalf("accepted %q", name)
		}
		for _, r := range name {
			if r < 0x20 || r == 0x7f || (r >= 0x80 && r < 0xa0) {
				t.Fatalf("accepted %q with control character %U", name, r)
			}
		}
		routes.match(name)
	})
}
