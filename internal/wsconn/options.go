package wsconn

import (
	"errors"
	"log/slog"
	"time"
)

// Options configure a Conn. The zero value of every field means its
// default.
type Options struct {
	// MessageSize is the largest payload of one outgoing WebSocket message;
	// longer writes are split. Default DefaultMessageSize.
	MessageSize int

	// ReadLimit is the largest incoming message accepted. A larger one
	// closes the connection with code 1009 and ErrMessageTooBig. Default
	// 1 MiB.
	ReadLimit int64

	// KeepAliveInterval is how long nothing may arrive before the peer is
	// pinged. Default 15 s; negative disables keepalive.
	KeepAliveInterval time.Duration

	// KeepAliveTimeout is how long nothing may arrive before the connection
	// ends with ErrKeepAliveTimeout. Default three times KeepAliveInterval.
	KeepAliveTimeout time.Duration

	// WriteTimeout is how long a write may go on while the peer drains
	// nothing before the connection ends with ErrWriteTimeout; where the
	// peer's progress cannot be seen, how long one message may take (see
	// the package doc). Default 10 s.
	WriteTimeout time.Duration

	// CloseTimeout is the default bound of a close handshake for layers
	// above; Close itself takes a deadline. Default 5 s.
	CloseTimeout time.Duration

	// Logger receives connection events. Default: discard.
	Logger *slog.Logger
}

// DefaultMessageSize is the default of Options.MessageSize: 64 KiB, and 64
// bytes for the headers that ride with 64 KiB of data (a yamux frame
// header, a protobuf length prefix), so that writes of 64 KiB, or of a
// multiple of it, leave in whole messages and not with a tail message of a
// dozen bytes each.
const DefaultMessageSize = 64<<10 + 64

const (
	defaultReadLimit         = 1 << 20
	defaultKeepAliveInterval = 15 * time.Second
	defaultWriteTimeout      = 10 * time.Second
	defaultCloseTimeout      = 5 * time.Second
)

// WithDefaults returns o with defaults in place of zero values, or an error
// for negative values, which cannot work. A negative KeepAliveInterval is
// kept: it disables keepalive.
func (o Options) WithDefaults() (Options, error) {
	switch {
	case o.MessageSize < 0:
		return o, errors.New("wsplex/transport: negative MessageSize")
	case o.ReadLimit < 0:
		return o, errors.New("wsplex/transport: negative ReadLimit")
	case o.KeepAliveTimeout < 0 || o.WriteTimeout < 0 || o.CloseTimeout < 0:
		return o, errors.New("wsplex/transport: negative timeout")
	}
	if o.MessageSize == 0 {
		o.MessageSize = DefaultMessageSize
	}
	if o.ReadLimit == 0 {
		o.ReadLimit = defaultReadLimit
	}
	if o.KeepAliveInterval == 0 {
		o.KeepAliveInterval = defaultKeepAliveInterval
	}
	if o.KeepAliveInterval > 0 && o.KeepAliveTimeout == 0 {
		o.KeepAliveTimeout = 3 * o.KeepAliveInterval
	}
	if o.WriteTimeout == 0 {
		o.WriteTimeout = defaultWriteTimeout
	}
	if o.CloseTimeout == 0 {
		o.CloseTimeout = defaultCloseTimeout
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	return o, nil
}
