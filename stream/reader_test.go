package stream

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"strings"
	"testing"
	"testing/iotest"

	"google.golang.org/protobuf/encoding/protodelim"
	"google.golang.org/protobuf/proto"

	wsplexv1 "github.com/wsplex/wsplex/proto/wsplex/v1"
)

// TestReaderHoldsNoBufferBetweenMessages decodes messages of many sizes,
// delivered in pieces of every kind, and checks that the reader gives its
// buffer back whenever it has read all it buffered, so an idle stream holds
// none.
func TestReaderHoldsNoBufferBetweenMessages(t *testing.T) {
	var want []*wsplexv1.Status
	var wire bytes.Buffer
	// Messages up to the buffer are decoded in place, larger ones through
	// pooled buffers of each class, and the largest through none.
	sizes := []int{0, 1, 63, 64, 65, readBufferSize - 3, readBufferSize, readBufferSize + 1, 3 * readBufferSize,
		minBig - 3, minBig, minBig + 1, minBig << (len(bigBufs) - 1), minBig<<(len(bigBufs)-1) + 1}
	for _, size := range sizes {
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
				if err := readMessage(br, &got, 8<<20); err != nil {
					t.Fatalf("message %d: %v", i, err)
				}
				r.release()
				if !proto.Equal(&got, w) {
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

// TestLargeMessagesOwnTheirBytes receives large messages one after the
// other: each must keep its own bytes, not the pooled buffer it was read
// through, which the next message reuses.
func TestLargeMessagesOwnTheirBytes(t *testing.T) {
	var wire bytes.Buffer
	for _, c := range []byte("ab") {
		protodelim.MarshalTo(&wire, &wsplexv1.Status{Message: string(bytes.Repeat([]byte{c}, 200<<10))})
	}
	br := bufio.NewReaderSize(&wire, readBufferSize)
	var first, second wsplexv1.Status
	if err := readMessage(br, &first, 1<<20); err != nil {
		t.Fatal(err)
	}
	if err := readMessage(br, &second, 1<<20); err != nil {
		t.Fatal(err)
	}
	if strings.Trim(first.Message, "a") != "" || strings.Trim(second.Message, "b") != "" {
		t.Fatal("a message changed when the next one was read")
	}
}

// FuzzReadMessage decodes arbitrary bytes as a series of messages, through
// a small buffer so that most take the pooled path, and checks every
// result against protodelim's.
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
		ours := bufio.NewReaderSize(bytes.NewReader(data), 16)
		theirs := bufio.NewReader(bytes.NewReader(data))
		for {
			var got, want wsplexv1.Status
			err := readMessage(ours, &got, int(maxSize))
			werr := protodelim.UnmarshalOptions{MaxSize: int64(maxSize)}.UnmarshalFrom(theirs, &want)
			if (err == nil) != (werr == nil) || (err != nil && err.Error() != werr.Error()) {
				t.Fatalf("readMessage: %v; protodelim: %v", err, werr)
			}
			if err != nil {
				return
			}
			if !proto.Equal(&got, &want) {
				t.Fatalf("readMessage: %v; protodelim: %v", &got, &want)
			}
		}
	})
}

// TestReadErrorDuringPrefixIsReturned reads a message whose length prefix
// arrives with a read error between its bytes: the error must come back
// (as from a deadline), and the message must still be read afterwards.
func TestReadErrorDuringPrefixIsReturned(t *testing.T) {
	var wire bytes.Buffer
	want := &wsplexv1.Status{Message: strings.Repeat("p", 300)} // a 2-byte prefix
	protodelim.MarshalTo(&wire, want)
	br := bufio.NewReaderSize(iotest.TimeoutReader(iotest.OneByteReader(&wire)), 16)
	var got wsplexv1.Status
	if err := readMessage(br, &got, 1<<20); err != iotest.ErrTimeout {
		t.Fatalf("first read: %v, want the timeout", err)
	}
	if err := readMessage(br, &got, 1<<20); err != nil || !proto.Equal(&got, want) {
		t.Fatalf("after the timeout: %v", err)
	}
}
