package reconnect

import (
	"context"
	"errors"
	"log/slog"
	"time"

	"github.com/wsplex/wsplex/mux"
)

// Options configure a Client. A nil *Options means all defaults.
type Options struct {
	// Dial configures every dial and the sessions it makes. Its Logger
	// (Dial.Options.Logger) also receives this client's events: a failed
	// attempt or a lost session at Warn, a new session at Info.
	Dial mux.DialOptions

	// MinDelay bounds the wait before the first retry; each retry doubles
	// the bound up to MaxDelay. Default 100 ms.
	MinDelay time.Duration

	// MaxDelay caps the bound on a wait between attempts, and is how long
	// a session must stay up for the bound to go back to MinDelay. Default
	// 30 s, or MinDelay if that is longer.
	MaxDelay time.Duration

	// BeforeDial, if set, runs before every dial with a copy of
	// Dial that it may change for that dial, such as a fresh bearer
	// token in Header or Subprotocols: a token that expires would
	// otherwise be refused on every redial. An error counts as a failed
	// attempt. It runs on the client's goroutine, like the hooks below.
	BeforeDial func(ctx context.Context, opts *mux.DialOptions) error

	// OnConnect, if set, runs on each new session before Client.Session
	// hands it out; open the application's streams here. ctx is the
	// session's context, which ends when the session does (Close ends it
	// too), and OnConnect should return when it ends. An error closes the
	// session and counts as a failed attempt: the client waits and dials
	// again. OnConnect runs on the client's goroutine, so it must not wait
	// for Client.Session, nor call Client.Close (go c.Close() is fine).
	OnConnect func(ctx context.Context, s *mux.Session) error

	// OnStateChange, if set, is told every change of state, in order, with
	// the error that caused it: nil for Connecting, Connected and Closed;
	// for Waiting, why the attempt failed or the session ended. It runs on
	// the client's goroutine and holds it up, so it must not block long nor
	// call Client.Close; to give up, for instance on a *mux.RefusedError,
	// call go c.Close().
	OnStateChange func(State, error)
}

const (
	defaultMinDelay = 100 * time.Millisecond
	defaultMaxDelay = 30 * time.Second
)

func (o *Options) withDefaults() (Options, error) {
	var c Options
	if o != nil {
		c = *o
	}
	if c.MinDelay < 0 || c.MaxDelay < 0 {
		return c, errors.New("wsplex/reconnect: negative delay")
	}
	if c.MinDelay == 0 {
		c.MinDelay = defaultMinDelay
	}
	if c.MaxDelay == 0 {
		c.MaxDelay = max(defaultMaxDelay, c.MinDelay)
	}
	if c.MaxDelay < c.MinDelay {
		return c, errors.New("wsplex/reconnect: MaxDelay below MinDelay")
	}
	// Check the session options now rather than fail every dial forever.
	if err := c.Dial.Options.Validate(); err != nil {
		return c, err
	}
	if c.Dial.Logger == nil {
		c.Dial.Logger = slog.New(slog.DiscardHandler)
	}
	return c, nil
}
