package topicbench

import (
	"context"
	"strconv"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/wsplex/wsplex/topic"
	"github.com/wsplex/wsplex/wsplexnats"
)

// natsBroker returns the broker of wsplex node i: a wsplexnats Broker on a
// NATS connection of its own to url, with both systems' history settings,
// on a stream the NATS server keeps in memory, as the redis-server of
// centrifuge's nodes keeps its history.
func natsBroker(ctx context.Context, url string, i int) (topic.Broker, error) {
	nc, err := nats.Connect(url, nats.Name("topicbench node "+strconv.Itoa(i)))
	if err != nil {
		return nil, err
	}
	js, err := jetstream.New(nc)
	if err != nil {
		nc.Close()
		return nil, err
	}
	b, err := wsplexnats.NewBroker(ctx, js, &wsplexnats.Options{HistorySize: historySize, HistoryTTL: historyTTL, MemoryStorage: true})
	if err != nil {
		nc.Close()
		return nil, err
	}
	return natsBrokerConn{b, nc}, nil
}

// natsBrokerConn closes its NATS connection with the Broker.
type natsBrokerConn struct {
	*wsplexnats.Broker
	nc *nats.Conn
}

func (b natsBrokerConn) Close() error {
	err := b.Broker.Close()
	b.nc.Close()
	return err
}
