package transport

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gorilla/websocket"
)

// Conn is a net.Conn carried by binary WebSocket messages. Create one with
// New; it must be closed with Close. All methods are safe for concurrent use.
type Conn struct {
	ws   *websocket.Conn
	opts Options
	log  *slog.Logger

	// Read side: readLoop owns reads from ws and hands chunks to Read.
	chunks   chan *[]byte  // closed by readLoop after readErr is set
	readErr  error         // why reading ended; written before chunks closes
	readDone chan struct{} // closed when reading has ended for good
	doneOnce sync.Once     // closes readDone in DirectRead mode
	dr       io.Reader     // DirectRead: the message being read; guarded by rsem
	rsem     chan struct{} // held by the one Read in progress
	pending  *[]byte       // chunk being read; guarded by rsem
	pendOff  int           // how much of pending was read
	rdl      *deadline

	// Write side: Write queues copies on wq for writeLoop; every write to
	// ws (writeLoop, WriteFrame) holds wsem.
	wlock chan struct{} // held by the one Write in progress, and by Close from its start

	wsem       chan struct{}
	wq         chan *[]byte
	wdl        *deadline
	writerOnce sync.Once
	writerDone chan struct{}

	// seen is set whenever anything arrives from the peer; the keepalive
	// check clears it, and counts a read loop waiting on a slow consumer
	// as a sign of life too.
	seen       atomic.Bool
	delivering atomic.Bool // readLoop waits for a Read to take a chunk
	kaMu       sync.Mutex  // held while the keepalive check runs
	ka         *time.Timer
	kaStopped  bool
	kaLastSeen time.Time

	dead     chan struct{} // closed once nothing more can be written
	deadErr  error         // why; written before dead closes
	deadOnce sync.Once

	closed    chan struct{} // closed when Close starts
	closeOnce sync.Once
}

var _ net.Conn = (*Conn)(nil)

// New wraps ws, whose handshake is complete, and takes ownership of it: the
// caller must not read from or write to ws afterwards. New starts a read
// goroutine and a keepalive timer, so Close must be called to release them.
// A nil opts means defaults. New returns an error only for invalid options.
func New(ws *websocket.Conn, opts *Options) (*Conn, error) {
	o, err := opts.withDefaults()
	if err != nil {
		return nil, err
	}
	c := &Conn{
		ws:         ws,
		opts:       o,
		log:        o.Logger,
		chunks:     make(chan *[]byte, 1),
		readDone:   make(chan struct{}),
		rsem:       make(chan struct{}, 1),
		rdl:        newDeadline(),
		wlock:      make(chan struct{}, 1),
		wsem:       make(chan struct{}, 1),
		wq:         make(chan *[]byte, 1),
		wdl:        newDeadline(),
		writerDone: make(chan struct{}),
		dead:       make(chan struct{}),
		closed:     make(chan struct{}),
	}
	ws.SetReadLimit(o.ReadLimit)
	ws.SetPingHandler(func(data string) error {
		c.seen.Store(true)
		// A pong that cannot be sent now is not fatal: the peer's own
		// keepalive decides, and a dead link fails the next data write.
		_ = ws.WriteControl(websocket.PongMessage, []byte(data), time.Now().Add(o.WriteTimeout))
		return nil
	})
	ws.SetPongHandler(func(string) error {
		c.seen.Store(true)
		return nil
	})
	if !o.DirectRead {
		go c.readLoop()
	}
	if o.KeepAliveInterval > 0 {
		c.kaMu.Lock() // the timer may fire before the assignment
		c.kaLastSeen = time.Now()
		c.ka = time.AfterFunc(o.KeepAliveInterval, c.keepalive)
		c.kaMu.Unlock()
	}
	return c, nil
}

// Options returns the options in effect, with the defaults filled in.
func (c *Conn) Options() Options { return c.opts }

// LocalAddr returns the local address of the underlying TCP connection.
func (c *Conn) LocalAddr() net.Addr { return c.ws.LocalAddr() }

// RemoteAddr returns the remote address of the underlying TCP connection.
func (c *Conn) RemoteAddr() net.Addr { return c.ws.RemoteAddr() }

// Subprotocol returns the WebSocket subprotocol negotiated in the handshake.
func (c *Conn) Subprotocol() string { return c.ws.Subprotocol() }

// Done returns a channel that is closed when the connection can no longer
// send: after Close, a fatal error or the peer's closure. Err then says why.
func (c *Conn) Done() <-chan struct{} { return c.dead }

// Err returns nil while Done is open, and afterwards why the connection
// ended: net.ErrClosed after Close, ErrPeerClosed after a normal closure by
// the peer, or the error that ended it.
func (c *Conn) Err() error {
	select {
	case <-c.dead:
		return c.deadErr
	default:
		return nil
	}
}

// SetDeadline sets both the read and the write deadline.
func (c *Conn) SetDeadline(t time.Time) error {
	c.rdl.set(t)
	c.wdl.set(t)
	return nil
}

// SetReadDeadline sets the deadline for pending and future Reads. Once it
// passes, Read fails with an error matching os.ErrDeadlineExceeded; moving it
// makes the connection readable again.
func (c *Conn) SetReadDeadline(t time.Time) error {
	c.rdl.set(t)
	return nil
}

// SetWriteDeadline sets the deadline for pending and future Writes. Once it
// passes, Write fails with an error matching os.ErrDeadlineExceeded; bytes
// already queued are still sent.
func (c *Conn) SetWriteDeadline(t time.Time) error {
	c.wdl.set(t)
	return nil
}

// Read reads bytes from the peer's binary messages, as one stream.
func (c *Conn) Read(p []byte) (int, error) {
	if isClosed(c.closed) {
		return 0, c.opError("read", net.ErrClosed)
	}
	if c.opts.DirectRead {
		select {
		case c.rsem <- struct{}{}:
		case <-c.closed:
			return 0, c.opError("read", net.ErrClosed)
		}
		defer func() { <-c.rsem }()
		return c.readDirect(p)
	}
	select {
	case c.rsem <- struct{}{}:
	case <-c.rdl.wait():
		return 0, c.opError("read", os.ErrDeadlineExceeded)
	case <-c.closed:
		return 0, c.opError("read", net.ErrClosed)
	}
	defer func() { <-c.rsem }()
	if isClosed(c.rdl.wait()) {
		return 0, c.opError("read", os.ErrDeadlineExceeded)
	}
	if len(p) == 0 {
		return 0, nil
	}
	if c.pending == nil {
		select {
		case bp, ok := <-c.chunks:
			if !ok {
				return 0, c.readError()
			}
			c.pending = bp
		case <-c.rdl.wait():
			return 0, c.opError("read", os.ErrDeadlineExceeded)
		case <-c.closed:
			return 0, c.opError("read", net.ErrClosed)
		}
	}
	n := copy(p, (*c.pending)[c.pendOff:])
	c.pendOff += n
	if c.pendOff == len(*c.pending) {
		putBuf(c.pending)
		c.pending, c.pendOff = nil, 0
	}
	return n, nil
}

func (c *Conn) readError() error {
	switch err := c.readErr; {
	case err == io.EOF:
		return io.EOF
	case isClosed(c.closed):
		return c.opError("read", net.ErrClosed)
	default:
		return c.opError("read", err)
	}
}

// Write queues p to be sent in binary messages of at most
// Options.MessageSize bytes and returns once all of p is queued.
func (c *Conn) Write(p []byte) (int, error) {
	if isClosed(c.closed) {
		return 0, c.opError("write", net.ErrClosed)
	}
	select {
	case c.wlock <- struct{}{}:
	case <-c.wdl.wait():
		return 0, c.opError("write", os.ErrDeadlineExceeded)
	case <-c.closed:
		return 0, c.opError("write", net.ErrClosed)
	}
	defer func() { <-c.wlock }()
	if isClosed(c.closed) { // Close may have begun while we waited
		return 0, c.opError("write", net.ErrClosed)
	}
	if isClosed(c.wdl.wait()) {
		return 0, c.opError("write", os.ErrDeadlineExceeded)
	}
	if isClosed(c.dead) {
		return 0, c.opError("write", c.deadErr)
	}
	c.writerOnce.Do(func() { go c.writeLoop() })
	n := 0
	for n < len(p) {
		k := min(len(p)-n, c.opts.MessageSize)
		bp := getBuf(k)
		copy(*bp, p[n:n+k])
		select {
		case c.wq <- bp:
			n += k
		case <-c.wdl.wait():
			putBuf(bp)
			return n, c.opError("write", os.ErrDeadlineExceeded)
		case <-c.closed:
			putBuf(bp)
			return n, c.opError("write", net.ErrClosed)
		case <-c.dead:
			putBuf(bp)
			return n, c.opError("write", c.deadErr)
		}
	}
	return n, nil
}

// WriteFrame writes the concatenation of parts synchronously, without an
// intermediate copy, as one binary message (split every Options.MessageSize
// bytes). It is meant for framing layers such as package mux that want one
// WebSocket message per frame of their own. WriteFrame ignores the write
// deadline; it is bounded by Options.WriteTimeout, whose expiry ends the
// connection with ErrWriteTimeout. It is safe to call concurrently with Write,
// but bytes of one Write may be queued around a WriteFrame.
func (c *Conn) WriteFrame(parts ...[]byte) error {
	if isClosed(c.closed) {
		return c.opError("write", net.ErrClosed)
	}
	if err := c.writeMessage(parts...); err != nil {
		return c.opError("write", err)
	}
	return nil
}

func (c *Conn) writeLoop() {
	defer close(c.writerDone)
	for {
		select {
		case bp, ok := <-c.wq:
			if !ok {
				return // Close: all that Write queued is written
			}
			err := c.writeMessage(*bp)
			putBuf(bp)
			if err != nil {
				return
			}
		case <-c.dead:
			return
		}
	}
}

// writeMessage writes parts as messages of at most MessageSize bytes. A
// failure is fatal for the connection.
func (c *Conn) writeMessage(parts ...[]byte) error {
	select {
	case c.wsem <- struct{}{}:
	case <-c.dead:
		return c.deadErr
	}
	defer func() { <-c.wsem }()
	if isClosed(c.dead) {
		return c.deadErr
	}
	err := c.writeLocked(parts)
	if err != nil {
		switch {
		case isClosed(c.dead):
			return c.deadErr // closed or failed meanwhile; that is the cause
		case errors.Is(err, os.ErrDeadlineExceeded):
			err = ErrWriteTimeout
		default:
			err = fmt.Errorf("wsplex/transport: write: %w", err)
		}
		c.log.Warn("wsplex/transport: write failed", "remote", c.RemoteAddr(), "err", err)
		c.fail(err)
	}
	return err
}

func (c *Conn) writeLocked(parts [][]byte) error {
	if err := c.ws.SetWriteDeadline(time.Now().Add(c.opts.WriteTimeout)); err != nil {
		return err
	}
	w, err := c.ws.NextWriter(websocket.BinaryMessage)
	if err != nil {
		return err
	}
	size := 0
	for _, p := range parts {
		for len(p) > 0 {
			if size == c.opts.MessageSize {
				if err := w.Close(); err != nil {
					return err
				}
				if w, err = c.ws.NextWriter(websocket.BinaryMessage); err != nil {
					return err
				}
				size = 0
			}
			k := min(len(p), c.opts.MessageSize-size)
			if _, err := w.Write(p[:k]); err != nil {
				return err
			}
			p = p[k:]
			size += k
		}
	}
	return w.Close()
}

func (c *Conn) readLoop() {
	err, abort := c.readMessages()
	c.readErr = err
	close(c.chunks)
	c.finishRead(err, abort)
	close(c.readDone)
}

// readDirect is Read in DirectRead mode: it reads the WebSocket on the
// caller's goroutine. rsem is held.
func (c *Conn) readDirect(p []byte) (int, error) {
	for {
		if c.readErr != nil {
			return 0, c.readError()
		}
		if c.dr == nil {
			typ, r, err := c.ws.NextReader()
			if err != nil {
				c.endDirect(c.translateReadError(err))
				continue
			}
			c.seen.Store(true)
			if typ != websocket.BinaryMessage {
				c.endDirect(c.rejectText(), false)
				continue
			}
			c.dr = r
		}
		n, err := c.dr.Read(p)
		if n > 0 {
			c.seen.Store(true)
		}
		switch {
		case err == io.EOF:
			c.dr = nil
			if n == 0 {
				continue
			}
		case err != nil:
			c.dr = nil
			rerr, abort := c.translateReadError(err)
			c.endDirect(rerr, abort)
			if n == 0 {
				continue
			}
		}
		return n, nil
	}
}

func (c *Conn) endDirect(err error, abort bool) {
	c.readErr = err
	c.finishRead(err, abort)
	c.doneOnce.Do(func() { close(c.readDone) })
}

// finishRead ends the connection once reading has failed for good.
func (c *Conn) finishRead(err error, abort bool) {
	switch {
	case err == io.EOF:
		c.setDead(ErrPeerClosed)
	case isClosed(c.closed):
		c.setDead(net.ErrClosed)
	default:
		if c.setDead(err) {
			c.log.Warn("wsplex/transport: connection ended", "remote", c.RemoteAddr(), "err", err)
		}
	}
	if abort {
		// gorilla sent close code 1009 and will read no more. Drop what
		// the peer still sends, so that closing the socket with unread
		// data does not reset the connection before the peer has read
		// our close code.
		nc := c.ws.NetConn()
		_ = nc.SetReadDeadline(time.Now().Add(c.opts.CloseTimeout))
		_, _ = io.Copy(io.Discard, nc)
	}
	_ = c.ws.Close()
}

// rejectText closes the connection with 1003 after a text message and
// skips what the peer still sends until its close frame answers ours, so
// that the socket is not closed with unread data.
func (c *Conn) rejectText() error {
	c.setDead(ErrTextMessage)
	msg := websocket.FormatCloseMessage(websocket.CloseUnsupportedData, "binary messages only")
	_ = c.ws.WriteControl(websocket.CloseMessage, msg, time.Now().Add(c.opts.WriteTimeout))
	_ = c.ws.SetReadDeadline(time.Now().Add(c.opts.CloseTimeout))
	for {
		if _, _, err := c.ws.NextReader(); err != nil {
			return ErrTextMessage
		}
	}
}

// readMessages reads messages until the connection fails. abort reports
// that a close frame was sent after the peer broke the protocol and the
// rest of its bytes must be drained past gorilla.
func (c *Conn) readMessages() (err error, abort bool) {
	discard := false // Close was called: read on, but deliver nothing
	for {
		typ, r, err := c.ws.NextReader()
		if err != nil {
			return c.translateReadError(err)
		}
		c.seen.Store(true)
		if typ != websocket.BinaryMessage {
			return c.rejectText(), false
		}
		for {
			bp := getBuf(bufSize)
			n, err := io.ReadFull(r, *bp)
			*bp = (*bp)[:n]
			if n > 0 && !discard {
				c.seen.Store(true)
				select {
				case c.chunks <- bp:
					bp = nil
				default:
					// The consumer is slow; that is no sign of a dead peer.
					c.delivering.Store(true)
					select {
					case c.chunks <- bp:
						bp = nil
					case <-c.closed:
						discard = true
					}
					c.delivering.Store(false)
					c.seen.Store(true)
				}
			}
			if bp != nil {
				putBuf(bp)
			}
			if err == io.EOF || err == io.ErrUnexpectedEOF {
				break // end of this message
			}
			if err != nil {
				return c.translateReadError(err)
			}
		}
	}
}

func (c *Conn) translateReadError(err error) (error, bool) {
	var ce *websocket.CloseError
	switch {
	case isClosed(c.dead):
		return c.deadErr, false // we ended it (Close, keepalive, write failure)
	case errors.Is(err, websocket.ErrReadLimit):
		// gorilla has sent close code 1009.
		return fmt.Errorf("%w (%d bytes)", ErrMessageTooBig, c.opts.ReadLimit), true
	case errors.As(err, &ce):
		if ce.Code == websocket.CloseNormalClosure || ce.Code == websocket.CloseGoingAway {
			return io.EOF, false
		}
		return &CloseError{Code: ce.Code, Reason: ce.Text}, false
	default:
		return &CloseError{Code: closeAbnormal, Reason: err.Error()}, false
	}
}

// Close flushes queued writes, sends a close frame (1000), waits up to
// Options.CloseTimeout for the peer's close frame and closes the TCP
// connection. It unblocks every pending Read and Write. Close is idempotent:
// later calls wait for the first and return nil.
func (c *Conn) Close() error {
	return c.CloseWithCode(websocket.CloseNormalClosure, "")
}

// CloseWithCode is Close with another close code and reason, such as 1002
// (protocol error) or 1011 (internal error), for the peer to see. The
// reason is cut to fit a control frame.
func (c *Conn) CloseWithCode(code int, reason string) error {
	return c.CloseWithCodeBefore(code, reason, time.Now().Add(c.opts.CloseTimeout))
}

// CloseWithCodeBefore is CloseWithCode with the whole close bounded by
// deadline instead of Options.CloseTimeout from now: for a layer above that
// spent part of the close timeout flushing its own buffers first.
func (c *Conn) CloseWithCodeBefore(code int, reason string, deadline time.Time) error {
	if len(reason) > maxCloseReason {
		reason = reason[:maxCloseReason]
	}
	c.closeOnce.Do(func() {
		close(c.closed)
		ctx, cancel := context.WithDeadline(context.Background(), deadline)
		defer cancel()
		// Wait for a Write in progress to return, which it does at once
		// now that closed is, and keep its lock: no Write queues anything
		// from here on, so writeLoop flushes all that was reported written
		// before the close frame leaves.
		c.wlock <- struct{}{}
		close(c.wq)
		c.writerOnce.Do(func() { close(c.writerDone) })
		select {
		case <-c.writerDone:
		case <-ctx.Done():
		}
		if c.setDead(net.ErrClosed) {
			dl, _ := ctx.Deadline()
			msg := websocket.FormatCloseMessage(code, reason)
			_ = c.ws.WriteControl(websocket.CloseMessage, msg, dl)
		}
		c.awaitPeerClose(ctx)
		_ = c.ws.Close()
		if !c.opts.DirectRead {
			<-c.readDone // the read goroutine exits once the socket is closed
		}
		<-c.writerDone
		c.stopKeepAlive()
		c.rdl.stop()
		c.wdl.stop()
	})
	return nil
}

// awaitPeerClose waits until the peer's close frame was read, or ctx ends.
// In DirectRead mode nobody may be reading; then Close reads on its own.
func (c *Conn) awaitPeerClose(ctx context.Context) {
	if !c.opts.DirectRead {
		select {
		case <-c.readDone:
		case <-ctx.Done():
		}
		return
	}
	select {
	case <-c.readDone:
	case <-ctx.Done():
	case c.rsem <- struct{}{}:
		// No Read is in progress, and none will start (Close began).
		if c.readErr == nil {
			dl, _ := ctx.Deadline()
			_ = c.ws.SetReadDeadline(dl)
			for {
				if _, _, err := c.ws.NextReader(); err != nil {
					break
				}
			}
		}
		<-c.rsem
	}
}

// setDead records why the connection can no longer send. It reports whether
// this call was the first.
func (c *Conn) setDead(err error) bool {
	first := false
	c.deadOnce.Do(func() {
		c.deadErr = err
		close(c.dead)
		first = true
	})
	return first
}

// fail ends the connection at once after a fatal error.
func (c *Conn) fail(err error) {
	c.setDead(err)
	_ = c.ws.Close()
}

func (c *Conn) keepalive() {
	c.kaMu.Lock()
	defer c.kaMu.Unlock()
	if c.kaStopped || isClosed(c.dead) {
		return
	}
	now := time.Now()
	seen := c.seen.Swap(false) || c.delivering.Load()
	if seen {
		c.kaLastSeen = now
	}
	idle := now.Sub(c.kaLastSeen)
	if idle >= c.opts.KeepAliveTimeout {
		c.log.Warn("wsplex/transport: keepalive timeout", "remote", c.RemoteAddr(), "idle", idle)
		c.fail(ErrKeepAliveTimeout)
		return
	}
	next := c.opts.KeepAliveInterval
	if !seen {
		// Nothing arrived since the last check: probe.
		_ = c.ws.WriteControl(websocket.PingMessage, nil, now.Add(c.opts.WriteTimeout))
		next = min(next, c.opts.KeepAliveTimeout-idle)
	}
	c.ka.Reset(next)
}

func (c *Conn) stopKeepAlive() {
	if c.ka == nil {
		return
	}
	c.kaMu.Lock()
	c.kaStopped = true
	c.ka.Stop()
	c.kaMu.Unlock()
}

func (c *Conn) opError(op string, err error) error {
	return &net.OpError{Op: op, Net: "websocket", Source: c.LocalAddr(), Addr: c.RemoteAddr(), Err: err}
}

// maxCloseReason is what fits in a control frame after the 2-byte code.
const maxCloseReason = 123

// Buffers for queued writes and delivered reads come from a pool, so an
// idle connection holds none. They hold a default-sized message.
const bufSize = DefaultMessageSize

var bufPool = sync.Pool{New: func() any { b := make([]byte, bufSize); return &b }}

func getBuf(n int) *[]byte {
	if n > bufSize {
		b := make([]byte, n)
		return &b
	}
	bp := bufPool.Get().(*[]byte)
	*bp = (*bp)[:n]
	return bp
}

func putBuf(bp *[]byte) {
	if cap(*bp) != bufSize {
		return
	}
	*bp = (*bp)[:bufSize]
	bufPool.Put(bp)
}
