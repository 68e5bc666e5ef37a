package transport

import (
	"errors"
	"io"
	"net"
	"os"
	"sync"
	"time"

	"github.com/gorilla/websocket"

	"github.com/wsplex/wsplex/internal/deadline"
	"github.com/wsplex/wsplex/internal/wsconn"
)

// Conn is a net.Conn carried by binary WebSocket messages. Create one with
// New; it must be closed with Close. All methods are safe for concurrent use.
type Conn struct {
	wc   *wsconn.Conn
	opts Options

	// Read side: readLoop reads wc and hands chunks to Read.
	chunks   chan *[]byte  // closed by readLoop after readErr is set
	readErr  error         // why reading ended; written before chunks closes
	readDone chan struct{} // closed when readLoop has returned
	rlock    chan struct{} // held by the one Read in progress
	pending  *[]byte       // chunk being read; guarded by rlock
	pendOff  int           // how much of pending was read
	rdl      *deadline.Deadline

	// Write side: Write queues copies on wq, and writeLoop writes them.
	wlock      chan struct{} // held by the one Write in progress, and by Close from its start
	wq         chan *[]byte  // closed by Close, once no Write can queue more
	wdl        *deadline.Deadline
	writerOnce sync.Once // starts writeLoop, or stands for it in Close
	writerDone chan struct{}

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
	wc, err := wsconn.New(ws, o.wsconn())
	if err != nil {
		return nil, err
	}
	c := &Conn{
		wc:         wc,
		opts:       o,
		chunks:     make(chan *[]byte, 1),
		readDone:   make(chan struct{}),
		rlock:      make(chan struct{}, 1),
		rdl:        deadline.New(),
		wlock:      make(chan struct{}, 1),
		wq:         make(chan *[]byte, 1),
		wdl:        deadline.New(),
		writerDone: make(chan struct{}),
		closed:     make(chan struct{}),
	}
	go c.readLoop()
	return c, nil
}

// Options returns the options in effect, with the defaults filled in.
func (c *Conn) Options() Options { return c.opts }

// LocalAddr returns the local address of the underlying TCP connection.
func (c *Conn) LocalAddr() net.Addr { return c.wc.LocalAddr() }

// RemoteAddr returns the remote address of the underlying TCP connection.
func (c *Conn) RemoteAddr() net.Addr { return c.wc.RemoteAddr() }

// Subprotocol returns the WebSocket subprotocol negotiated in the handshake.
func (c *Conn) Subprotocol() string { return c.wc.Subprotocol() }

// Done returns a channel that is closed when the connection can no longer
// send: after Close, a fatal error or the peer's closure. Err then says why.
func (c *Conn) Done() <-chan struct{} { return c.wc.Done() }

// Err returns nil while Done is open, and afterwards why the connection
// ended: net.ErrClosed after Close, ErrPeerClosed after a normal closure by
// the peer, or the error that ended it.
func (c *Conn) Err() error { return c.wc.Err() }

// SetDeadline sets both the read and the write deadline.
func (c *Conn) SetDeadline(t time.Time) error {
	c.rdl.Set(t)
	c.wdl.Set(t)
	return nil
}

// SetReadDeadline sets the deadline for pending and future Reads. Once it
// passes, Read fails with an error matching os.ErrDeadlineExceeded; moving it
// makes the connection readable again.
func (c *Conn) SetReadDeadline(t time.Time) error {
	c.rdl.Set(t)
	return nil
}

// SetWriteDeadline sets the deadline for pending and future Writes. Once it
// passes, Write fails with an error matching os.ErrDeadlineExceeded; bytes
// already queued are still sent.
func (c *Conn) SetWriteDeadline(t time.Time) error {
	c.wdl.Set(t)
	return nil
}

// Read reads bytes from the peer's binary messages, as one stream. It
// returns io.EOF after the peer closed the connection normally.
func (c *Conn) Read(p []byte) (int, error) {
	if err := c.lock("read", c.rlock, c.rdl); err != nil {
		return 0, err
	}
	defer func() { <-c.rlock }()
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
		case <-c.rdl.Wait():
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
	case deadline.Passed(c.closed), errors.Is(err, net.ErrClosed):
		return c.opError("read", net.ErrClosed)
	default:
		return c.opError("read", err)
	}
}

// readLoop reads the WebSocket and hands what it reads to Read, so that a
// Read can give up at its deadline without abandoning a read of the
// WebSocket, which gorilla does not survive. After Close it delivers
// nothing more.
func (c *Conn) readLoop() {
	defer close(c.readDone)
	for {
		bp := getBuf(bufSize)
		n, err := c.wc.Read(*bp)
		*bp = (*bp)[:n]
		if n > 0 {
			select {
			case c.chunks <- bp:
				bp = nil
			case <-c.closed:
			}
		}
		if bp != nil {
			putBuf(bp)
		}
		if err != nil {
			c.readErr = err
			close(c.chunks)
			return
		}
	}
}

// Write queues p to be sent in binary messages of at most
// Options.MessageSize bytes and returns once all of p is queued. Bytes a
// Write reported as written leave before Close's close frame.
func (c *Conn) Write(p []byte) (int, error) {
	if err := c.lock("write", c.wlock, c.wdl); err != nil {
		return 0, err
	}
	defer func() { <-c.wlock }()
	if err := c.wc.Err(); err != nil {
		return 0, c.opError("write", err)
	}
	c.writerOnce.Do(func() { go c.writeLoop() })
	n := 0
	for n < len(p) {
		k := min(len(p)-n, c.opts.MessageSize)
		bp := getBuf(k)
		copy(*bp, p[n:n+k])
		var err error
		select {
		case c.wq <- bp:
			n += k
			continue
		case <-c.wdl.Wait():
			err = os.ErrDeadlineExceeded
		case <-c.closed:
			err = net.ErrClosed
		case <-c.wc.Done():
			err = c.wc.Err()
		}
		putBuf(bp)
		return n, c.opError("write", err)
	}
	return n, nil
}

// writeLoop writes what Write queues until Close closes the queue. Once
// the connection has failed, WriteMessage returns at once and the rest is
// dropped.
func (c *Conn) writeLoop() {
	defer close(c.writerDone)
	for bp := range c.wq {
		_ = c.wc.WriteMessage(*bp)
		putBuf(bp)
	}
}

// lock takes l, the lock of Read or Write, unless the deadline passes or
// Close starts first.
func (c *Conn) lock(op string, l chan struct{}, dl *deadline.Deadline) error {
	var err error
	select {
	case l <- struct{}{}:
		// Close or the deadline may have come while we waited.
		switch {
		case deadline.Passed(c.closed):
			err = net.ErrClosed
		case deadline.Passed(dl.Wait()):
			err = os.ErrDeadlineExceeded
		default:
			return nil
		}
		<-l
	case <-dl.Wait():
		err = os.ErrDeadlineExceeded
	case <-c.closed:
		err = net.ErrClosed
	}
	return c.opError(op, err)
}

// Close flushes queued writes, sends a close frame (1000), waits up to
// Options.CloseTimeout for the peer's close frame and closes the TCP
// connection. It unblocks every pending Read and Write. Close is idempotent:
// later calls wait for the first and return nil.
func (c *Conn) Close() error {
	return c.CloseWithCode(websocket.CloseNormalClosure, "")
}

// CloseWithCode is Close with another close code and reason, such as 1011
// (internal error), for the peer to see. The reason is cut to fit a
// control frame.
func (c *Conn) CloseWithCode(code int, reason string) error {
	c.closeOnce.Do(func() {
		deadline := time.Now().Add(c.opts.CloseTimeout)
		close(c.closed)
		// Wait for a Write in progress to return, which it does at once
		// now that closed is, and keep its lock: no Write queues anything
		// from here on, so writeLoop flushes all that was reported written
		// before the close frame leaves.
		c.wlock <- struct{}{}
		close(c.wq)
		c.writerOnce.Do(func() { close(c.writerDone) })
		t := time.NewTimer(time.Until(deadline))
		select {
		case <-c.writerDone:
		case <-t.C:
		}
		t.Stop()
		_ = c.wc.Close(code, reason, deadline) // unblocks writeLoop and readLoop
		<-c.writerDone
		<-c.readDone
		c.rdl.Stop()
		c.wdl.Stop()
	})
	return nil
}

func (c *Conn) opError(op string, err error) error {
	return &net.OpError{Op: op, Net: "websocket", Source: c.LocalAddr(), Addr: c.RemoteAddr(), Err: err}
}

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
