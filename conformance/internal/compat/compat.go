// Package compat reads and writes the messages a conformance runner
// exchanges with a program under test: each one prefixed with its size as
// a 32-bit big-endian integer.
package compat

import (
	"encoding/binary"
	"fmt"
	"io"
	"sync"

	"google.golang.org/protobuf/proto"
)

// maxSize bounds a message read, so that garbage cannot make us allocate
// without bound.
const maxSize = 64 << 20

// Read reads one message into msg. It returns io.EOF at a clean end.
func Read(r io.Reader, msg proto.Message) error {
	var size [4]byte
	if _, err := io.ReadFull(r, size[:]); err != nil {
		return err
	}
	n := binary.BigEndian.Uint32(size[:])
	if n > maxSize {
		return fmt.Errorf("compat: message of %d bytes", n)
	}
	b := make([]byte, n)
	if _, err := io.ReadFull(r, b); err != nil {
		return io.ErrUnexpectedEOF
	}
	return proto.Unmarshal(b, msg)
}

// Writer writes messages; it is safe for concurrent use.
type Writer struct {
	mu sync.Mutex
	w  io.Writer
}

// NewWriter returns a Writer to w.
func NewWriter(w io.Writer) *Writer { return &Writer{w: w} }

// Write writes msg.
func (w *Writer) Write(msg proto.Message) error {
	b, err := proto.Marshal(msg)
	if err != nil {
		return err
	}
	out := binary.BigEndian.AppendUint32(make([]byte, 0, 4+len(b)), uint32(len(b)))
	out = append(out, b...)
	w.mu.Lock()
	defer w.mu.Unlock()
	_, err = w.w.Write(out)
	return err
}
