// Package topic delivers published messages to every subscriber of a
// topic, on every server, over wsplex streams (SPEC.md §14).
//
// A topic is named like a stream ("/chat/room/42"). A client subscribes by
// opening a stream to the name; a Hub, the stream.Handler of the names
// that are topics, delivers on it each message published to the topic,
// with its position, so that a client that lost its session resumes where
// it stopped. The server publishes with Hub.Publish; clients publish on a
// stream where Options.AllowPublish lets them. The Hub's Broker moves the
// messages: the in-process MemoryBroker for one server, or a broker shared
// by many servers, such as the NATS JetStream broker of module
// github.com/wsplex/wsplex/wsplexnats.
//
//	hub := topic.NewHub(nil)
//	routes := stream.NewRouter(&stream.Options{OnOpen: authorize})
//	routes.Handle("/chat/room/{id}", hub)
//	...
//	hub.Publish(ctx, "/chat/room/42", &chatv1.Message{Text: "hi"})
//
// and a Go client, on a reconnect.Client or one session:
//
//	for ev, err := range topic.Subscribe(ctx, client, "/chat/room/42", nil) { ... }
//
// # Delivery guarantees
//
// A subscription delivers the messages of its topic in the order the
// broker stored them (one order for all subscribers), each once, from
// the next message published, or from the position it resumes after. While
// the subscriber keeps up and the broker's history holds what it missed,
// nothing is lost, across reconnects too: Subscribe resumes from the last
// position it yielded. What is lost is always reported, never skipped
// silently: when a subscriber resumes from a position the history no
// longer holds (too old, or another epoch after the broker lost its
// history), the subscription yields a gap event first, then what the
// history still holds. Positions are per topic but offsets may skip
// numbers; a subscriber compares each message's Prev with the offset it
// holds. A message is delivered to subscribers once the broker has stored
// it, and Publish returns then; a publish that fails may or may not have
// been stored. A subscriber that reads too slowly does not slow the
// publisher or the others: its bounded queue overflows and the Hub ends
// its subscription with CodeResourceExhausted, from which Subscribe
// resumes through the history.
//
// # Memory
//
// A subscription holds its stream, its goroutine, and up to
// Options.QueueSize messages waiting to be written; the MemoryBroker holds
// up to MemoryOptions.HistorySize messages per topic for
// MemoryOptions.HistoryTTL.
package topic
