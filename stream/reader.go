package stream

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"

	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"

	"github.com/wsplex/wsplex/mux"
)

// peeker is the part of *mux.Stream that messages are read with.
type peeker interface {
	Peek(n int) ([]byte, error)
	Discard(n int) int
}

var _ peeker = (*mux.Stream)(nil)

// readMessage reads one length-delimited message (SPEC.md §6.1) from ms
// into m. It waits, with mux.Stream.Peek, until the whole message has
// arrived and consumes it only then: a read error or timeout leaves the
// stream at the message's start, and the next read returns the whole
// message. Nothing is allocated for a message before its bytes arrive, so
// a length prefix alone costs nothing. The errors: io.EOF at the end of
// the input between messages; *errTooBig for a prefix over limit;
// io.ErrUnexpectedEOF for input that ends inside a message; an error
// wrapping proto.Error for a malformed prefix or message; and ms's errors.
func readMessage(ms peeker, m proto.Message, limit int) error {
	return readMessageWith(ms, limit, func(b []byte) error { return proto.Unmarshal(b, m) })
}

// readMessageWith is readMessage for a message left encoded: f gets its
// bytes, valid only during the call, and its error is returned.
func readMessageWith(ms peeker, limit int, f func([]byte) error) error {
	size, n, b, err := peekPrefix(ms)
	if err != nil {
		return err
	}
	if size > limit {
		return &errTooBig{size, limit}
	}
	if len(b) < n+size {
		b, err = ms.Peek(n + size)
		if len(b) < n+size {
			if err == io.EOF {
				err = io.ErrUnexpectedEOF
			}
			return err
		}
	}
	err = f(b[n : n+size])
	ms.Discard(n + size)
	return err
}

// peekPrefix decodes the varint length prefix at the start of ms without
// consuming it: the size, the prefix's length, and the bytes peeked, which
// often hold the whole message.
func peekPrefix(ms peeker) (size, n int, b []byte, err error) {
	want := 1
	for {
		b, err := ms.Peek(want)
		if len(b) < want {
			if err == io.EOF && len(b) > 0 {
				err = io.ErrUnexpectedEOF
			}
			return 0, 0, nil, err
		}
		v, k := protowire.ConsumeVarint(b)
		switch {
		case k > 0 && v <= uint64(maxInt):
			return int(v), k, b, nil
		case k > 0, protowire.ParseError(k) != io.ErrUnexpectedEOF, len(b) >= binary.MaxVarintLen64:
			return 0, 0, nil, fmt.Errorf("%w: malformed length prefix", errMalformed)
		}
		want = len(b) + 1
	}
}

const maxInt = int(^uint(0) >> 1)

// errMalformed matches proto.Error, as protobuf's own decoding errors do.
var errMalformed = fmt.Errorf("wsplex/stream: %w", proto.Error)

func isMalformed(err error) bool { return errors.Is(err, proto.Error) }
