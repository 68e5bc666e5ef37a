package wire

import (
	"strings"
	"testing"
	"unicode/utf8"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/anypb"
	"google.golang.org/protobuf/types/known/wrapperspb"

	"github.com/wsplex/wsplex"
	wsplexv1 "github.com/wsplex/wsplex/proto/wsplex/v1"
)

// FuzzDecodeStatus decodes arbitrary bytes as a reset frame's status: it
// never fails, reports only known codes, and what it reports survives
// encoding and decoding again.
func FuzzDecodeStatus(f *testing.F) {
	detail, _ := anypb.New(wrapperspb.String("x"))
	for _, st := range []*wsplexv1.Status{
		{},
		{Code: wsplexv1.Code_CODE_CANCELED, Message: "canceled"},
		{Code: 99, Message: "future"},
		{Code: wsplexv1.Code_CODE_ABORTED, Details: []*anypb.Any{detail}, Trailers: map[string]*wsplexv1.Values{"k": {Values: []string{"v"}}}},
	} {
		b, _ := proto.Marshal(st)
		f.Add(b)
	}
	f.Add([]byte{0xff})
	f.Fuzz(func(t *testing.T, b []byte) {
		e := DecodeStatus(b)
		if e == nil || !e.Code.Known() || !e.Remote {
			t.Fatalf("DecodeStatus = %+v", e)
		}
		again := DecodeStatus(EncodeStatus(e))
		if again.Code != e.Code || again.Message != strings.ToValidUTF8(e.Message, "\uFFFD") && len(EncodeStatus(e)) < MaxStatusSize {
			t.Fatalf("round trip changed %+v into %+v", e, again)
		}
	})
}

func TestEncodeStatusStaysWithinTheLimit(t *testing.T) {
	long := strings.Repeat("é", MaxStatusSize) // twice the limit, in bytes
	e := &wsplex.Error{Code: wsplex.CodeInternal, Message: long, Trailers: wsplex.Metadata{"k": {"v"}}}
	b := EncodeStatus(e)
	if len(b) > MaxStatusSize {
		t.Fatalf("encoded %d bytes, over %d", len(b), MaxStatusSize)
	}
	got := DecodeStatus(b)
	if got.Code != wsplex.CodeInternal || !utf8.ValidString(got.Message) || !strings.Contains(got.Message, "dropped") || got.Trailers != nil {
		t.Fatalf("decoded %+v", got)
	}
}

func TestUnknownCodeIsUnknown(t *testing.T) {
	e := Error(&wsplexv1.Status{Code: 42, Message: "m"}, true)
	if e.Code != wsplex.CodeUnknown || e.Message != "unknown code 42: m" {
		t.Fatalf("%+v", e)
	}
}

func TestMetadataTravelsLowercaseAndValid(t *testing.T) {
	p := MetadataProto(wsplex.Metadata{"X-Key": {"a\xff"}, "x-key": {"b"}})
	m := Metadata(p)
	if got := m.Values("x-key"); len(got) != 2 || !utf8.ValidString(got[0]) || !utf8.ValidString(got[1]) {
		t.Fatalf("%v", m)
	}
}
