package mux

import (
	"errors"
	"log/slog"
	"time"

	"github.com/wsplex/wsplex/internal/wsconn"
)

// Subprotocol is the WebSocket subprotocol that client and server
// negotiate. Its version changes when the wire protocol (SPEC.md) does.
const Subprotocol = "wsplex.v1"

// Options configure a Session, on either side. The zero value of every
// field means its default; a nil *Options means all defaults.
type Options struct {
	// WindowSize is the largest receive window of one stream: the most
	// bytes its peer may send before its reader consumes them. A stream
	// starts with yamux's 256 KiB and its window doubles, up to WindowSize,
	// while its peer keeps using it up, so only bulk streams grow large
	// windows. At least 256 KiB. Default 16 MiB, which keeps a bulk stream
	// at full speed.
	WindowSize uint32

	// SessionWindow bounds the memory the peer can make this side hold in
	// stream data received and not yet read, over all streams of the
	// session, as HTTP/2's connection window does. Stream windows grow
	// beyond yamux's initial 256 KiB only within half of it; data that
	// would make the session hold more resets the stream it arrives on
	// with CodeResourceExhausted, and a stream the peer opens while the
	// session holds it all is refused. Honest peers meet it only with more
	// than a hundred streams each holding a full initial window unread. At
	// least 256 KiB. Default 64 MiB.
	SessionWindow uint32

	// MaxStreams caps the streams the peer may have open towards this side
	// at once, counting each from its SYN until both sides ended it (a
	// stream closed here still counts until the peer ends its half); more
	// are refused with CodeResourceExhausted. Default 4096.
	MaxStreams int

	// KeepAliveInterval is how long the connection may be idle before the
	// peer is pinged. Default 15 s; negative disables keepalive.
	KeepAliveInterval time.Duration

	// KeepAliveTimeout is how long nothing may arrive from the peer before
	// the session is closed as dead. Default three times KeepAliveInterval.
	KeepAliveTimeout time.Duration

	// WriteTimeout bounds writing one frame; a peer that does not take it
	// in time is taken as gone and the session ends. Default 10 s.
	WriteTimeout time.Duration

	// CloseTimeout bounds the WebSocket closing handshake. Default 5 s.
	CloseTimeout time.Duration

	// HoldDelay bounds how long frames a stream holds (Stream.Hold) wait
	// for the stream to release them before they leave anyway. Default
	// 1 ms.
	HoldDelay time.Duration

	// MessageSize is the largest outgoing WebSocket message payload; larger
	// frames are split. Default 64 KiB + 64 bytes, so that a frame carrying
	// 64 KiB fits one message with its header (see transport.Options).
	MessageSize int

	// ReadLimit is the largest incoming WebSocket message accepted.
	// Default 1 MiB.
	ReadLimit int64

	// Compression negotiates permessage-deflate (RFC 7692, without context
	// takeover) when both sides enable it. Off by default: on fast links it
	// costs more CPU than it saves (BENCHMARKS.md); it pays on slow links
	// carrying compressible messages such as text-heavy protobufs.
	Compression bool

	// Logger receives session events. Default: discard.
	Logger *slog.Logger
}

const (
	defaultWindowSize    = 16 << 20
	defaultSessionWindow = 64 << 20
	minWindowSize        = initialWindow
	defaultMaxStreams    = 4096
	defaultHoldDelay     = time.Millisecond
	acceptBacklog        = 256
	minMessageSize       = 256
)

// Validate reports whether o is valid: Dial and NewHandler return the same
// error for it. A nil *Options is valid.
func (o *Options) Validate() error {
	_, err := o.withDefaults()
	return err
}

func (o *Options) withDefaults() (Options, error) {
	var c Options
	if o != nil {
		c = *o
	}
	if c.WindowSize == 0 {
		c.WindowSize = defaultWindowSize
	}
	if c.WindowSize < minWindowSize {
		return c, errors.New("wsplex/mux: WindowSize below 256 KiB")
	}
	if c.SessionWindow == 0 {
		c.SessionWindow = defaultSessionWindow
	}
	if c.SessionWindow < minWindowSize {
		return c, errors.New("wsplex/mux: SessionWindow below 256 KiB")
	}
	if c.MessageSize != 0 && c.MessageSize < minMessageSize {
		return c, errors.New("wsplex/mux: MessageSize below 256 bytes")
	}
	if c.MaxStreams < 0 {
		return c, errors.New("wsplex/mux: negative MaxStreams")
	}
	if c.MaxStreams == 0 {
		c.MaxStreams = defaultMaxStreams
	}
	if c.HoldDelay < 0 {
		return c, errors.New("wsplex/mux: negative HoldDelay")
	}
	if c.HoldDelay == 0 {
		c.HoldDelay = defaultHoldDelay
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	if _, err := c.transport().WithDefaults(); err != nil {
		return c, err
	}
	return c, nil
}

// messageSize returns the largest outgoing WebSocket message payload.
func (o *Options) messageSize() int {
	if o.MessageSize > 0 {
		return o.MessageSize
	}
	return wsconn.DefaultMessageSize
}

func (o *Options) closeTimeout() time.Duration {
	if o.CloseTimeout > 0 {
		return o.CloseTimeout
	}
	return 5 * time.Second
}

func (o *Options) transport() wsconn.Options {
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
