package wsconn

import (
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"sync"
	"time"

	"github.com/gorilla/websocket"
)

// Conn carries a byte stream in binary WebSocket messages. Create one with
// New; it must be closed with Close. Read may be called by one goroutine
// at a time; all other methods are safe for concurrent use.
type Conn struct {
	ws   *websocket.Conn
	opts Options
	log  *slog.Logger

	// Read side. rsem is held by the one Read in progress, or by Close
	// while it reads the peer's close frame itself.
	rsem     chan struct{}
	mr       io.Reader     // the message being read; guarded by rsem
	readErr  error         // why reading ended for good; guarded by rsem
	readDone chan struct{} // closed once readErr is set

	// Write side: wsem is held by the one WriteMessage in progress. Writes
	// are bounded by wd, or where it is nil by a socket deadline.
	wsem chan struct{}
	wd   *watchdog

	ka keepalive

	dead     chan struct{} // closed once nothing more can be written
	deadErr  error         // why; written before dead closes
	deadOnce sync.Once

	closing   chan struct{} // closed when Close starts
	closeOnce sync.Once
}

// New takes ownership of ws, whose handshake is complete: the caller must
// not use ws afterwards. New starts a keepalive timer, so Close must be
// called to release it. New returns an error only for invalid options.
func New(ws *websocket.Conn, opts Options) (*Conn, error) {
	o, err := opts.WithDefaults()
	if err != nil {
		return nil, err
	}
	c := &Conn{
		ws:       ws,
		opts:     o,
		log:      o.Logger,
		rsem:     make(chan struct{}, 1),
		readDone: make(chan struct{}),
		wsem:     make(chan struct{}, 1),
		dead:     make(chan struct{}),
		closing:  make(chan struct{}),
	}
	lowerLatency(ws.NetConn())
	if acked := bytesAcked(ws.NetConn()); acked != nil {
		c.wd = newWatchdog(c, acked)
	}
	ws.SetReadLimit(o.ReadLimit)
	ws.SetPingHandler(func(data string) error {
		c.ka.seen()
		// The pong waits behind a message being written, bounded like any
		// write. If it fails, the connection has ended or its next data
		// write will say why.
		_ = c.writeControl(websocket.PongMessage, []byte(data))
		return nil
	})
	ws.SetPongHandler(func(string) error {
		c.ka.seen()
		return nil
	})
	c.ka.start(c)
	return c, nil
}

// Options returns the options in effect, with the defaults filled in.
func (c *Conn) Options() Options { return c.opts }

// LocalAddr returns the local address of the underlying connection.
func (c *Conn) LocalAddr() net.Addr { return c.ws.LocalAddr() }

// RemoteAddr returns the remote address of the underlying connection.
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

// Read reads bytes from the peer's binary messages, as one stream, on the
// caller's goroutine; pings, pongs and the close frame are handled while a
// Read is in progress, so a user of Conn keeps reading. Read returns io.EOF
// after the peer closed the connection normally (1000 or 1001),
// net.ErrClosed once Close has begun, and otherwise the error that ended
// the connection, such as a *CloseError or ErrTextMessage.
func (c *Conn) Read(p []byte) (int, error) {
	select {
	case c.rsem <- struct{}{}:
	case <-c.closing:
		return 0, net.ErrClosed
	}
	defer func() { <-c.rsem }()
	if isClosed(c.closing) {
		return 0, net.ErrClosed
	}
	c.ka.readStarted()
	defer c.ka.readEnded()
	for {
		if c.readErr != nil {
			return 0, c.readErr
		}
		if len(p) == 0 {
			return 0, nil
		}
		if c.mr == nil {
			typ, r, err := c.ws.NextReader()
			if err != nil {
				c.endRead(c.translateReadError(err))
				continue
			}
			c.ka.seen()
			if typ != websocket.BinaryMessage {
				c.endRead(c.rejectText(), false)
				continue
			}
			c.mr = r
		}
		n, err := c.mr.Read(p)
		if n > 0 {
			c.ka.seen()
		}
		if err != nil {
			c.mr = nil
			if err != io.EOF {
				c.endRead(c.translateReadError(err))
			}
		}
		if n > 0 {
			return n, nil
		}
	}
}

// endRead ends the connection once reading has failed for good. abort
// reports that gorilla sent close code 1009 and reads no more. rsem is held.
func (c *Conn) endRead(err error, abort bool) {
	c.readErr = err
	switch {
	case err == io.EOF:
		c.setDead(ErrPeerClosed)
	case isClosed(c.closing):
		c.setDead(net.ErrClosed)
	default:
		if c.setDead(err) {
			c.log.Warn("wsplex/transport: connection ended", "remote", c.RemoteAddr(), "err", err)
		}
	}
	if abort {
		// Drop what the peer still sends, so that closing the socket with
		// unread data does not reset the connection before the peer has
		// read our close code.
		nc := c.ws.NetConn()
		_ = nc.SetReadDeadline(time.Now().Add(c.opts.CloseTimeout))
		_, _ = io.Copy(io.Discard, nc)
	}
	_ = c.ws.Close()
	close(c.readDone)
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

// translateReadError turns a read error from gorilla into ours. The bool
// reports that gorilla sent close code 1009 after a message over the read
// limit, so the rest of the peer's bytes must be drained past gorilla.
func (c *Conn) translateReadError(err error) (error, bool) {
	var ce *websocket.CloseError
	switch {
	case isClosed(c.dead):
		return c.deadErr, false // we ended it (Close, keepalive, write failure)
	case errors.Is(err, websocket.ErrReadLimit):
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

// WriteMessage writes the concatenation of parts, without an intermediate
// copy, as one binary message, split into messages of at most
// Options.MessageSize bytes. It returns once the bytes are handed to the
// kernel. Calls are serialized, and pings, pongs and the close frame go
// out between frames. A failure ends the connection: WriteMessage returns
// ErrWriteTimeout when the peer drained nothing for Options.WriteTimeout
// (see the package doc), and after the end the error Err reports.
func (c *Conn) WriteMessage(parts ...[]byte) error {
	select {
	case c.wsem <- struct{}{}:
	case <-c.dead:
		return c.deadErr
	}
	defer func() { <-c.wsem }()
	if isClosed(c.dead) {
		return c.deadErr
	}
	c.wd.begin()
	err := c.writeLocked(parts)
	c.wd.end()
	if err != nil {
		var ne net.Error
		switch {
		case isClosed(c.dead):
			return c.deadErr // closed or failed meanwhile; that is the cause
		case errors.Is(err, websocket.ErrCloseSent):
			// The reader got the peer's close frame and gorilla answered
			// it: a normal end that the reader will report.
			c.setDead(ErrPeerClosed)
			return c.deadErr
		case errors.As(err, &ne) && ne.Timeout():
			// gorilla hides os.ErrDeadlineExceeded behind an error of its own.
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
	if c.wd == nil {
		if err := c.ws.SetWriteDeadline(time.Now().Add(c.opts.WriteTimeout)); err != nil {
			return err
		}
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

// writeControl writes a ping or a pong, bounded as a message is. Once
// Close has begun it writes nothing: the close frame is all the peer needs
// then, and a pong must not wait on a write that Close is ending.
func (c *Conn) writeControl(typ int, data []byte) error {
	if isClosed(c.closing) {
		return net.ErrClosed
	}
	var deadline time.Time // none: the watchdog bounds it
	if c.wd == nil {
		deadline = time.Now().Add(c.opts.WriteTimeout)
	}
	c.wd.begin()
	defer c.wd.end()
	return c.ws.WriteControl(typ, data, deadline)
}

// Close sends a close frame with code and reason (cut to fit a control
// frame), waits until deadline for the peer's close frame and closes the
// TCP connection. If no Read is in progress to see the peer's close frame,
// Close reads it itself. Close unblocks Read and WriteMessage, which return
// net.ErrClosed; a write stuck on a peer that does not read holds the close
// frame back until deadline. Close is idempotent: later calls wait for the
// first and return nil.
func (c *Conn) Close(code int, reason string, deadline time.Time) error {
	c.closeOnce.Do(func() {
		close(c.closing)
		c.ka.stop()
		if c.setDead(net.ErrClosed) {
			if len(reason) > maxCloseReason {
				reason = reason[:maxCloseReason]
			}
			msg := websocket.FormatCloseMessage(code, reason)
			_ = c.ws.WriteControl(websocket.CloseMessage, msg, deadline)
		}
		c.awaitPeerClose(deadline)
		_ = c.ws.Close()
		c.wd.stop()
		c.ka.wait()
	})
	return nil
}

// awaitPeerClose waits until the peer's close frame was read, or deadline
// passes. When no Read is in progress, it reads on its own.
func (c *Conn) awaitPeerClose(deadline time.Time) {
	t := time.NewTimer(time.Until(deadline))
	defer t.Stop()
	select {
	case <-c.readDone:
	case <-t.C:
	case c.rsem <- struct{}{}:
		// No Read is in progress, and none will start: Close began.
		if c.readErr == nil {
			_ = c.ws.SetReadDeadline(deadline)
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

// maxCloseReason is what fits in a control frame after the 2-byte code.
const maxCloseReason = 123

func isClosed(ch <-chan struct{}) bool {
	select {
	case <-ch:
		return true
	default:
		return false
	}
}
