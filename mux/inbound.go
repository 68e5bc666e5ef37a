package mux

import (
	"io"
	"sync"
)

// inbound buffers the session's inbound byte stream, as a bufio.Reader
// would, but holds its buffer only while bytes flow: a read that may wait
// for the peer, at a frame boundary with nothing buffered, lands in a few
// bytes of its own, and the buffer goes back to a pool meanwhile. An idle
// session, the common case on a busy server, thus holds no read buffer.
// It is used only by yamux's receive goroutine.
type inbound struct {
	src      io.Reader
	buf      *[]byte // nil while nothing is buffered
	r, w     int     // unread bytes are (*buf)[r:w]
	boundary bool    // the next bytes start a frame: a wait here may last
	small    [64]byte
}

const inBufferSize = 4 << 10

var inBufs = sync.Pool{New: func() any { b := make([]byte, inBufferSize); return &b }}

// Buffered returns how many bytes can be read without waiting.
func (in *inbound) Buffered() int { return in.w - in.r }

// fill reads more bytes, waiting for at least one.
func (in *inbound) fill() error {
	if in.r == in.w && in.boundary {
		in.r, in.w = 0, 0
		if in.buf != nil {
			inBufs.Put(in.buf)
			in.buf = nil
		}
		n, err := in.src.Read(in.small[:])
		if n == 0 {
			return noProgress(err)
		}
		// An error that came with data comes again on the next read.
		in.buf = inBufs.Get().(*[]byte)
		in.w = copy(*in.buf, in.small[:n])
		return nil
	}
	if in.buf == nil {
		in.buf = inBufs.Get().(*[]byte)
	}
	if in.r > 0 {
		in.w = copy(*in.buf, (*in.buf)[in.r:in.w])
		in.r = 0
	}
	n, err := in.src.Read((*in.buf)[in.w:])
	in.w += n
	if n == 0 {
		return noProgress(err)
	}
	return nil
}

func noProgress(err error) error {
	if err == nil {
		return io.ErrNoProgress
	}
	return err
}

// PeekFrame is Peek(n) at a frame boundary, where a wait for the peer may
// last: the buffer is given back while it does.
func (in *inbound) PeekFrame(n int) ([]byte, error) {
	in.boundary = true
	defer func() { in.boundary = false }()
	return in.Peek(n)
}

// Peek returns the next n bytes, n <= inBufferSize, without consuming
// them. They are valid until the next call.
func (in *inbound) Peek(n int) ([]byte, error) {
	for in.w-in.r < n {
		if err := in.fill(); err != nil {
			return nil, err
		}
	}
	return (*in.buf)[in.r : in.r+n], nil
}

// Discard skips n bytes, reading them if needed.
func (in *inbound) Discard(n int) error {
	for n > 0 {
		if in.r == in.w {
			if err := in.fill(); err != nil {
				return err
			}
		}
		k := min(n, in.w-in.r)
		in.r += k
		n -= k
	}
	return nil
}

// Read reads into p: buffered bytes first, then, for a large p, straight
// from the source.
func (in *inbound) Read(p []byte) (int, error) {
	if in.r == in.w {
		if len(p) >= inBufferSize {
			if in.buf != nil {
				inBufs.Put(in.buf)
				in.buf = nil
				in.r, in.w = 0, 0
			}
			return in.src.Read(p)
		}
		if err := in.fill(); err != nil {
			return 0, err
		}
	}
	n := copy(p, (*in.buf)[in.r:in.w])
	in.r += n
	return n, nil
}
