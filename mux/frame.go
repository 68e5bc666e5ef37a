package mux

import (
	"encoding/binary"
	"fmt"
)

// The yamux frame layout (SPEC.md §4.1): version(1) type(1) flags(2)
// stream ID(4) length(4), big endian. Data and Reset frames carry length
// body bytes.
const (
	headerSize = 12

	typeData   byte = 0
	typeWindow byte = 1
	typePing   byte = 2
	typeGoAway byte = 3
	typeReset  byte = 4 // wsplex's own: a stream's end with a status (SPEC.md §5)

	flagSYN uint16 = 1
	flagACK uint16 = 2
	flagFIN uint16 = 4
	flagRST uint16 = 8

	goAwayNormal   uint32 = 0
	goAwayProtocol uint32 = 1

	// initialWindow is yamux's window of a new stream, in each direction.
	initialWindow = 256 << 10
)

type header [headerSize]byte

func makeHeader(typ byte, flags uint16, id, length uint32) header {
	var h header
	h[1] = typ
	binary.BigEndian.PutUint16(h[2:4], flags)
	binary.BigEndian.PutUint32(h[4:8], id)
	binary.BigEndian.PutUint32(h[8:12], length)
	return h
}

func (h *header) version() byte  { return h[0] }
func (h *header) typ() byte      { return h[1] }
func (h *header) flags() uint16  { return binary.BigEndian.Uint16(h[2:4]) }
func (h *header) id() uint32     { return binary.BigEndian.Uint32(h[4:8]) }
func (h *header) length() uint32 { return binary.BigEndian.Uint32(h[8:12]) }

func (h *header) setLength(n uint32) { binary.BigEndian.PutUint32(h[8:12], n) }

func (h *header) String() string {
	return fmt.Sprintf("version %d type %d flags %#x stream %d length %d", h.version(), h.typ(), h.flags(), h.id(), h.length())
}

// protocolError is a breach of SPEC.md by the peer that ends the session:
// Go Away with code 1 is sent, then the WebSocket is closed with 1002.
type protocolError struct{ msg string }

func (e *protocolError) Error() string { return "wsplex/mux: protocol error: " + e.msg }

func protoErrorf(format string, args ...any) error {
	return &protocolError{fmt.Sprintf(format, args...)}
}
