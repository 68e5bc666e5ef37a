package stream

import (
	"bufio"
	"io"
	"sync"

	"google.golang.org/protobuf/encoding/protodelim"
	"google.golang.org/protobuf/proto"
)

// reader is a Stream's buffered input. protodelim wants an io.ByteReader,
// and reads a message straight out of a *bufio.Reader's buffer, so messages
// are read through one; but a server with many quiet subscribers would pay
// a buffer per stream for nothing. reader holds a pooled buffer only while
// it has unread bytes in it: waiting for the next message costs the few
// bytes of wait.
//
// reader is not safe for concurrent use; Stream.readMu guards it.
type reader struct {
	src  io.Reader     // the mux.Stream
	br   *bufio.Reader // nil while nothing is buffered
	head []byte        // bytes read while waiting, which br serves first
	wait [64]byte      // backing array of head
}

const readBufferSize = 64 << 10

var readerPool = sync.Pool{New: func() any { return bufio.NewReaderSize(nil, readBufferSize) }}

// buffered waits until input is available and returns the buffered reader
// to decode it from. The error is src's, when it has nothing to give.
func (r *reader) buffered() (*bufio.Reader, error) {
	if r.br != nil {
		return r.br, nil
	}
	n, err := r.src.Read(r.wait[:])
	if n == 0 {
		if err == nil {
			err = io.ErrNoProgress
		}
		return nil, err
	}
	// An error that came with data is dropped: src gives it again on the
	// next read, as net.Conns and mux.Stream do.
	r.head = r.wait[:n]
	r.br = readerPool.Get().(*bufio.Reader)
	r.br.Reset((*feed)(r))
	return r.br, nil
}

// holding reports whether r holds unread bytes.
func (r *reader) holding() bool { return r.br != nil }

// Read reads raw bytes: buffered ones first, then straight from src.
func (r *reader) Read(p []byte) (int, error) {
	if r.br == nil {
		return r.src.Read(p)
	}
	n, err := r.br.Read(p)
	r.release()
	return n, err
}

// release gives the buffer back once everything in it was read.
func (r *reader) release() {
	if r.br == nil || r.br.Buffered() > 0 || len(r.head) > 0 {
		return
	}
	r.br.Reset(nil)
	readerPool.Put(r.br)
	r.br = nil
}

// feed is what the bufio.Reader reads from: head, then src.
type feed reader

func (f *feed) Read(p []byte) (int, error) {
	if len(f.head) > 0 {
		n := copy(p, f.head)
		f.head = f.head[n:]
		return n, nil
	}
	return f.src.Read(p)
}

// readMessage reads one length-delimited message from br into m, as
// protodelim.UnmarshalFrom does, which it calls for every message that fits
// br's buffer (decoded in place), for a malformed or oversized prefix and
// at the end of the input. A larger message is read into a pooled buffer,
// where protodelim would allocate one for each. A read error while the
// prefix arrives is returned as it is, with nothing consumed.
func readMessage(br *bufio.Reader, m proto.Message, maxSize int) error {
	size, n, err := peekSize(br)
	if err != nil && err != io.EOF {
		return err
	}
	if n == 0 || n+size <= br.Size() || size > maxSize {
		return protodelim.UnmarshalOptions{MaxSize: int64(maxSize)}.UnmarshalFrom(br, m)
	}
	br.Discard(n)
	bp := getBig(size)
	defer putBig(bp)
	b := (*bp)[:size]
	if _, err := io.ReadFull(br, b); err != nil {
		if err == io.EOF {
			err = io.ErrUnexpectedEOF
		}
		return err
	}
	return proto.Unmarshal(b, m) // copies what it keeps out of b
}

// peekSize decodes the varint length prefix at the start of br without
// consuming it. n is its length, or 0 if it is malformed, does not fit an
// int, or could not be read (err says why).
func peekSize(br *bufio.Reader) (size, n int, err error) {
	var v uint64
	for i := range 9 { // 9 × 7 bits cover an int64
		b, err := br.Peek(i + 1)
		if err != nil {
			return 0, 0, err
		}
		c := b[i]
		v |= uint64(c&0x7f) << (7 * i)
		if c < 0x80 {
			if v > uint64(int(^uint(0)>>1)) {
				return 0, 0, nil
			}
			return int(v), i + 1, nil
		}
	}
	return 0, 0, nil
}

// Pooled buffers for messages larger than a reader's buffer, in classes
// of 128 KiB to 4 MiB (the default Options.MaxMessageSize); larger ones
// are allocated for each message.
const minBig = 128 << 10

var bigBufs [6]sync.Pool

func bigClass(n int) int {
	for i := range bigBufs {
		if n <= minBig<<i {
			return i
		}
	}
	return -1
}

func getBig(n int) *[]byte {
	i := bigClass(n)
	if i < 0 {
		b := make([]byte, n)
		return &b
	}
	if bp, ok := bigBufs[i].Get().(*[]byte); ok {
		return bp
	}
	b := make([]byte, minBig<<i)
	return &b
}

func putBig(bp *[]byte) {
	if i := bigClass(cap(*bp)); i >= 0 && cap(*bp) == minBig<<i {
		bigBufs[i].Put(bp)
	}
}
