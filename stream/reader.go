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
	size, n, err := peekPrefix(ms)
	if err != nil {
		return err
	}
	if size > limit {
		return &errTooBig{size, limit}
	}
	b, err := ms.Peek(n + size)
	if len(b) < n+size {
		if err == io.EOF {
			err = io.ErrUnexpectedEOF
		}
		return err
	}
	err = proto.Unmarshal(b[n:], m)
	ms.Discard(n + size)
	return err
}

// peekPrefix decodes the varint length prefix at the start of ms without
// consuming it: the size and the prefix's length.
func peekPrefix(ms peeker) (size, n int, err error) {
	for n = 1; n <= binary.MaxVarintLen64; n++ {
		b, err := ms.Peek(n)
		if len(b) < n {
			if err == io.EOF && len(b) > 0 {
				err = io.ErrUnexpectedEOF
			}
			return 0, 0, err
		}
		if b[n-1] < 0x80 {
			v, k := protowire.ConsumeVarint(b)
			if k < 0 || v > uint64(maxInt) {
				break
			}
			return int(v), k, nil
		}
	}
	return 0, 0, fmt.Errorf("%w: malformed length prefix", errMalformed)
}

const maxInt = int(^uint(0) >> 1)

// errMalformed matches proto.Error, as protobuf's own decoding errors do.
var errMalformed = fmt.Errorf("wsplex/stream: %w", proto.Error)

func isMalformed(err error) bool { return errors.Is(err, proto.Error) }
