package wsconn

import (
	"sync"
	"sync/atomic"
	"time"

	"github.com/gorilla/websocket"
)

// keepalive pings the peer when nothing arrived for a while and ends the
// connection when nothing arrived for longer.
type keepalive struct {
	c        *Conn
	seenFlag atomic.Bool // set whenever anything arrives; the check clears it

	mu       sync.Mutex // held while the check runs
	timer    *time.Timer
	stopped  bool
	lastSeen time.Time
}

func (k *keepalive) start(c *Conn) {
	k.c = c
	if c.opts.KeepAliveInterval <= 0 {
		return
	}
	k.mu.Lock() // the timer may fire before the assignment
	k.lastSeen = time.Now()
	k.timer = time.AfterFunc(c.opts.KeepAliveInterval, k.check)
	k.mu.Unlock()
}

// seen records that something arrived from the peer.
func (k *keepalive) seen() { k.seenFlag.Store(true) }

func (k *keepalive) check() {
	k.mu.Lock()
	defer k.mu.Unlock()
	c := k.c
	if k.stopped || isClosed(c.dead) {
		return
	}
	now := time.Now()
	seen := k.seenFlag.Swap(false)
	if seen {
		k.lastSeen = now
	}
	idle := now.Sub(k.lastSeen)
	if idle >= c.opts.KeepAliveTimeout {
		c.log.Warn("wsplex/transport: keepalive timeout", "remote", c.RemoteAddr(), "idle", idle)
		c.fail(ErrKeepAliveTimeout)
		return
	}
	next := c.opts.KeepAliveInterval
	if !seen {
		// Nothing arrived since the last check: probe.
		_ = c.writeControl(websocket.PingMessage, nil)
		next = min(next, c.opts.KeepAliveTimeout-idle)
	}
	k.timer.Reset(next)
}

// stop stops the timer; a check in progress finishes first.
func (k *keepalive) stop() {
	if k.timer == nil {
		return
	}
	k.mu.Lock()
	k.stopped = true
	k.timer.Stop()
	k.mu.Unlock()
}

// wait returns once no check is running.
func (k *keepalive) wait() {}
