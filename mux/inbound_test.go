package mux

import (
	"bytes"
	"io"
	"testing"
)

// chunkReader returns data in pieces of the sizes cuts gives, in turn.
type chunkReader struct {
	data []byte
	cuts []byte
	i    int
}

func (c *chunkReader) Read(p []byte) (int, error) {
	if len(c.data) == 0 {
		return 0, io.EOF
	}
	n := len(c.data)
	if len(c.cuts) > 0 {
		n = int(c.cuts[c.i%len(c.cuts)]) + 1
		c.i++
	}
	n = copy(p, c.data[:min(n, len(c.data))])
	c.data = c.data[n:]
	return n, nil
}

// FuzzInbound reads arbitrary bytes, arriving in arbitrary pieces, with an
// arbitrary mix of Peek, Discard and Read, and checks that every call
// returns the bytes a plain reader would, in order.
func FuzzInbound(f *testing.F) {
	f.Add(bytes.Repeat([]byte("wsplex"), 2000), []byte{0, 11, 200}, []byte{1, 2, 3, 4, 5, 0xff})
	f.Add([]byte("x"), []byte{}, []byte{0})
	f.Fuzz(func(t *testing.T, data, cuts, ops []byte) {
		in := &inbound{src: &chunkReader{data: data, cuts: cuts}}
		off := 0
		for _, op := range ops {
			n := int(op>>2)*37 + 1
			switch op & 3 {
			case 0:
				n = min(n, inBufferSize)
				peek := in.Peek
				if op&0x80 != 0 {
					peek = in.PeekFrame
				}
				b, err := peek(n)
				if off+n > len(data) {
					if err == nil {
						t.Fatalf("Peek(%d) at %d of %d: no error", n, off, len(data))
					}
					return
				}
				if err != nil || !bytes.Equal(b, data[off:off+n]) {
					t.Fatalf("Peek(%d) at %d: %q, %v", n, off, b, err)
				}
			case 1:
				err := in.Discard(n)
				if off+n > len(data) {
					if err == nil {
						t.Fatalf("Discard(%d) at %d of %d: no error", n, off, len(data))
					}
					return
				}
				if err != nil {
					t.Fatal(err)
				}
				off += n
			default:
				p := make([]byte, n*(1+int(op&1)*200))
				k, err := in.Read(p)
				if off == len(data) {
					if err == nil && k == 0 {
						t.Fatal("Read at the end: no data and no error")
					}
					return
				}
				if err != nil || k == 0 || !bytes.Equal(p[:k], data[off:off+k]) {
					t.Fatalf("Read at %d: %d bytes, %v", off, k, err)
				}
				off += k
			}
		}
	})
}

// An idle session holds no read buffer: once everything read was
// consumed, the next read that waits gives the buffer back.
func TestInboundHoldsNoBufferWhileWaiting(t *testing.T) {
	in := &inbound{src: &chunkReader{data: []byte("0123456789"), cuts: []byte{4}}}
	if _, err := in.Peek(3); err != nil || in.buf == nil {
		t.Fatalf("Peek: %v", err)
	}
	in.Discard(5)
	if _, err := in.Peek(5); err != nil {
		t.Fatal(err)
	}
	in.Discard(5)
	if _, err := in.PeekFrame(1); err != io.EOF || in.buf != nil {
		t.Fatalf("at the end: %v, buffer held: %v", err, in.buf != nil)
	}
}
