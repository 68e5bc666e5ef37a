package mux

import "sync"

// recvBuffer holds the data a stream received and its reader has not
// consumed, in pooled chunks, so that a stream with nothing buffered holds
// no memory. It is guarded by Session.mu. Only the stream's reader (read,
// consume, peekAt) returns chunks to the pools: what peekAt returned stays
// valid until the reader's next call.
type recvBuffer struct {
	chunks []*[]byte // unread data from chunks[head], read from off
	head   int
	off    int
	n      int    // unread bytes
	peek   []byte // contiguous copy made by Peek, valid until the next read
	peekBP *[]byte
}

// Chunk sizes: small frames share a chunk, and a data frame of a
// default-sized message fits one.
const (
	smallChunk = 1 << 10
	largeChunk = 64<<10 + 64
)

var (
	smallChunks = sync.Pool{New: func() any { b := make([]byte, 0, smallChunk); return &b }}
	largeChunks = sync.Pool{New: func() any { b := make([]byte, 0, largeChunk); return &b }}
)

func getChunk(n int) *[]byte {
	if n <= smallChunk {
		return smallChunks.Get().(*[]byte)
	}
	return largeChunks.Get().(*[]byte)
}

func putChunk(b *[]byte) {
	*b = (*b)[:0]
	switch cap(*b) {
	case smallChunk:
		smallChunks.Put(b)
	case largeChunk:
		largeChunks.Put(b)
	}
}

// write appends p, copying it into the last chunk if it fits, else into a
// new chunk.
func (b *recvBuffer) write(p []byte) {
	for len(p) > 0 {
		var c *[]byte
		if k := len(b.chunks); k > b.head && cap(*b.chunks[k-1])-len(*b.chunks[k-1]) > 0 {
			c = b.chunks[k-1]
		} else {
			c = getChunk(len(p))
			b.chunks = append(b.chunks, c)
		}
		k := min(len(p), cap(*c)-len(*c))
		*c = append(*c, p[:k]...)
		p = p[k:]
		b.n += k
	}
}

// appendChunk appends a chunk filled by the caller, which gives it up.
func (b *recvBuffer) appendChunk(c *[]byte) {
	b.chunks = append(b.chunks, c)
	b.n += len(*c)
}

// read copies buffered bytes into p and consumes them.
func (b *recvBuffer) read(p []byte) int {
	b.dropPeek()
	total := 0
	for len(p) > 0 && b.n > 0 {
		c := *b.chunks[b.head]
		k := copy(p, c[b.off:])
		p = p[k:]
		total += k
		b.consume(k)
	}
	return total
}

// consume drops n buffered bytes, n <= b.n.
func (b *recvBuffer) consume(n int) {
	b.dropPeek()
	b.n -= n
	for n > 0 {
		c := b.chunks[b.head]
		k := min(n, len(*c)-b.off)
		b.off += k
		n -= k
		if b.off == len(*c) {
			b.popChunk()
		}
	}
	if b.n == 0 && len(b.chunks) > b.head {
		b.popChunk() // the last chunk may have room left, but keep no memory while idle
	}
}

func (b *recvBuffer) popChunk() {
	putChunk(b.chunks[b.head])
	b.chunks[b.head] = nil
	b.head++
	b.off = 0
	if b.head == len(b.chunks) { // keep the slice for the next data
		b.chunks, b.head = b.chunks[:0], 0
	}
}

// peekAt returns at least the first n buffered bytes, n <= b.n,
// contiguous: the rest of the first chunk if it holds them, else a copy of
// exactly n bytes that stays valid until the next read, consume or peek.
func (b *recvBuffer) peekAt(n int) []byte {
	if c := *b.chunks[b.head]; len(c)-b.off >= n {
		return c[b.off:]
	}
	b.dropPeek()
	b.peekBP = getPeekBuf(n)
	p := (*b.peekBP)[:0]
	for _, c := range b.chunks[b.head:] {
		start := 0
		if len(p) == 0 {
			start = b.off
		}
		p = append(p, (*c)[start:min(len(*c), start+n-len(p))]...)
		if len(p) == n {
			break
		}
	}
	b.peek = p
	return p
}

func (b *recvBuffer) dropPeek() {
	if b.peekBP != nil {
		putPeekBuf(b.peekBP)
		b.peekBP, b.peek = nil, nil
	}
}

// reset drops everything buffered. It may run while a reader still uses
// what Peek returned, so it leaves the chunks to the garbage collector
// instead of the pools.
func (b *recvBuffer) reset() {
	b.chunks, b.head, b.off, b.n = nil, 0, 0, 0
	b.peek, b.peekBP = nil, nil
}

// Peek buffers, for messages spanning chunks, in classes of 2 KiB to
// 4 MiB; larger ones are allocated for each peek.
const minPeek = 2 << 10

var peekBufs [12]sync.Pool

func peekClass(n int) int {
	for i := range peekBufs {
		if n <= minPeek<<i {
			return i
		}
	}
	return -1
}

func getPeekBuf(n int) *[]byte {
	i := peekClass(n)
	if i < 0 {
		b := make([]byte, 0, n)
		return &b
	}
	if b, ok := peekBufs[i].Get().(*[]byte); ok {
		return b
	}
	b := make([]byte, 0, minPeek<<i)
	return &b
}

func putPeekBuf(b *[]byte) {
	if i := peekClass(cap(*b)); i >= 0 && cap(*b) == minPeek<<i {
		*b = (*b)[:0]
		peekBufs[i].Put(b)
	}
}
