package topic

import (
	"context"
	"strconv"
	"sync"
)

// Position is a place in a topic: just after the message at Offset, in the
// topic's history of Epoch. Offset 0 is the place before a topic's first
// message.
//
// Offsets grow strictly with each message of a topic but may skip numbers:
// a broker may number the messages of many topics together, as NATS
// JetStream numbers those of one stream. So a subscriber never computes the
// next offset; it compares the Prev of the next message with the offset of
// the last one it has (SPEC.md §14.1). An Epoch changes when a topic's
// history is lost, for instance when an in-process broker restarts; offsets
// of different epochs are not comparable.
type Position struct {
	Epoch  string
	Offset uint64
}

// String returns the position as "offset@epoch".
func (p Position) String() string {
	return strconv.FormatUint(p.Offset, 10) + "@" + p.Epoch
}

// Message is one message of a topic, as a Broker delivers it. A broker
// hands the same *Message to every subscriber of a server: nobody may
// change it.
type Message struct {
	Topic string
	// Position is the message's own place in the topic.
	Position
	// Prev is the Offset of the topic's message before this one, 0 if there
	// is none.
	Prev uint64
	// Data is what the publisher published.
	Data []byte

	once sync.Once
	enc  []byte // the TopicEvent carrying it, encoded once for all subscribers
}

// A Broker stores the messages of topics and delivers them to subscribers.
// The in-process broker ([NewMemoryBroker]) serves one server; a broker
// shared by many servers, such as the NATS broker of module
// github.com/wsplex/wsplex/wsplexnats, delivers what any of them publishes
// to the subscribers of all. A Broker's methods may be called
// concurrently.
type Broker interface {
	// Publish appends data to topic, delivers it to the topic's subscribers
	// and returns its position. The broker may keep data: the caller must
	// not change it afterwards.
	Publish(ctx context.Context, topic string, data []byte) (Position, error)

	// Subscribe starts delivering topic's messages to deliver, in topic
	// order, each once, as deliver(m, nil). deliver runs on the broker's
	// goroutines and must not block; it is never called concurrently for
	// one subscription. A broker that loses a subscription (its link to
	// other servers is down and it cannot resume without loss) calls
	// deliver(nil, err) once and nothing after.
	//
	// With since nil, delivery starts with the next message published, and
	// start is the topic's current position: its epoch and the offset of
	// its last message (0 if it has none). With since set, the broker first
	// delivers the messages its history holds after since, before
	// Subscribe returns (a Hub does not count them against its
	// subscriber's queue: the history's size bounds them), then new ones,
	// and start is the position the first of them follows, the Prev of the
	// first message delivered (the topic's current position when history
	// holds nothing after since). So start equals *since exactly when
	// nothing after since was lost: the history held all of it. A since of
	// another epoch starts with all the history the broker holds.
	//
	// stop ends delivery: once it returns, deliver is not called again.
	// ctx bounds only the call to Subscribe.
	Subscribe(ctx context.Context, topic string, since *Position, deliver func(*Message, error)) (start Position, stop func(), err error)
}
