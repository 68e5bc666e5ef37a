package wsplexnats

import (
	"errors"
	"fmt"
	"net"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

var (
	// ErrClosed is returned by a Broker's methods after Close, and passed
	// to the deliver funcs of the subscriptions Close ends. It matches
	// net.ErrClosed.
	ErrClosed = fmt.Errorf("wsplex/nats: broker closed: %w", net.ErrClosed)
)

// wrongLastSequence reports whether a publish was refused because another
// message of its topic was stored since the broker read the topic's last
// one: the optimistic concurrency check of the Prev chain.
func wrongLastSequence(err error) bool {
	var apiErr *jetstream.APIError
	return errors.As(err, &apiErr) &&
		(apiErr.ErrorCode == jetstream.JSErrCodeStreamWrongLastSequence ||
			apiErr.ErrorCode == jetstream.JSErrCodeStreamWrongLastSequenceConstant)
}

// streamLost reports whether err says that the stream, or a consumer on
// it, is gone: the stream may have been deleted and recreated, with a new
// epoch whose offsets must not be mixed with the old ones.
func streamLost(err error) bool {
	return errors.Is(err, jetstream.ErrStreamNotFound) ||
		errors.Is(err, jetstream.ErrConsumerDeleted) ||
		errors.Is(err, jetstream.ErrConsumerNotFound) ||
		errors.Is(err, jetstream.ErrNoStreamResponse) ||
		errors.Is(err, nats.ErrNoResponders)
}

// consumerFatal reports whether a live consumer that reported err cannot
// go on: its subscriptions must end, so that their subscribers resume on
// a fresh consumer and learn of any gap.
func consumerFatal(err error) bool {
	return streamLost(err) || errors.Is(err, jetstream.ErrConnectionClosed) || errors.Is(err, nats.ErrConnectionClosed)
}
