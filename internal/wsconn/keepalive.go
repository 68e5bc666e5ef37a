package wsconn

import (
	"sync"
	"sync/atomic"
	"time"

	"github.com/gorilla/websocket"
)

// keepalive pings the peer once nothing arrived for KeepAliveInterval and
// ends the connection once nothing arrived for KeepAliveTimeout. Arrivals
// are stamped as they happen, an atomic store per message, ping, pong or
// Read, and the timer is set from the last stamp, so both happen on time
// whenever the checks run. Only time spent in Read counts: while nobody
// reads, the peer cannot be heard, so Read stamps its start too.
type keepalive struct {
	c        *Conn
	epoch    time.Time    // base of lastSeen, for the monotonic clock
	lastSeen atomic.Int64 // when something last arrived, in ns since epoch
	reading  atomic.Bool  // a Read is in progress

	mu      sync.Mutex
	timer   *time.Timer
	stopped bool
	pinging sync.WaitGroup // pings being written
}

func (k *keepalive) start(c *Conn) {
	k.c = c
	k.epoch = time.Now()
	if c.opts.KeepAliveInterval <= 0 {
		return
	}
	k.mu.Lock() // the timer may fire before the assignment
	k.timer = time.AfterFunc(c.opts.KeepAliveInterval, k.check)
	k.mu.Unlock()
}

// seen records that something arrived from the peer.
func (k *keepalive) seen() { k.lastSeen.Store(int64(time.Since(k.epoch))) }

// readStarted and readEnded bracket a Read.
func (k *keepalive) readStarted() {
	k.seen()
	k.reading.Store(true)
}

func (k *keepalive) readEnded() { k.reading.Store(false) }

func (k *keepalive) check() {
	c := k.c
	interval, timeout := c.opts.KeepAliveInterval, c.opts.KeepAliveTimeout
	k.mu.Lock()
	if k.stopped || isClosed(c.dead) {
		k.mu.Unlock()
		return
	}
	if !k.reading.Load() {
		k.timer.Reset(interval) // Read stamps its start; check after it
		k.mu.Unlock()
		return
	}
	idle := time.Since(k.epoch) - time.Duration(k.lastSeen.Load())
	switch {
	case idle >= timeout:
		c.log.Warn("wsplex/transport: keepalive timeout", "remote", c.RemoteAddr(), "idle", idle)
		c.fail(ErrKeepAliveTimeout)
		k.mu.Unlock()
	case idle < interval:
		k.timer.Reset(interval - idle)
		k.mu.Unlock()
	default:
		// Probe, and check again at the next interval or at the timeout,
		// whichever comes first. The ping is written outside the lock, so
		// that a slow write holds up neither Close nor the next check.
		k.timer.Reset(min(interval, timeout-idle))
		k.pinging.Add(1)
		k.mu.Unlock()
		_ = c.writeControl(websocket.PingMessage, nil)
		k.pinging.Done()
	}
}

// stop stops the timer. Pings being written finish once the connection is
// closed; wait waits for them.
func (k *keepalive) stop() {
	k.mu.Lock()
	k.stopped = true
	if k.timer != nil {
		k.timer.Stop()
	}
	k.mu.Unlock()
}

func (k *keepalive) wait() { k.pinging.Wait() }
