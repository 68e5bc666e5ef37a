package stream

import (
	"bufio"
	"io"
	"sync"
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
