package stream

import (
	"bufio"
	"bytes"
	"errors"
	"io"
	"strings"
	"testing"

	"google.golang.org/protobuf/encoding/protodelim"
	"google.golang.org/protobuf/proto"

	wsplexv1 "github.com/wsplex/wsplex/proto/wsplex/v1"
)

// bytesPeeker is a peeker over a byte slice, whose Peek fails with err,
// once, when it reaches failAt.
type bytesPeeker struct {
	b      []byte
	failAt int
	err    error
	extra  uint8 // Peek returns this many bytes more than asked, if it has them
}

func (p *bytesPeeker) Peek(n int) ([]byte, error) {
	if p.err != nil && n > p.failAt {
		err := p.err
		p.err = nil
		return p.b[:min(len(p.b), p.failAt)], err
	}
	if n > len(p.b) {
		return p.b, io.EOF
	}
	return p.b[:min(len(p.b), n+int(p.extra))], nil // sometimes more, as mux's Peek
}

func (p *bytesPeeker) Discard(n int) int {
	n = min(n, len(p.b))
	p.b = p.b[n:]
	p.failAt -= n
	return n
}

// FuzzReadMessage decodes arbitrary bytes as a series of messages and
// checks every result against protodelim's: the same messages, and an
// error where protodelim has one, of the same kind.
func FuzzReadMessage(f *testing.F) {
	for _, size := range []int{0, 5, 40, 300} {
		var b bytes.Buffer
		protodelim.MarshalTo(&b, &wsplexv1.Status{Code: 2, Message: strings.Repeat("m", size)})
		protodelim.MarshalTo(&b, &wsplexv1.Status{Message: "next"})
		f.Add(b.Bytes(), uint16(1000))
		f.Add(b.Bytes()[:b.Len()-3], uint16(100))
	}
	f.Add([]byte{0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01}, uint16(0))
	f.Fuzz(func(t *testing.T, data []byte, maxSize uint16) {
		ours := &bytesPeeker{b: data, extra: uint8(maxSize)}
		theirs := bufio.NewReader(bytes.NewReader(data))
		limit := int(maxSize)
		if limit == 0 {
			limit = 4 << 20 // protodelim's default for MaxSize 0
		}
		for {
			var got, want wsplexv1.Status
			err := readMessage(ours, &got, limit)
			werr := protodelim.UnmarshalOptions{MaxSize: int64(maxSize)}.UnmarshalFrom(theirs, &want)
			var tooBig *errTooBig
			var wantTooBig *protodelim.SizeTooLargeError
			switch {
			case err == nil && werr == nil:
				if !proto.Equal(&got, &want) {
					t.Fatalf("readMessage: %v; protodelim: %v", &got, &want)
				}
				continue
			case errors.As(err, &tooBig) && errors.As(werr, &wantTooBig):
				if uint64(tooBig.size) != wantTooBig.Size {
					t.Fatalf("too big: %d; protodelim: %d", tooBig.size, wantTooBig.Size)
				}
			case err == io.EOF && werr == io.EOF,
				err == io.ErrUnexpectedEOF && werr == io.ErrUnexpectedEOF,
				isMalformed(err) && errors.Is(werr, proto.Error):
			default:
				t.Fatalf("readMessage: %v; protodelim: %v", err, werr)
			}
			return
		}
	})
}

// TestReadErrorMidMessageConsumesNothing reads messages whose bytes come
// with an error (as a read deadline gives) at every possible point: the
// error must come back, and the next read must return the whole message.
func TestReadErrorMidMessageConsumesNothing(t *testing.T) {
	var wire bytes.Buffer
	want := &wsplexv1.Status{Message: strings.Repeat("p", 300)} // a 2-byte prefix
	protodelim.MarshalTo(&wire, want)
	timeout := errors.New("timeout")
	for at := range wire.Len() {
		p := &bytesPeeker{b: wire.Bytes(), failAt: at, err: timeout}
		var got wsplexv1.Status
		if err := readMessage(p, &got, 1<<20); err != timeout {
			t.Fatalf("cut at %d: first read %v, want the error", at, err)
		}
		if err := readMessage(p, &got, 1<<20); err != nil || !proto.Equal(&got, want) {
			t.Fatalf("cut at %d: after the error: %v", at, err)
		}
	}
}
