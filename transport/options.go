package transport

import (
	"errors"
	"log/slog"
	"time"
)

// Options configure a Conn. The zero value of every field means its default;
// a nil *Options means all defaults.
type Options struct {
	// MessageSize is the largest payload of one outgoing WebSocket message;
	// longer writes are split. Proxies cap message sizes (AWS API Gateway at
	// 128 KB, Cloudflare at 1 MiB). Default 64 KiB + 64 bytes: the 64 bytes
	// leave room for the headers that ride with a 64 KiB payload (a yamux
	// frame header, a protobuf length prefix), so that writes of 64 KiB,
	// or of a multiple of it, leave in whole messages and not with a tail
	// message of a dozen bytes each.
	MessageSize int

	// ReadLimit is the largest incoming message accepted. A larger one
	// closes the connection with code 1009 and ErrMessageTooBig. Incoming
	// messages are streamed, so this bounds protocol abuse, not memory.
	// Default 1 MiB.
	ReadLimit int64

	// KeepAliveInterval is how long the connection may be idle before the
	// peer is pinged. Default 15 s; negative disables keepalive.
	KeepAliveInterval time.Duration

	// KeepAliveTimeout is how long nothing may arrive from the peer before
	// the connection is closed with ErrKeepAliveTimeout. Default three times
	// KeepAliveInterval.
	KeepAliveTimeout time.Duration

	// WriteTimeout bounds the write of one message (and of control frames).
	// When it passes, the peer is taken as gone and the connection ends with
	// ErrWriteTimeout. Default 10 s.
	WriteTimeout time.Duration

	// CloseTimeout bounds Close: flushing queued writes and waiting for the
	// peer's close frame. Default 5 s.
	CloseTimeout time.Duration

	// DirectRead makes Read read the WebSocket on the caller's goroutine
	// instead of taking bytes from a read goroutine: one goroutine hop and
	// one copy fewer per message, at a price. Read deadlines are ignored,
	// and control frames (pings, pongs, close) are processed only while a
	// Read is in progress, so the caller must keep reading. It suits
	// framing layers that always read, like package mux.
	DirectRead bool

	// Logger receives connection events. Default: discard.
	Logger *slog.Logger
}

// DefaultMessageSize is the default of Options.MessageSize: 64 KiB, and 64
// bytes for the headers that ride with 64 KiB of data.
const DefaultMessageSize = 64<<10 + 64

const (
	defaultReadLimit         = 1 << 20
	defaultKeepAliveInterval = 15 * time.Second
	defaultWriteTimeout      = 10 * time.Second
	defaultCloseTimeout      = 5 * time.Second
)

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
	switch {
	case c.MessageSize < 0:
		return c, errors.New("wsplex/transport: negative MessageSize")
	case c.ReadLimit < 0:
		return c, errors.New("wsplex/transport: negative ReadLimit")
	case c.KeepAliveTimeout < 0 || c.WriteTimeout < 0 || c.CloseTimeout < 0:
		return c, errors.New("wsplex/transport: negative timeout")
	}
	if c.MessageSize == 0 {
		c.MessageSize = DefaultMessageSize
	}
	if c.ReadLimit == 0 {
		c.ReadLimit = defaultReadLimit
	}
	if c.KeepAliveInterval == 0 {
		c.KeepAliveInterval = defaultKeepAliveInterval
	}
	if c.KeepAliveInterval > 0 && c.KeepAliveTimeout == 0 {
		c.KeepAliveTimeout = 3 * c.KeepAliveInterval
	}
	if c.WriteTimeout == 0 {
		c.WriteTimeout = defaultWriteTimeout
	}
	if c.CloseTimeout == 0 {
		c.CloseTimeout = defaultCloseTimeout
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	return c, nil
}
