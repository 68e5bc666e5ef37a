package transport

import (
	"log/slog"
	"time"

	"github.com/wsplex/wsplex/internal/wsconn"
)

// Options configure a Conn. The zero value of every field means its default;
// a nil *Options means all defaults.
type Options struct {
	// MessageSize is the largest payload of one outgoing WebSocket message;
	// longer writes are split. Proxies cap message sizes (AWS API Gateway at
	// 128 KB, Cloudflare at 1 MiB). Default DefaultMessageSize.
	MessageSize int

	// ReadLimit is the largest incoming message accepted. A larger one
	// closes the connection with code 1009 and ErrMessageTooBig. Incoming
	// messages are streamed, so this bounds protocol abuse, not memory.
	// Default 1 MiB.
	ReadLimit int64

	// KeepAliveInterval is how long nothing may arrive from the peer before
	// it is pinged. Default 15 s; negative disables keepalive.
	KeepAliveInterval time.Duration

	// KeepAliveTimeout is how long nothing may arrive from the peer before
	// the connection is closed with ErrKeepAliveTimeout. Default three times
	// KeepAliveInterval.
	KeepAliveTimeout time.Duration

	// WriteTimeout is how long sending may go on while the peer drains
	// nothing before the connection ends with ErrWriteTimeout; where the
	// peer's progress cannot be seen, how long one message (or ping, or
	// pong) may take. See Liveness in the package doc. Default 10 s.
	WriteTimeout time.Duration

	// CloseTimeout bounds Close: flushing queued writes and waiting for the
	// peer's close frame. Default 5 s.
	CloseTimeout time.Duration

	// Logger receives connection events. Default: discard.
	Logger *slog.Logger
}

// DefaultMessageSize is the default of Options.MessageSize: 64 KiB, and 64
// bytes for the headers that ride with 64 KiB of data (a yamux frame
// header, a protobuf length prefix), so that writes of 64 KiB, or of a
// multiple of it, leave in whole messages and not with a tail message of a
// dozen bytes each.
const DefaultMessageSize = wsconn.DefaultMessageSize

// Validate reports whether o is valid, as New would: it returns New's
// error for the same options. A nil *Options is valid.
func (o *Options) Validate() error {
	_, err := o.withDefaults()
	return err
}

// withDefaults returns a copy of o with defaults filled in, or an error for
// values that cannot work.
func (o *Options) withDefaults() (Options, error) {
	var c Options
	if o != nil {
		c = *o
	}
	w, err := c.wsconn().WithDefaults()
	if err != nil {
		return c, err
	}
	return Options{
		MessageSize:       w.MessageSize,
		ReadLimit:         w.ReadLimit,
		KeepAliveInterval: w.KeepAliveInterval,
		KeepAliveTimeout:  w.KeepAliveTimeout,
		WriteTimeout:      w.WriteTimeout,
		CloseTimeout:      w.CloseTimeout,
		Logger:            w.Logger,
	}, nil
}

func (o *Options) wsconn() wsconn.Options {
	return wsconn.Options{
		MessageSize:       o.MessageSize,
		ReadLimit:         o.ReadLimit,
		KeepAliveInterval: o.KeepAliveInterval,
		KeepAliveTimeout:  o.KeepAliveTimeout,
		WriteTimeout:      o.WriteTimeout,
		CloseTimeout:      o.CloseTimeout,
		Logger:            o.Logger,
	}
}
