// Package wsplexnats is a topic.Broker on NATS JetStream, so that the topic
// Hubs of many wsplex servers share their topics: what any server
// publishes reaches the subscribers of all, and a subscriber whose server
// went away resumes on another from the position the first gave it.
//
// Each server makes a Broker on its own NATS connection, all on the same
// stream, and gives it to its Hub:
//
//	nc, err := nats.Connect(url)
//	js, err := jetstream.New(nc)
//	broker, err := wsplexnats.NewBroker(ctx, js, nil)
//	defer broker.Close()
//	hub := topic.NewHub(&topic.Options{Broker: broker})
//	routes.Handle("/chat/{room}", hub)
//
// This package is a module of its own, so that a program importing wsplex
// does not pull nats.go. A Broker is safe for concurrent use; it starts
// consumers, and must be closed.
//
// # What the broker stores
//
// One JetStream stream (Options.Stream) holds every topic, each on a
// subject of its own: Options.Subject, a dot, and the topic's name in
// unpadded base64url, one token whatever the name holds. A message is the
// published bytes, as they are, with one header, Wsplex-Prev: the stream
// sequence of the topic's message before it. The stream keeps a topic's
// latest Options.HistorySize messages for Options.HistoryTTL, on disk by
// default; nothing else is stored. A position's offset is the message's
// stream sequence, and its epoch the stream's creation time, so that
// every server reads the same positions.
//
// Each topic with subscribers on a Broker has one live consumer (an
// ordered consumer, on the NATS server's memory) that delivers to all of
// them; each resuming subscription reads its history with a short-lived
// consumer of its own.
//
// # Delivery guarantees
//
// The stream orders the messages of a topic, whoever published them, and
// every subscription, on every server, gets them in that order, each
// once. Each message's Prev is exact: a Broker publishes only if the
// topic's last message is still the one it read (JetStream's expected
// last subject sequence), and otherwise reads again and retries, so two
// servers publishing to a topic at once never both claim to follow the
// same message. Publish returns once the stream has stored the message; a
// publish that fails, for instance by timing out, may or may not have
// been stored.
//
// A subscription resumed from a position the history holds gets every
// message after it, and nothing before; one that resumes from further
// back, or from another epoch, starts from another position than the one
// it asked for, so the Hub tells the subscriber of the gap, and gets what
// the history still holds. A subscriber is never told that nothing was
// lost when something was, short of the stream being recreated under
// running servers: at worst it is told of a gap where there was none (see
// # History).
//
// When a live consumer fails for good (the NATS connection closed, the
// consumer or the stream deleted), its subscriptions end with an error,
// and the Hub tells their subscribers to resume. Through NATS
// reconnections and missed heartbeats the consumer recovers by itself,
// from the last message it delivered, losing nothing.
//
// # History
//
// A topic that stays quiet for longer than HistoryTTL loses its whole
// history, and JetStream no longer knows what its last message was: the
// next one has Prev 0, and its subscribers see a gap before it, though
// they missed nothing. Set HistoryTTL longer than topics stay quiet, or
// negative to keep each topic's last HistorySize messages for as long as
// the stream lasts.
//
// A stream deleted and created again has a new epoch. A Broker notices
// when its consumers report the deletion, or miss heartbeats, or a
// publish finds no stream: it then reads the stream's creation time again
// before it next publishes or subscribes, and ends the subscriptions of
// the old epoch. A live consumer that missed the deletion and recreated
// itself in the new stream before then delivers messages of the new
// stream under the old epoch; their Prev rarely matches, and the
// subscriber is told of a gap. Do not recreate the stream of running
// servers: stop them first.
//
// # Costs
//
// A publish usually takes one round trip to the NATS server: a Broker
// remembers the last sequence of the topics it publishes to, and sends
// one publish of a topic at a time. It takes one more when another
// server published to the topic since, and, when many servers publish to
// one topic at once, as many as it takes to win the race (with growing
// random pauses in between). A subscription from the current position
// takes two round trips for a topic's first subscriber on a server, none
// after; a resumed one creates a consumer and reads the history after
// its position.
package wsplexnats
