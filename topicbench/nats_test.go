package topicbench

import (
	"context"
	"errors"

	"github.com/wsplex/wsplex/topic"
)

// natsAvailable says whether wsplexnats can be measured.
func natsAvailable() error { return errors.New("wsplexnats is not available yet") }

// natsBroker returns the broker of wsplex node i: a wsplexnats Broker on a
// NATS connection of its own to url.
func natsBroker(ctx context.Context, url string, i int) (topic.Broker, error) {
	return nil, natsAvailable()
}
