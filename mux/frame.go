package mux

import (
	"encoding/binary"
	"fmt"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gorilla/websocket"
	"google.golang.org/protobuf/proto"

	"github.com/wsplex/wsplex/internal/wsconn"
	wsplexv1 "github.com/wsplex/wsplex/proto/wsplex/v1"
)

// yamux frame layout (hashicorp/yamux spec.md): version(1) type(1) flags(2)
// stream ID(4) length(4), big endian. Data frames carry length body bytes.
const (
	headerSize     = 12
	typeData       = 0
	typeWindow     = 1
	typeGoAway     = 3
	flagSYN        = 1
	flagFIN        = 4
	flagRST        = 8
	maxResetReason = 4 << 10
)

type header [headerSize]byte

func (h *header) typ() byte      { return h[1] }
func (h *header) flags() uint16  { return binary.BigEndian.Uint16(h[2:4]) }
func (h *header) id() uint32     { return binary.BigEndian.Uint32(h[4:8]) }
func (h *header) length() uint32 { return binary.BigEndian.Uint32(h[8:12]) }

// frameConn sits between yamux and the transport. It knows yamux's frame
// layout, which buys three things:
//   - each yamux frame (header and body, written by yamux in two calls)
//     leaves whole, never split at a call boundary, and a burst of small
//     frames leaves in shared messages (see send);
//   - it follows every stream's lifetime (SYN, FIN, RST in both
//     directions), so resets can be routed to streams;
//   - it carries wsplex's reset frame (a Data frame with the RST flag whose
//     body is a wsplexv1.Status), which it removes from the inbound byte
//     stream before yamux sees it. yamux itself has no reset with a reason.
type frameConn struct {
	conn    *wsconn.Conn
	onClose func() // called once Close has closed the transport

	// Outbound. yamux's send goroutine hands over frames with Write (see
	// send for which are written at once and which are batched). A batch
	// is written by a flusher goroutine, started when a batch begins and
	// gone when none is left: while one batch is on the wire the next one
	// fills, so a burst of small frames shares messages and syscalls, and
	// yamux, whose stream writes wait for its send goroutine, does not wait
	// for the syscall. An idle session holds neither goroutine nor buffer.
	wmu      sync.Mutex // guards the fields below, except received
	wcond    sync.Cond  // signalled when a batch is taken or a write ends
	pending  *header    // a data frame header waiting for its body
	hdrBuf   header
	batch    *[]byte     // frames not yet taken by the flusher; nil when none
	flushing bool        // a flusher goroutine is running
	direct   bool        // a caller is writing a frame itself
	werr     error       // the first write failure: later writes return it
	limit    int         // batch size at which Write waits for the flusher
	directs  int         // frames written by their callers, for tests
	batches  int         // batches written by the flusher, for tests
	received atomic.Bool // a frame arrived since this side last wrote one

	closeTimeout time.Duration // bounds how long Close waits for the flusher

	// Inbound parse state, used only by Read (yamux's receive goroutine).
	hold        [headerSize]byte // a partial header carried to the next Read
	nhold       int
	bodyLeft    uint32 // body bytes of a data frame still to pass through
	captureLeft uint32 // body bytes of a reset frame still to capture
	captureID   uint32
	capture     []byte
	broken      bool // the peer broke the frame layout; pass bytes blindly

	mu          sync.Mutex // guards streams, their Stream.frame bits, and protoErr
	streams     map[uint32]*Stream
	peerStreams int   // entries of streams the peer opened
	protoErr    error // why the peer broke the protocol, for Close and Session.Err
}

// A Stream's frame-layer state, in Stream.frame, guarded by frameConn.mu.
// Streams are tracked from SYN until both FINs or a RST: the frame layer
// makes the Stream when it sees the SYN, and Open or Accept adopts it, so
// that a reset arriving before then is kept with it.
const (
	localFIN   uint8 = 1 << iota // this side sent its FIN
	remoteFIN                    // the peer sent its FIN
	peerOpened                   // the peer sent the SYN
)

func newFrameConn(c *wsconn.Conn, messageSize int, closeTimeout time.Duration) *frameConn {
	f := &frameConn{conn: c, streams: make(map[uint32]*Stream), limit: messageSize, closeTimeout: closeTimeout}
	f.wcond.L = &f.wmu
	return f
}

// Close closes the transport, with close code 1002 after a protocol error.
// yamux calls it exactly once, when the session shuts down for any reason.
func (f *frameConn) Close() error {
	deadline := time.Now().Add(f.closeTimeout)
	f.drain(deadline)
	var err error
	if perr := f.protocolError(); perr != nil {
		err = f.conn.Close(closeProtocolError, perr.Error(), deadline)
	} else {
		err = f.conn.Close(websocket.CloseNormalClosure, "", deadline)
	}
	if f.onClose != nil {
		f.onClose()
	}
	return err
}

func (f *frameConn) setProtocolError(err error) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.protoErr == nil {
		f.protoErr = err
	}
	return err
}

func (f *frameConn) protocolError() error {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.protoErr
}

const closeProtocolError = 1002

// Write receives yamux's output: a 12-byte header, then for data frames the
// body in a second call.
func (f *frameConn) Write(p []byte) (int, error) {
	f.wmu.Lock()
	defer f.wmu.Unlock()
	if f.pending != nil {
		// The body; were it not the length the header gives, the byte
		// stream would still be intact.
		h := f.pending
		f.pending = nil
		return len(p), f.send(h[:], p)
	}
	if len(p) != headerSize {
		return len(p), f.send(p, nil)
	}
	copy(f.hdrBuf[:], p)
	h := &f.hdrBuf
	f.track(h, false)
	if h.typ() == typeData && h.length() > 0 {
		f.pending = h
		return len(p), nil
	}
	return len(p), f.send(p, nil)
}

// send writes a frame, a header and a body that may be empty. Frames go
// out in order, one write on the wire at a time. When no batch is being
// written, a frame is written at once, on the caller's goroutine, if the
// peer has sent something since this side last wrote: a request or a
// reply, as in RPC, which a hop to another goroutine would only delay. A
// frame that follows this side's own last one with nothing received in
// between is part of a burst, and so is any frame while a batch is being
// written: it is appended to the batch, which the flusher writes while the
// next frames arrive, so they share messages and syscalls. A batch never
// holds more than one message, so no frame in it is split across two; a
// frame larger than that is never copied into a batch but written by the
// caller once the batches before it are out. wmu is held.
func (f *frameConn) send(hdr, body []byte) error {
	n := len(hdr) + len(body)
	for {
		if f.werr != nil {
			return f.werr
		}
		switch {
		case f.direct:
			f.wcond.Wait()
		case !f.flushing && (n > f.limit || f.received.Swap(false)):
			return f.writeDirect(hdr, body)
		case n > f.limit, f.batch != nil && len(*f.batch)+n > f.limit:
			f.wcond.Wait()
		default:
			if f.batch == nil {
				f.batch = batchPool.Get().(*[]byte)
			}
			f.received.Store(false)
			*f.batch = append(append(*f.batch, hdr...), body...)
			if !f.flushing {
				f.flushing = true
				go f.flush()
			}
			return nil
		}
	}
}

// write writes parts as WebSocket messages. wmu is held on entry and
// exit, but not during the write.
func (f *frameConn) write(parts ...[]byte) error {
	f.wmu.Unlock()
	err := f.conn.WriteMessage(parts...)
	f.wmu.Lock()
	if err != nil && f.werr == nil {
		f.werr = err
	}
	return err
}

// writeDirect writes a frame on the caller's goroutine. wmu is held.
func (f *frameConn) writeDirect(hdr, body []byte) error {
	f.directs++
	f.direct = true
	err := f.write(hdr, body)
	f.direct = false
	f.wcond.Broadcast()
	return err
}

// flush writes batches until none is left. A write failure is kept for
// later writes to return; the transport has ended the connection by then.
func (f *frameConn) flush() {
	f.wmu.Lock()
	defer f.wmu.Unlock()
	for f.batch != nil && f.werr == nil {
		b := f.batch
		f.batch = nil
		f.wcond.Broadcast()
		f.batches++
		f.write(*b)
		putBatch(b)
	}
	if f.batch != nil {
		putBatch(f.batch)
		f.batch = nil
	}
	f.flushing = false
	f.wcond.Broadcast()
}

// drain waits until the frames written so far are on the wire, the
// connection failed, or the deadline passed: Close flushes what yamux
// wrote before it, as closing a TCP socket does, but a stuck peer cannot
// hold it past the close timeout, which drain and the transport's closing
// handshake share. Writes after drain fail with net.ErrClosed.
func (f *frameConn) drain(deadline time.Time) {
	expired := false
	t := time.AfterFunc(time.Until(deadline), func() {
		f.wmu.Lock()
		expired = true
		f.wcond.Broadcast()
		f.wmu.Unlock()
	})
	defer t.Stop()
	f.wmu.Lock()
	defer f.wmu.Unlock()
	for (f.flushing || f.direct) && f.werr == nil && !expired {
		f.wcond.Wait()
	}
	if f.werr == nil {
		f.werr = net.ErrClosed
	}
}

// batchPool holds batch buffers. A batch holds at most the limit, one
// message; not more, so that a reply queued behind a bulk stream's batch
// waits for at most one message: four messages doubled the p99 of
// BenchmarkHeadOfLine.
var batchPool = sync.Pool{New: func() any { b := make([]byte, 0, wsconn.DefaultMessageSize); return &b }}

func putBatch(b *[]byte) {
	*b = (*b)[:0]
	batchPool.Put(b)
}

// writeReset sends wsplex's reset frame for stream id.
func (f *frameConn) writeReset(id uint32, st *wsplexv1.Status) error {
	// proto3 strings must be valid UTF-8, or Marshal fails and the peer
	// would see a FIN alone: a clean end instead of the status.
	msg := strings.ToValidUTF8(st.Message, "\uFFFD")
	if len(msg) > maxResetReason-16 {
		msg = strings.ToValidUTF8(msg[:maxResetReason-16], "") + "..."
	}
	body, err := proto.Marshal(&wsplexv1.Status{Code: st.Code, Message: msg})
	if err != nil {
		return err
	}
	var h header
	h[1] = typeData
	binary.BigEndian.PutUint16(h[2:4], flagRST)
	binary.BigEndian.PutUint32(h[4:8], id)
	binary.BigEndian.PutUint32(h[8:12], uint32(len(body)))
	f.wmu.Lock()
	defer f.wmu.Unlock()
	return f.send(h[:], body)
}

// Read gives yamux the inbound byte stream minus wsplex reset frames, whose
// reasons it hands to the streams.
func (f *frameConn) Read(p []byte) (int, error) {
	if len(p) < headerSize && f.bodyLeft == 0 && f.captureLeft == 0 {
		// yamux reads headers through a 4 KiB bufio.Reader, so this does
		// not happen; a header must reach scan whole.
		return 0, fmt.Errorf("wsplex/mux: read buffer of %d bytes is shorter than a frame header", len(p))
	}
	for {
		n := 0
		if f.nhold > 0 {
			n = copy(p, f.hold[:f.nhold])
			copy(f.hold[:], f.hold[n:f.nhold])
			f.nhold -= n
		}
		var err error
		if n < len(p) && f.nhold == 0 {
			var m int
			m, err = f.conn.Read(p[n:])
			n += m
		}
		out, perr := f.scan(p[:n])
		if perr != nil {
			return 0, perr
		}
		if out > 0 {
			f.received.Store(true)
		}
		if out > 0 || err != nil {
			return out, err
		}
	}
}

// scan parses buf in place, removes reset frames and holds back a trailing
// partial header. It returns how many bytes of buf are left for yamux.
func (f *frameConn) scan(buf []byte) (int, error) {
	if f.broken {
		return len(buf), nil
	}
	w, i := 0, 0
	for i < len(buf) {
		switch {
		case f.captureLeft > 0:
			k := min(int(f.captureLeft), len(buf)-i)
			f.capture = append(f.capture, buf[i:i+k]...)
			i += k
			f.captureLeft -= uint32(k)
			if f.captureLeft == 0 {
				f.deliverReset(f.captureID, f.capture)
				f.capture = f.capture[:0]
			}
		case f.bodyLeft > 0:
			k := min(int(f.bodyLeft), len(buf)-i)
			if w != i {
				copy(buf[w:], buf[i:i+k])
			}
			w += k
			i += k
			f.bodyLeft -= uint32(k)
		case len(buf)-i < headerSize:
			f.nhold = copy(f.hold[:], buf[i:])
			i = len(buf)
		default:
			var h header
			copy(h[:], buf[i:i+headerSize])
			if h[0] != 0 || h.typ() > typeGoAway {
				// Let yamux reject it and end the session.
				f.broken = true
				bad := append([]byte(nil), h[:]...) // h itself stays on the stack
				f.setProtocolError(fmt.Errorf("wsplex/mux: protocol error: invalid frame header %x", bad))
				n := copy(buf[w:], buf[i:])
				return w + n, nil
			}
			if h.typ() == typeData && h.flags()&flagRST != 0 {
				if h.length() > maxResetReason {
					return 0, f.setProtocolError(fmt.Errorf("wsplex/mux: protocol error: reset frame for stream %d has a %d-byte reason, over the %d-byte limit",
						h.id(), h.length(), maxResetReason))
				}
				i += headerSize
				if h.length() == 0 {
					f.deliverReset(h.id(), nil)
				} else {
					f.captureID, f.captureLeft = h.id(), h.length()
				}
				continue
			}
			f.track(&h, true)
			if w != i {
				copy(buf[w:], h[:])
			}
			w += headerSize
			i += headerSize
			if h.typ() == typeData {
				f.bodyLeft = h.length()
			}
		}
	}
	return w, nil
}

// track follows stream lifetimes from frame flags in either direction.
func (f *frameConn) track(h *header, inbound bool) {
	fl := h.flags()
	if fl&(flagSYN|flagFIN|flagRST) == 0 || h.typ() > typeWindow {
		return
	}
	id := h.id()
	f.mu.Lock()
	defer f.mu.Unlock()
	st := f.streams[id]
	if fl&flagSYN != 0 && st == nil {
		st = &Stream{id: id}
		if inbound {
			st.frame = peerOpened
			f.peerStreams++
		}
		f.streams[id] = st
	}
	if st == nil {
		return
	}
	if fl&flagRST != 0 {
		f.forget(id, st) // yamux's own reset: the stream is gone
		return
	}
	if fl&flagFIN != 0 {
		if inbound {
			st.frame |= remoteFIN
		} else {
			st.frame |= localFIN
		}
		if st.frame&(localFIN|remoteFIN) == localFIN|remoteFIN {
			f.forget(id, st)
		}
	}
}

// forget drops a finished stream. f.mu is held.
func (f *frameConn) forget(id uint32, st *Stream) {
	delete(f.streams, id)
	if st.frame&peerOpened != 0 {
		f.peerStreams--
	}
}

// peerOpenStreams returns how many streams the peer opened that yamux still
// holds: accepted or not, closed locally or not, until both halves ended.
func (f *frameConn) peerOpenStreams() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.peerStreams
}

// deliverReset runs on yamux's receive goroutine, so it must not block.
func (f *frameConn) deliverReset(id uint32, reason []byte) {
	var st wsplexv1.Status
	rerr := &ResetError{Code: wsplexv1.Code_CODE_UNKNOWN, Remote: true}
	if err := proto.Unmarshal(reason, &st); err != nil {
		rerr.Message = "malformed reset reason: " + err.Error()
	} else {
		rerr.Code, rerr.Message = st.Code, st.Message
	}
	f.mu.Lock()
	s := f.streams[id]
	f.mu.Unlock()
	if s != nil {
		s.peerReset(rerr)
	}
}

// remoteFIN reports whether the peer ended its half of stream id. A stream
// whose both halves ended is no longer tracked and reports true.
func (f *frameConn) remoteFIN(id uint32) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	st := f.streams[id]
	return st == nil || st.frame&remoteFIN != 0
}

// adopt returns the Stream tracked for id since its SYN, or a new one if
// it is no longer tracked (a RST came already).
func (f *frameConn) adopt(id uint32) *Stream {
	f.mu.Lock()
	defer f.mu.Unlock()
	if s := f.streams[id]; s != nil {
		return s
	}
	return &Stream{id: id}
}
