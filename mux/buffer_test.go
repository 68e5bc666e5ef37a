package mux

import (
	"bytes"
	"testing"
)

// FuzzRecvBuffer drives a stream's receive buffer with an arbitrary mix of
// small writes, whole chunks, reads, consumes and peeks, and checks it
// against a plain byte buffer, and that the memory it reports is that of
// its chunks.
func FuzzRecvBuffer(f *testing.F) {
	f.Add([]byte{0, 10, 1, 200, 2, 5, 3, 7, 4, 255, 0, 3})
	f.Add([]byte{1, 255, 1, 255, 2, 255, 3, 255})
	f.Fuzz(func(t *testing.T, ops []byte) {
		var b recvBuffer
		var model bytes.Buffer
		next := byte(0)
		data := func(n int) []byte {
			p := make([]byte, n)
			for i := range p {
				p[i] = next
				next++
			}
			return p
		}
		for i := 0; i+1 < len(ops); i += 2 {
			arg := int(ops[i+1])
			switch ops[i] % 5 {
			case 0: // a small frame, copied in
				p := data(arg*5 + 1)
				b.write(p)
				model.Write(p)
			case 1: // a large frame, in a chunk of its own
				p := data(arg*300 + 1)
				c := getChunk(len(p))
				*c = append((*c)[:0], p...)
				b.appendChunk(c)
				model.Write(p)
			case 2: // a read
				p := make([]byte, arg*7+1)
				n := b.read(p)
				want := model.Next(len(p))
				if !bytes.Equal(p[:n], want) {
					t.Fatalf("read %d bytes, want %d", n, len(want))
				}
			case 3: // a peek at n bytes, contiguous
				n := min(arg*100+1, b.len())
				if n == 0 {
					continue
				}
				var got []byte
				if first := b.first(); len(first) >= n {
					got = first[:n]
				} else {
					got = b.copyTo(nil, n)
				}
				if !bytes.Equal(got, model.Bytes()[:n]) {
					t.Fatalf("peek at %d bytes differs", n)
				}
			case 4: // a discard
				n := min(arg*13, b.len())
				b.consume(n)
				model.Next(n)
			}
			if b.len() != model.Len() {
				t.Fatalf("len %d, want %d", b.len(), model.Len())
			}
			mem := 0
			if b.q != nil {
				for _, c := range b.q.chunks[b.q.head:] {
					mem += cap(*c)
				}
			}
			if int(b.mem) != mem || (b.len() == 0) != (b.q == nil) {
				t.Fatalf("mem %d, chunks hold %d; queue %v with %d bytes", b.mem, mem, b.q != nil, b.len())
			}
		}
	})
}
