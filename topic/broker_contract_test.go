package topic_test

import (
	"testing"

	"github.com/wsplex/wsplex/internal/brokertest"
	"github.com/wsplex/wsplex/topic"
)

// TestMemoryBroker runs the Broker contract on the in-process broker, one
// broker for one server.
func TestMemoryBroker(t *testing.T) {
	brokertest.Run(t, func(t *testing.T, opts brokertest.Options) []topic.Broker {
		return []topic.Broker{topic.NewMemoryBroker(&topic.MemoryOptions{HistorySize: opts.HistorySize})}
	})
}
