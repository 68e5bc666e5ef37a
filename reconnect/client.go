package reconnect

import (
	"context"
	"fmt"
	"log/slog"
	"net/url"
	"slices"
	"sync"
	"time"

	"github.com/wsplex/wsplex/mux"
)

// Client keeps a session to one URL up, dialing again whenever it ends.
// Get one from New. All methods are safe for concurrent use.
type Client struct {
	url   string
	opts  Options // with defaults
	log   *slog.Logger
	delay func(n int) time.Duration // the wait before retry n

	ctx       context.Context // cancelled by Close: ends dials and waits
	cancel    context.CancelFunc
	done      chan struct{} // closed when run returns
	closeOnce sync.Once

	mu      sync.Mutex
	state   State
	closed  bool
	sess    *mux.Session  // handed out by Session; nil while there is none
	lastErr error         // why the last attempt failed, until one succeeds
	changed chan struct{} // closed and replaced when sess or closed changes
}

// New returns a Client that dials rawURL (ws:// or wss://) in its own
// goroutine, at once and again whenever the session ends, until Close. It
// does not wait for a session: call Session. It returns an error for a URL
// without the ws or wss scheme and for invalid options. The Client must be
// closed.
func New(rawURL string, opts *Options) (*Client, error) {
	return newClient(rawURL, opts, nil)
}

// newClient is New with the backoff replaced by delay, if not nil.
func newClient(rawURL string, opts *Options, delay func(n int) time.Duration) (*Client, error) {
	o, err := opts.withDefaults()
	if err != nil {
		return nil, err
	}
	u, err := url.Parse(rawURL)
	if err != nil {
		return nil, fmt.Errorf("wsplex/reconnect: %w", err)
	}
	if u.Scheme != "ws" && u.Scheme != "wss" {
		return nil, fmt.Errorf("wsplex/reconnect: scheme must be ws or wss, not %q", u.Scheme)
	}
	if delay == nil {
		delay = func(n int) time.Duration { return backoff(n, o.MinDelay, o.MaxDelay) }
	}
	c := &Client{
		url:     rawURL,
		opts:    o,
		log:     o.Dial.Logger,
		delay:   delay,
		done:    make(chan struct{}),
		changed: make(chan struct{}),
	}
	c.ctx, c.cancel = context.WithCancel(context.Background())
	go c.run()
	return c, nil
}

// Session returns the current session, waiting for one if there is none.
// ctx bounds the wait only: a live session is returned even if ctx has
// ended. If ctx ends first, the error matches ctx.Err() and its text says
// why the last attempt failed. After Close, Session returns ErrClosed.
//
// The session may end at any time, as any session may; calls on it then
// fail with an error matching mux.ErrSessionClosed, and the next call to
// Session waits for its successor. Closing it ends it too, so the client
// dials again; to stop, Close the Client.
func (c *Client) Session(ctx context.Context) (*mux.Session, error) {
	for {
		c.mu.Lock()
		closed, s, changed := c.closed, c.sess, c.changed
		c.mu.Unlock()
		if closed {
			return nil, ErrClosed
		}
		if s != nil && !ended(s) {
			return s, nil
		}
		// An ended session is replaced soon, and changed closed.
		select {
		case <-changed:
		case <-ctx.Done():
			c.mu.Lock()
			last := c.lastErr
			c.mu.Unlock()
			if last != nil {
				return nil, fmt.Errorf("wsplex/reconnect: no session: %w (last error: %v)", ctx.Err(), last)
			}
			return nil, ctx.Err()
		}
	}
}

// SessionFailFast returns the current session as a caller that would
// rather fail than wait wants it, like gRPC's fail-fast calls: if the
// client is dialing, it waits for that attempt, within ctx; if the client
// has no session and waits before dialing again, it fails at once with an
// error that matches ErrNoSession and wraps why the last attempt failed.
// After Close it returns ErrClosed.
func (c *Client) SessionFailFast(ctx context.Context) (*mux.Session, error) {
	for {
		c.mu.Lock()
		closed, s, state, last, changed := c.closed, c.sess, c.state, c.lastErr, c.changed
		c.mu.Unlock()
		switch {
		case closed:
			return nil, ErrClosed
		case s != nil && !ended(s):
			return s, nil
		case state == Waiting && last == nil:
			return nil, ErrNoSession
		case state == Waiting:
			return nil, fmt.Errorf("%w: %w", ErrNoSession, last)
		}
		select {
		case <-changed:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
}

// State returns the client's state.
func (c *Client) State() State {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.state
}

// Close stops dialing, interrupting a dial or a wait under way, closes the
// current session, reports Closed to OnStateChange and waits for the
// client's goroutine to exit, and so for a hook in progress. A hook, which
// runs on that goroutine, must therefore not call Close itself: it would
// wait for itself. To stop from a hook, call go c.Close(). Close is
// idempotent and returns nil.
func (c *Client) Close() error {
	c.closeOnce.Do(func() {
		// Cancel first: the client's goroutine takes a closed client with
		// a live context for a lost session.
		c.cancel()
		c.mu.Lock()
		c.closed = true
		c.state = Closed
		c.broadcast()
		c.mu.Unlock()
	})
	<-c.done
	return nil
}

// run dials until Close: it is the client's goroutine.
func (c *Client) run() {
	defer close(c.done)
	retry := 0 // the next wait's n, for backoff
	for {
		c.setState(Connecting, nil)
		s, err := c.connect()
		if err == nil {
			start := time.Now()
			err = c.serve(s)
			if time.Since(start) >= c.opts.MaxDelay {
				retry = 0
			}
		}
		if c.ctx.Err() != nil {
			break
		}
		d := c.delay(retry)
		if retry < 64 { // the bound reached MaxDelay long before
			retry++
		}
		c.log.Warn("wsplex/reconnect: waiting to redial", "err", err, "delay", d)
		c.setState(Waiting, err)
		if !c.sleep(d) {
			break
		}
	}
	c.mu.Lock()
	c.sess = nil
	c.mu.Unlock()
	c.report(Closed, nil)
}

// connect dials and runs OnConnect.
func (c *Client) connect() (*mux.Session, error) {
	opts := c.opts.Dial
	if c.opts.BeforeDial != nil {
		opts.Header = opts.Header.Clone()
		opts.Subprotocols = slices.Clone(opts.Subprotocols)
		if err := c.opts.BeforeDial(c.ctx, &opts); err != nil {
			return nil, fmt.Errorf("wsplex/reconnect: BeforeDial: %w", err)
		}
	}
	s, err := mux.Dial(c.ctx, c.url, &opts)
	if err != nil {
		return nil, err
	}
	if c.ctx.Err() != nil {
		s.Close()
		return nil, ErrClosed
	}
	if c.opts.OnConnect == nil {
		return s, nil
	}
	// Close must not wait for a hook that waits on the session.
	stopped := make(chan struct{})
	stop := context.AfterFunc(c.ctx, func() {
		defer close(stopped)
		s.Close()
	})
	err = c.opts.OnConnect(s.Context(), s)
	if !stop() {
		<-stopped
	}
	if err != nil {
		s.Close()
		return nil, fmt.Errorf("wsplex/reconnect: OnConnect: %w", err)
	}
	return s, nil
}

// serve hands s out until it ends, and says why it did, or nil after
// Close.
func (c *Client) serve(s *mux.Session) error {
	defer s.Close()
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return nil
	}
	c.sess, c.state, c.lastErr = s, Connected, nil
	c.broadcast()
	c.mu.Unlock()
	c.log.Info("wsplex/reconnect: connected", "remote", s.RemoteAddr())
	c.report(Connected, nil)

	select {
	case <-s.Done():
	case <-c.ctx.Done():
	}
	c.mu.Lock()
	c.sess = nil
	c.broadcast()
	c.mu.Unlock()
	if c.ctx.Err() != nil {
		return nil
	}
	return fmt.Errorf("wsplex/reconnect: session ended: %w", s.Err())
}

// sleep waits d, and reports false if Close came first.
func (c *Client) sleep(d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-c.ctx.Done():
		return false
	}
}

// setState moves to st and reports it, unless Close came first.
func (c *Client) setState(st State, err error) {
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return
	}
	c.state = st
	if st == Waiting {
		c.lastErr = err
	}
	c.broadcast() // SessionFailFast waits for the state to change
	c.mu.Unlock()
	c.report(st, err)
}

func (c *Client) report(st State, err error) {
	if c.opts.OnStateChange == nil {
		return
	}
	c.opts.OnStateChange(st, err)
}

// broadcast wakes the callers of Session. c.mu is held.
func (c *Client) broadcast() {
	close(c.changed)
	c.changed = make(chan struct{})
}

func ended(s *mux.Session) bool {
	select {
	case <-s.Done():
		return true
	default:
		return false
	}
}
