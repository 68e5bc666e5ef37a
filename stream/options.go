package stream

import (
	"context"
	"log/slog"
	"time"

	"github.com/wsplex/wsplex"
)

// Options configure streams, on the opening side (through OpenOptions) and
// the accepting side (through a Router). The zero value of every field means
// its default; a nil *Options means all defaults.
type Options struct {
	// MaxMessageSize bounds a protobuf message, sent or received. Send
	// refuses a larger one; a peer sending one gets the stream reset with
	// CodeResourceExhausted. A message is read once it has arrived whole,
	// counted meanwhile in the session's receive window
	// (mux.Options.SessionWindow), which must hold it. Default 4 MiB.
	MaxMessageSize int

	// MaxHeaderSize bounds an encoded open request or response.
	// Default 16 KiB.
	MaxHeaderSize int

	// OpenTimeout is how long an accepted stream may take to deliver its
	// open request before it is reset with CodeDeadlineExceeded. Router
	// only. Default 10 s.
	OpenTimeout time.Duration

	// OnOpen, if set, is called for each stream a Router accepts, after its
	// name matched a handler and before the handler runs. An error refuses
	// the stream with its status, as CloseWithError would send it (for
	// instance wsplex.NewError(wsplex.CodePermissionDenied, ...) after checking the name and
	// metadata); otherwise the returned metadata is sent in the open
	// response. Router only.
	OnOpen func(ctx context.Context, s *Stream) (wsplex.Metadata, error)

	// Logger receives handler panics and refused streams. Router only.
	// Default: discard.
	Logger *slog.Logger
}

const (
	defaultMaxMessageSize = 4 << 20
	defaultMaxHeaderSize  = 16 << 10
	defaultOpenTimeout    = 10 * time.Second
)

func (o *Options) withDefaults() Options {
	var c Options
	if o != nil {
		c = *o
	}
	if c.MaxMessageSize <= 0 {
		c.MaxMessageSize = defaultMaxMessageSize
	}
	if c.MaxHeaderSize <= 0 {
		c.MaxHeaderSize = defaultMaxHeaderSize
	}
	if c.OpenTimeout <= 0 {
		c.OpenTimeout = defaultOpenTimeout
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	return c
}
