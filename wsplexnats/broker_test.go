package wsplexnats_test

import (
	"testing"

	"github.com/wsplex/wsplex/internal/brokertest"
	"github.com/wsplex/wsplex/topic"
)

// TestContract runs the Broker contract on two and on three Brokers, as
// many servers would have, each on its own NATS connection, sharing a
// stream on one NATS server.
func TestContract(t *testing.T) {
	ns := runServer(t)
	for _, n := range []int{2, 3} {
		t.Run(map[int]string{2: "TwoBrokers", 3: "ThreeBrokers"}[n], func(t *testing.T) {
			brokertest.Run(t, func(t *testing.T, opts brokertest.Options) []topic.Broker {
				o := freshOptions()
				o.HistorySize = opts.HistorySize
				var bs []topic.Broker
				for range n {
					_, js := connect(t, ns)
					bs = append(bs, newBroker(t, js, o))
				}
				return bs
			})
		})
	}
}
