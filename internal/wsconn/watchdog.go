package wsconn

import (
	"sync"
	"time"
)

// watchdog ends the connection when a write made no progress for
// WriteTimeout. A write is not bounded by a socket deadline, because
// gorilla leaves a connection corrupt after a timed-out write and because
// one write may take longer than any fixed bound on a link that is slow
// but alive: the kernel wakes a blocked writer only once a third of the
// send buffer (megabytes, when autotuned) has drained. Instead, while a
// write is in progress, the watchdog looks every WriteTimeout at how many
// bytes the peer has acknowledged; when nothing was acknowledged and no
// write finished since the last look, the peer drained nothing for a whole
// WriteTimeout and the connection ends with ErrWriteTimeout.
//
// An idle connection holds no running timer: the first write after a look
// that found none in progress arms it again. Reading TCP_INFO is a system
// call, made once per arming and per look, never per write.
type watchdog struct {
	c      *Conn
	acked  func() (uint64, error)
	period time.Duration

	mu        sync.Mutex
	timer     *time.Timer
	armed     bool
	stopped   bool
	writing   int    // writes in progress
	ended     uint64 // writes finished
	lastEnded uint64 // ended at the last look
	lastAcked uint64 // bytes acknowledged at the last look
}

func newWatchdog(c *Conn, acked func() (uint64, error)) *watchdog {
	return &watchdog{c: c, acked: acked, period: c.opts.WriteTimeout}
}

// begin and end bracket a write. They do nothing on a nil watchdog.
func (w *watchdog) begin() {
	if w == nil {
		return
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	w.writing++
	if w.armed || w.stopped {
		return
	}
	w.armed = true
	w.lastEnded = w.ended
	w.lastAcked, _ = w.acked()
	if w.timer == nil {
		w.timer = time.AfterFunc(w.period, w.look)
	} else {
		w.timer.Reset(w.period)
	}
}

func (w *watchdog) end() {
	if w == nil {
		return
	}
	w.mu.Lock()
	w.writing--
	w.ended++
	w.mu.Unlock()
}

func (w *watchdog) look() {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.stopped {
		return
	}
	if w.writing == 0 || isClosed(w.c.dead) {
		w.armed = false // a write on an ended conn fails by itself
		return
	}
	acked, err := w.acked()
	if w.ended != w.lastEnded || err == nil && acked != w.lastAcked {
		w.lastEnded, w.lastAcked = w.ended, acked
		w.timer.Reset(w.period)
		return
	}
	w.stopped = true
	c := w.c
	c.log.Warn("wsplex/transport: write made no progress", "remote", c.RemoteAddr(), "for", w.period)
	c.fail(ErrWriteTimeout)
}

// stop stops the timer, waiting for a look in progress.
func (w *watchdog) stop() {
	if w == nil {
		return
	}
	w.mu.Lock()
	w.stopped = true
	if w.timer != nil {
		w.timer.Stop()
	}
	w.mu.Unlock()
}
