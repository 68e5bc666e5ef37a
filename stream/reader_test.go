package stream

import (
	"bytes"
	"fmt"
	"io"
	"testing"
	"testing/iotest"

	"google.golang.org/protobuf/encoding/protodelim"

	wsplexv1 "github.com/wsplex/wsplex/proto/wsplex/v1"
)

// TestReaderHoldsNoBufferBetweenMessages decodes messages of many sizes,
// delivered in pieces of every kind, and checks that the reader gives its
// buffer back whenever it has read all it buffered, so an idle stream holds
// none.
func TestReaderHoldsNoBufferBetweenMessages(t *testing.T) {
	var want []*wsplexv1.Status
	var wire bytes.Buffer
	for _, size := range []int{0, 1, 63, 64, 65, readBufferSize - 3, readBufferSize, 3 * readBufferSize} {
		m := &wsplexv1.Status{Code: 3, Message: string(bytes.Repeat([]byte{'x'}, size))}
		want = append(want, m)
		if _, err := protodelim.MarshalTo(&wire, m); err != nil {
			t.Fatal(err)
		}
	}
	tail := []byte("raw tail after the messages")
	wire.Write(tail)

	splits := map[string]func(io.Reader) io.Reader{
		"whole":    func(r io.Reader) io.Reader { return r },
		"half":     iotest.HalfReader,
		"one-byte": iotest.OneByteReader,
	}
	for name, split := range splits {
		t.Run(name, func(t *testing.T) {
			r := &reader{src: split(bytes.NewReader(wire.Bytes()))}
			for i, w := range want {
				br, err := r.buffered()
				if err != nil {
					t.Fatalf("message %d: %v", i, err)
				}
				var got wsplexv1.Status
				if err := (protodelim.UnmarshalOptions{MaxSize: -1}).UnmarshalFrom(br, &got); err != nil {
					t.Fatalf("message %d: %v", i, err)
				}
				r.release()
				if got.Message != w.Message {
					t.Fatalf("message %d: got %d bytes, want %d", i, len(got.Message), len(w.Message))
				}
			}
			rest, err := io.ReadAll(r)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(rest, tail) {
				t.Fatalf("raw tail = %q, want %q", rest, tail)
			}
			if r.br != nil {
				t.Fatal("reader holds a buffer after reading everything")
			}
		})
	}
}

// TestReaderReleasesAtMessageBoundaries reads short messages that arrive
// one per read, as from a peer that sends now and then: the reader must
// wait for each with its small array, not with a pooled buffer.
func TestReaderReleasesAtMessageBoundaries(t *testing.T) {
	var frames [][]byte
	for i := range 10 {
		var b bytes.Buffer
		protodelim.MarshalTo(&b, &wsplexv1.Status{Message: fmt.Sprint("message ", i)})
		frames = append(frames, b.Bytes())
	}
	src := &frameReader{frames: frames}
	r := &reader{src: src}
	for i := range frames {
		br, err := r.buffered()
		if err != nil {
			t.Fatal(err)
		}
		var got wsplexv1.Status
		if err := protodelim.UnmarshalFrom(br, &got); err != nil {
			t.Fatal(err)
		}
		r.release()
		if want := fmt.Sprint("message ", i); got.Message != want {
			t.Fatalf("got %q, want %q", got.Message, want)
		}
		if r.br != nil {
			t.Fatalf("after message %d the reader still holds a buffer", i)
		}
		if src.heldDuringWait {
			t.Fatalf("before message %d the reader held a buffer while it waited", i)
		}
	}
	if _, err := r.buffered(); err != io.EOF {
		t.Fatalf("after the last message: %v, want io.EOF", err)
	}
}

// frameReader returns one frame per Read, like a mux.Stream whose peer
// wrote one message at a time. Its frames are short, so any read into
// more than the reader's wait array was a read into a held buffer.
type frameReader struct {
	frames         [][]byte
	heldDuringWait bool
}

func (f *frameReader) Read(p []byte) (int, error) {
	if len(f.frames) == 0 {
		return 0, io.EOF
	}
	if len(p) > len(reader{}.wait) {
		f.heldDuringWait = true
	}
	n := copy(p, f.frames[0])
	if f.frames[0] = f.frames[0][n:]; len(f.frames[0]) == 0 {
		f.frames = f.frames[1:]
	}
	return n, nil
}
