package mux

import (
	"encoding/binary"
	"net"
	"slices"
	"sync"
	"sync/atomic"
	"time"
)

// sender is a session's output: frames wait in a queue of parts, and a
// flusher goroutine, started when the queue fills and gone when it is empty,
// writes them as WebSocket messages. Consecutive parts share a message up to
// the message size, so a burst of small frames shares messages and
// syscalls, and no frame is split across messages unless it is larger than
// one (SPEC.md §3). While one batch is on the wire the next one fills.
//
// Data frames are admitted only while the queue holds less than one
// message (see reserve); small ones, and control frames (window updates,
// FINs, resets, Go Away, ping replies), go ahead of the large data frames
// queued for other streams, so a reply waits behind at most the message
// being written, however busy a bulk stream keeps the queue. A stream's
// own frames keep their order.
//
// A stream's Write returns once its frames are queued: what was queued will
// be sent, as what a net.Conn's Write hands to the kernel will be.
type sender struct {
	conn  wsConn
	limit int // message size

	mu        sync.Mutex
	parts     []*[]byte      // waiting to be written, in order
	tail      bool           // parts' last element is a small-frame buffer with room
	prio      []*[]byte      // small frames of streams with no large frame queued: written first
	bulk      map[uint32]int // streams with large frames in parts, and how many
	large     []uint32       // the stream of each large frame in parts, in order
	queued    int            // bytes in parts, plus data reservations not yet appended
	flushing  bool           // a flusher goroutine is running
	direct    bool           // a stream writes a frame itself; the flusher waits
	dhdr      header         // the header of the direct write
	dparts    [2][]byte      // the parts of the direct write, kept to save allocations
	received  atomic.Bool    // a frame arrived since this side last wrote
	waiters   []*roomWaiter  // data frames waiting for room, in turn
	idle      chan struct{}  // if not nil, closed when the flusher stops
	pings     int            // ping replies queued since the flusher last took parts
	err       error          // why writing ended; later frames are dropped
	stopping  bool           // the session is ending: what is queued leaves, nothing new is queued
	holdDelay time.Duration  // Options.HoldDelay
	holdT     *time.Timer    // flushes held frames that no stream released in time
	holdSet   bool           // holdT is running
	overflow  bool           // a control frame found maxQueued waiting
	spare     []*[]byte      // the parts slice the flusher last emptied
}

// smallFrame is the largest frame copied into a shared buffer; larger
// frames are built in a buffer of their own, outside the lock.
const smallFrame = 8 << 10

// maxQueuedPings bounds the ping replies waiting to be sent: a peer that
// pings faster than that gets no answer to the excess, instead of making
// this side queue replies without bound.
const maxQueuedPings = 16

// maxQueued bounds what waits to be written. Data frames wait for room at
// one message; control frames do not, but every one answers something the
// peer did (a stream opened, refused or read), so a peer that keeps doing
// that while it reads nothing breaks SPEC.md §3 ("keep reading"), and its
// session ends once a megabyte of answers waits.
const maxQueued = 1 << 20

func newSender(conn wsConn, limit int, holdDelay time.Duration) *sender {
	return &sender{conn: conn, limit: limit, holdDelay: holdDelay, bulk: make(map[uint32]int)}
}

// control queues a small frame (header and optional body) without waiting.
// It reports false once the session can no longer write.
func (o *sender) control(h header, body []byte) bool {
	return o.queue(h, body, true)
}

// queue is control, but it starts no flusher unless kick: the frame waits
// for a release, another frame's flush, or o.holdDelay.
func (o *sender) queue(h header, body []byte, kick bool) bool {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.err != nil || o.stopping {
		return false
	}
	if o.queued+headerSize+len(body) > maxQueued {
		o.overflow = true
		return false
	}
	o.appendSmall(h[:], body)
	o.kickOrHold(kick)
	return true
}

// kickOrHold starts the flusher if kick, and otherwise makes sure that the
// frames just held leave within o.holdDelay (Options.HoldDelay): a stream
// that was opened or accepted and then left alone still sends its SYN or
// ACK. o.mu is held.
func (o *sender) kickOrHold(kick bool) {
	switch {
	case kick:
		o.kick()
	case o.holdSet:
	case o.holdT == nil:
		o.holdSet = true
		o.holdT = time.AfterFunc(o.holdDelay, o.holdExpired)
	default:
		o.holdSet = true
		o.holdT.Reset(o.holdDelay)
	}
}

// holdExpired flushes what is held, on the timer's goroutine.
func (o *sender) holdExpired() {
	o.mu.Lock()
	o.holdSet = false
	o.mu.Unlock()
	o.release()
}

// stop makes the sender refuse new frames, and fails the data frames
// waiting for room, while what is queued still leaves: a session that ends
// sends nothing its streams do after the end began (SPEC.md §10).
func (o *sender) stop() {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.stopping = true
	o.grantRoom()
	if len(o.parts)+len(o.prio) > 0 {
		o.kick() // held frames leave before the end
	}
}

// overflowed reports whether a control frame found the queue full.
func (o *sender) overflowed() bool {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.overflow
}

// goAway queues Go Away with code, whatever the queue holds.
func (o *sender) goAway(code uint32) {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.err == nil {
		h := makeHeader(typeGoAway, 0, 0, code)
		o.appendSmall(h[:], nil)
		o.kick()
	}
}

// errOrClosed returns why the sender stopped.
func (o *sender) errOrClosed() error {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.errOrClosedLocked()
}

func (o *sender) errOrClosedLocked() error {
	if o.err != nil {
		return o.err
	}
	return net.ErrClosed
}

// ping queues the answer to a Ping, unless maxQueuedPings are waiting.
func (o *sender) ping(value uint32) {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.err != nil || o.stopping || o.pings >= maxQueuedPings {
		return
	}
	o.pings++
	h := makeHeader(typePing, flagACK, 0, value)
	o.appendSmall(h[:], nil)
	o.kick()
}

// appendSmall copies a frame into a shared buffer: one of prio, if its
// stream has no large frame queued, else the tail of parts. o.mu is held.
func (o *sender) appendSmall(hdr, body []byte) {
	n := len(hdr) + len(body)
	o.queued += n
	if id := binary.BigEndian.Uint32(hdr[4:8]); o.bulk[id] == 0 {
		if k := len(o.prio); k > 0 && len(*o.prio[k-1])+n <= cap(*o.prio[k-1]) {
			*o.prio[k-1] = append(append(*o.prio[k-1], hdr...), body...)
			return
		}
		b := getBuf(max(n, smallBufSize))
		*b = append(append((*b)[:0], hdr...), body...)
		o.prio = append(o.prio, b)
		return
	}
	if o.tail {
		b := o.parts[len(o.parts)-1]
		if len(*b)+n <= cap(*b) {
			*b = append(append(*b, hdr...), body...)
			return
		}
	}
	b := getBuf(max(n, smallBufSize))
	*b = append(append((*b)[:0], hdr...), body...)
	o.parts = append(o.parts, b)
	o.tail = n <= smallFrame
}

// reserve waits until the queue has room for a data frame of n bytes and
// reserves it, or until stop is closed (returning false). The reservation
// ends with data or cancel. Waiters get room in turn, as it frees, so a
// flush wakes only those it makes room for, not every stream writing.
func (o *sender) reserve(n int, stopChan func() <-chan struct{}, deadline <-chan struct{}) (ok bool, err error) {
	o.mu.Lock()
	if o.err != nil || o.stopping {
		err = o.errOrClosedLocked()
		o.mu.Unlock()
		return false, err
	}
	if o.queued < o.limit && len(o.waiters) == 0 || n <= smallFrame && o.queued < 2*o.limit {
		// Small frames need not wait their turn behind large ones.
		o.queued += n
		o.mu.Unlock()
		return true, nil
	}
	w := &roomWaiter{n: n, granted: make(chan struct{})}
	o.waiters = append(o.waiters, w)
	if len(o.parts)+len(o.prio) > 0 {
		o.kick() // held frames may fill the queue: only a flush makes room
	}
	o.mu.Unlock()
	var stop <-chan struct{}
	if stopChan != nil {
		stop = stopChan()
	}
	select {
	case <-w.granted:
	case <-stop:
	case <-deadline:
		err = errDeadline
	}
	o.mu.Lock()
	defer o.mu.Unlock()
	if w.ok {
		return true, nil // granted as it gave up: take it
	}
	if i := slices.Index(o.waiters, w); i >= 0 {
		o.waiters = slices.Delete(o.waiters, i, i+1)
	}
	if (o.err != nil || o.stopping) && err == nil {
		err = o.errOrClosedLocked()
	}
	return false, err
}

// roomWaiter is a data frame waiting for room in the queue.
type roomWaiter struct {
	n       int
	ok      bool          // granted: its n bytes are counted in queued
	granted chan struct{} // closed when granted, or when the sender stops
}

// grantRoom gives waiters room in turn while there is room. o.mu is held.
func (o *sender) grantRoom() {
	for len(o.waiters) > 0 && (o.err != nil || o.stopping || o.queued < o.limit) {
		w := o.waiters[0]
		o.waiters[0] = nil
		o.waiters = o.waiters[1:]
		if o.err == nil && !o.stopping {
			w.ok = true
			o.queued += w.n
		}
		close(w.granted)
	}
	if len(o.waiters) == 0 {
		o.waiters = nil
	}
}

// data queues a data frame for which n = headerSize+len(body) bytes were
// reserved, and starts the flusher if kick. Large bodies are copied
// outside the lock.
func (o *sender) data(h header, body []byte, kick bool) {
	n := headerSize + len(body)
	if n <= smallFrame {
		o.mu.Lock()
		o.queued -= n // appendSmall counts it again
		if o.err == nil && !o.stopping {
			o.appendSmall(h[:], body)
			o.kickOrHold(kick)
		}
		o.mu.Unlock()
		return
	}
	b := getBuf(n)
	*b = append(append((*b)[:0], h[:]...), body...)
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.err != nil || o.stopping {
		o.queued -= n
		putBuf(b)
		return
	}
	o.parts = append(o.parts, b)
	o.tail = false
	o.bulk[h.id()]++
	o.large = append(o.large, h.id())
	o.kickOrHold(kick)
}

// kick starts the flusher if it is not running. o.mu is held.
func (o *sender) kick() {
	if !o.flushing && !o.direct {
		o.flushing = true
		go o.flush()
	}
}

// tryDirect reports whether the caller may write a frame itself, on its
// own goroutine, instead of queueing it: when nothing is queued or being
// written, and either the frame fills most of a message or a frame arrived
// since this side last wrote. A request or a reply, as in RPC, would only
// be delayed by a hop to the flusher, and a large frame by a copy into the
// queue; a burst of smaller frames with nothing in between goes through
// the queue and shares messages. A caller that gets true must call writeDirect.
func (o *sender) tryDirect(large bool) bool {
	if !large && !o.received.Load() {
		return false
	}
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.err != nil || o.stopping || o.flushing || o.direct || len(o.parts)+len(o.prio) > 0 {
		return false
	}
	o.direct = true
	o.received.Store(false)
	return true
}

// writeDirect writes one frame on the caller's goroutine, after tryDirect.
// Frames queued meanwhile follow it.
func (o *sender) writeDirect(h header, body []byte) error {
	o.dhdr = h
	o.dparts[0], o.dparts[1] = o.dhdr[:], body
	err := o.conn.WriteMessage(o.dparts[:]...)
	o.dparts[1] = nil
	o.mu.Lock()
	defer o.mu.Unlock()
	o.direct = false
	if err != nil && o.err == nil {
		o.err = err
	}
	if len(o.parts)+len(o.prio) > 0 {
		o.kick()
	}
	o.grantRoom()
	if o.idle != nil && !o.flushing {
		close(o.idle)
		o.idle = nil
	}
	return o.err
}

// flush writes the queue until it is empty. A write failure is kept: the
// connection has ended, and later frames are dropped.
func (o *sender) flush() {
	o.mu.Lock()
	for o.writeBatch() {
	}
	o.flushed()
	o.mu.Unlock()
}

// release writes what is queued on the calling goroutine, as one batch,
// unless the flusher or a direct write is at it: a stream that held its
// frames (Stream.Hold) sends them without a hop to the flusher. What is
// queued meanwhile is left to the flusher.
func (o *sender) release() {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.flushing || o.direct || o.err != nil || len(o.parts)+len(o.prio) == 0 {
		return
	}
	o.flushing = true
	if o.writeBatch() {
		go o.flush() // it takes over o.flushing
		return
	}
	o.flushed()
}

// writeBatch writes what is queued now, releasing o.mu meanwhile, and
// reports whether more was queued since and can be written. o.mu is held.
func (o *sender) writeBatch() bool {
	if len(o.parts)+len(o.prio) == 0 || o.err != nil {
		return false
	}
	parts := append(o.prio, o.parts...)
	for _, id := range o.large { // their streams' small frames may go ahead again
		if o.bulk[id]--; o.bulk[id] == 0 {
			delete(o.bulk, id)
		}
	}
	o.large = o.large[:0]
	o.prio, o.parts, o.spare, o.tail, o.pings = nil, o.spare[:0], nil, false, 0
	for _, b := range parts {
		o.queued -= len(*b)
	}
	o.grantRoom()
	o.mu.Unlock()
	err := o.write(parts)
	for i, b := range parts {
		putBuf(b)
		parts[i] = nil
	}
	o.mu.Lock()
	if err != nil && o.err == nil {
		o.err = err
	}
	if o.spare == nil {
		o.spare = parts[:0]
	}
	return len(o.parts)+len(o.prio) > 0 && o.err == nil
}

// flushed ends a flush: it drops what a failure left queued, and wakes
// whoever waits for the queue. o.mu is held.
func (o *sender) flushed() {
	for _, b := range append(o.prio, o.parts...) { // dropped after a failure
		putBuf(b)
	}
	o.prio, o.parts, o.large = nil, nil, nil
	clear(o.bulk)
	o.flushing = false
	o.received.Store(false)
	if o.holdSet {
		// Nothing is held any more: the hold's timer would wake a goroutine
		// to find nothing to send.
		o.holdT.Stop()
		o.holdSet = false
	}
	o.grantRoom()
	if o.idle != nil && !o.direct {
		close(o.idle)
		o.idle = nil
	}
}

// write writes parts as messages of at most the message size, never
// splitting a part that fits in one.
func (o *sender) write(parts []*[]byte) error {
	var msg [][]byte
	size := 0
	for _, b := range parts {
		if size > 0 && size+len(*b) > o.limit {
			if err := o.conn.WriteMessage(msg...); err != nil {
				return err
			}
			msg, size = msg[:0], 0
		}
		msg = append(msg, *b)
		size += len(*b)
	}
	return o.conn.WriteMessage(msg...)
}

// drain waits until everything queued so far is written, writing failed, or
// the deadline passes; then it stops the sender: later frames are dropped.
func (o *sender) drain(deadline time.Time) {
	o.mu.Lock()
	if o.err == nil && len(o.parts)+len(o.prio) > 0 {
		o.kick() // held frames leave too
	}
	if (o.flushing || o.direct) && o.err == nil {
		if o.idle == nil {
			o.idle = make(chan struct{})
		}
		idle := o.idle
		o.mu.Unlock()
		t := time.NewTimer(time.Until(deadline))
		select {
		case <-idle:
		case <-t.C:
		}
		t.Stop()
		o.mu.Lock()
	}
	if o.err == nil {
		o.err = net.ErrClosed
	}
	o.grantRoom()
	if o.holdT != nil {
		o.holdT.Stop()
	}
	o.mu.Unlock()
}

// Buffers for queued frames come from pools, so an idle session holds none.
// A small buffer collects small frames; a large one holds one data frame of
// up to a message.
const smallBufSize = 16 << 10

var (
	smallBufs = sync.Pool{New: func() any { b := make([]byte, 0, smallBufSize); return &b }}
	largeBufs sync.Pool
)

func getBuf(n int) *[]byte {
	if n <= smallBufSize {
		return smallBufs.Get().(*[]byte)
	}
	if b, ok := largeBufs.Get().(*[]byte); ok && cap(*b) >= n {
		return b
	}
	b := make([]byte, 0, max(n, largeBufSize))
	return &b
}

func putBuf(b *[]byte) {
	*b = (*b)[:0]
	switch {
	case cap(*b) == smallBufSize:
		smallBufs.Put(b)
	case cap(*b) >= largeBufSize && cap(*b) <= 2*largeBufSize:
		largeBufs.Put(b)
	}
}

// largeBufSize fits a data frame of a default-sized message.
const largeBufSize = 64<<10 + 64
