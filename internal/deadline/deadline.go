// Package deadline implements the deadlines of net.Conn-like types: a
// resettable point in time that closes a channel when it passes, as
// net.Pipe's pipeDeadline does.
package deadline

import (
	"sync"
	"time"
)

// Deadline is a resettable point in time that closes a channel when it
// passes. Waiters select on Wait(); moving the deadline hands out a fresh
// channel, so a timed-out operation never poisons later ones. A Deadline
// is safe for concurrent use.
type Deadline struct {
	mu      sync.Mutex
	timer   *time.Timer
	expired chan struct{} // closed when the deadline has passed
}

// New returns a Deadline that is not set.
func New() *Deadline {
	return &Deadline{expired: make(chan struct{})}
}

// Set moves the deadline to t; the zero time means no deadline.
func (d *Deadline) Set(t time.Time) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.timer != nil && !d.timer.Stop() {
		<-d.expired // the timer fired: wait until its func closed the channel
	}
	d.timer = nil

	passed := Passed(d.expired)
	if t.IsZero() {
		if passed {
			d.expired = make(chan struct{})
		}
		return
	}
	if dur := time.Until(t); dur > 0 {
		if passed {
			d.expired = make(chan struct{})
		}
		ch := d.expired
		d.timer = time.AfterFunc(dur, func() { close(ch) })
		return
	}
	if !passed {
		close(d.expired)
	}
}

// Wait returns a channel that is closed once the deadline has passed; nil,
// which never is, for a nil *Deadline.
func (d *Deadline) Wait() <-chan struct{} {
	if d == nil {
		return nil
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.expired
}

// Stop releases the timer, if any.
func (d *Deadline) Stop() {
	if d == nil {
		return
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.timer != nil {
		d.timer.Stop()
	}
}

// Passed reports whether ch, from Wait, is closed.
func Passed(ch <-chan struct{}) bool {
	select {
	case <-ch:
		return true
	default:
		return false
	}
}
