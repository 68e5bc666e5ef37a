package mux

import "sync"

// recvBuffer holds the data a stream received and its reader has not
// consumed, in pooled chunks, so that a stream with nothing buffered holds
// no memory. It is guarded by Session.mu. Only the stream's reader (read,
// consume) returns chunks to the pools: what Stream.Peek returned stays
// valid until the reader's next call.
type recvBuffer struct {
	q      *chunkQueue // nil while nothing is buffered
	n, mem uint32      // unread bytes; the chunks' capacity, the memory held
}

// chunkQueue holds a buffer's chunks: unread data from chunks[head], read
// from off. Queues are pooled, so that an idle stream holds not even its
// list of chunks.
type chunkQueue struct {
	chunks    []*[]byte
	head, off int
}

var queues = sync.Pool{New: func() any { return new(chunkQueue) }}

// queue returns b.q, taking one from the pool if needed.
func (b *recvBuffer) queue() *chunkQueue {
	if b.q == nil {
		b.q = queues.Get().(*chunkQueue)
	}
	return b.q
}

// len returns how many bytes are buffered.
func (b *recvBuffer) len() int { return int(b.n) }

// Chunk sizes: powers of two from 1 KiB, and one that fits a data frame of
// a default-sized message. A body gets the smallest that holds it, so a
// stream's chunks hold less than twice its data, and small bodies share
// one: a peer sending many small frames cannot make a stream hold much
// more memory than data.
const (
	smallChunk = 1 << 10
	largeChunk = 64<<10 + 64
)

var chunkSizes = [...]int{1 << 10, 2 << 10, 4 << 10, 8 << 10, 16 << 10, 32 << 10, largeChunk}

var chunks [len(chunkSizes)]sync.Pool

// chunkClass returns the index of the smallest chunk size that holds n
// bytes, or of the largest.
func chunkClass(n int) int {
	for i, size := range chunkSizes {
		if n <= size {
			return i
		}
	}
	return len(chunkSizes) - 1
}

// chunkCost returns the memory a body of n bytes may take in new chunks.
func chunkCost(n int) int {
	cost := 0
	for ; n > largeChunk; n -= largeChunk {
		cost += largeChunk
	}
	return cost + chunkSizes[chunkClass(n)]
}

// getChunk returns an empty chunk that holds n bytes, or largeChunk if n
// is larger.
func getChunk(n int) *[]byte {
	i := chunkClass(n)
	if b, ok := chunks[i].Get().(*[]byte); ok {
		return b
	}
	b := make([]byte, 0, chunkSizes[i])
	return &b
}

func putChunk(b *[]byte) {
	*b = (*b)[:0]
	if i := chunkClass(cap(*b)); chunkSizes[i] == cap(*b) {
		chunks[i].Put(b)
	}
}

// write appends p, copying it into the last chunk if it fits, else into a
// new chunk.
func (b *recvBuffer) write(p []byte) {
	q := b.queue()
	for len(p) > 0 {
		var c *[]byte
		if k := len(q.chunks); k > q.head && cap(*q.chunks[k-1])-len(*q.chunks[k-1]) > 0 {
			c = q.chunks[k-1]
		} else {
			c = getChunk(len(p))
			q.chunks = append(q.chunks, c)
			b.mem += uint32(cap(*c))
		}
		k := min(len(p), cap(*c)-len(*c))
		*c = append(*c, p[:k]...)
		p = p[k:]
		b.n += uint32(k)
	}
}

// appendChunk appends a chunk filled by the caller, which gives it up.
func (b *recvBuffer) appendChunk(c *[]byte) {
	q := b.queue()
	q.chunks = append(q.chunks, c)
	b.n += uint32(len(*c))
	b.mem += uint32(cap(*c))
}

// first returns the unread bytes of the first chunk.
func (b *recvBuffer) first() []byte {
	if b.n == 0 {
		return nil
	}
	return (*b.q.chunks[b.q.head])[b.q.off:]
}

// read copies buffered bytes into p and consumes them.
func (b *recvBuffer) read(p []byte) int {
	total := 0
	for len(p) > 0 && b.n > 0 {
		k := copy(p, b.first())
		p = p[k:]
		total += k
		b.consume(k)
	}
	return total
}

// copyTo appends the first n buffered bytes, n <= b.len(), to dst.
func (b *recvBuffer) copyTo(dst []byte, n int) []byte {
	off := b.q.off
	for _, c := range b.q.chunks[b.q.head:] {
		k := min(len(*c)-off, n)
		dst = append(dst, (*c)[off:off+k]...)
		n -= k
		off = 0
		if n == 0 {
			break
		}
	}
	return dst
}

// consume drops n buffered bytes, n <= b.len(). A buffer left empty gives
// its chunks and queue back to their pools.
func (b *recvBuffer) consume(n int) {
	if n == 0 {
		return
	}
	b.n -= uint32(n)
	q := b.q
	for n > 0 {
		c := q.chunks[q.head]
		k := min(n, len(*c)-q.off)
		q.off += k
		n -= k
		if q.off == len(*c) {
			b.popChunk()
		}
	}
	if b.n == 0 {
		for q.head < len(q.chunks) {
			b.popChunk() // the last chunk may have room left, but keep no memory while idle
		}
		q.chunks, q.head, q.off = q.chunks[:0], 0, 0
		queues.Put(q)
		b.q = nil
	}
}

func (b *recvBuffer) popChunk() {
	q := b.q
	b.mem -= uint32(cap(*q.chunks[q.head]))
	putChunk(q.chunks[q.head])
	q.chunks[q.head] = nil
	q.head++
	q.off = 0
}

// reset drops everything buffered. It may run while a reader still uses
// what Peek returned, so it leaves the chunks to the garbage collector
// instead of the pools.
func (b *recvBuffer) reset() {
	b.q, b.n, b.mem = nil, 0, 0
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
