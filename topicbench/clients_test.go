package topicbench

// The subscribers: each system's own Go client, one WebSocket connection
// per subscriber.

import (
	"context"
	"fmt"

	centrifugego "github.com/centrifugal/centrifuge-go"

	"github.com/wsplex/wsplex/mux"
	"github.com/wsplex/wsplex/topic"
)

// dialFunc connects one subscriber to url and subscribes it to the topic
// name. It calls got with the data of each message, from one goroutine at
// a time, and fail when the subscription breaks; stop unsubscribes and
// disconnects.
type dialFunc func(ctx context.Context, url, name string, got func([]byte), fail func(error)) (stop func(), err error)

var dialers = map[string]dialFunc{
	sysWsplex:     dialWsplex,
	sysCentrifuge: dialCentrifuge,
}

// dialWsplex subscribes with topic.Subscribe on a session of its own,
// with default options.
func dialWsplex(ctx context.Context, url, name string, got func([]byte), fail func(error)) (func(), error) {
	sess, err := mux.Dial(ctx, url, nil)
	if err != nil {
		return nil, err
	}
	subCtx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		for ev, err := range topic.Subscribe(subCtx, topic.OneSession(sess), "/bench/"+name, nil) {
			if err != nil {
				if subCtx.Err() == nil {
					fail(fmt.Errorf("wsplex subscription to %s: %w", name, err))
				}
				return
			}
			if ev.Gap {
				fail(fmt.Errorf("wsplex subscription to %s: gap before %v", name, ev.Position))
				continue
			}
			got(ev.Data)
		}
	}()
	return func() {
		cancel()
		sess.Close()
		<-done
	}, nil
}

// dialCentrifuge subscribes with centrifuge-go's protobuf client, with
// recovery and positioning as the server grants them.
func dialCentrifuge(_ context.Context, url, name string, got func([]byte), fail func(error)) (func(), error) {
	c := centrifugego.NewProtobufClient(url, centrifugego.Config{})
	sub, err := c.NewSubscription(name, centrifugego.SubscriptionConfig{Recoverable: true, Positioned: true})
	if err != nil {
		return nil, err
	}
	stopping := make(chan struct{})
	sub.OnPublication(func(e centrifugego.PublicationEvent) { got(e.Data) })
	sub.OnUnsubscribed(func(e centrifugego.UnsubscribedEvent) {
		select {
		case <-stopping:
		default:
			fail(fmt.Errorf("centrifuge subscription to %s ended: %d %s", name, e.Code, e.Reason))
		}
	})
	c.OnDisconnected(func(e centrifugego.DisconnectedEvent) {
		select {
		case <-stopping:
		default:
			fail(fmt.Errorf("centrifuge client disconnected: %d %s", e.Code, e.Reason))
		}
	})
	if err := sub.Subscribe(); err != nil {
		return nil, err
	}
	if err := c.Connect(); err != nil {
		c.Close()
		return nil, err
	}
	return func() {
		close(stopping)
		c.Close()
	}, nil
}
