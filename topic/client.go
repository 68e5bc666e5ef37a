package topic

import (
	"context"
	"errors"
	"io"
	"iter"
	"math/rand/v2"
	"net"
	"time"

	"github.com/wsplex/wsplex"
	"github.com/wsplex/wsplex/mux"
	wsplexv1 "github.com/wsplex/wsplex/proto/wsplex/v1"
	"github.com/wsplex/wsplex/stream"
	"google.golang.org/protobuf/proto"
)

// Sessions gives a subscriber the session to subscribe on, again after a
// session ends. *reconnect.Client is one: a subscription on it survives
// reconnects. OneSession makes one of a single session.
type Sessions interface {
	Session(ctx context.Context) (*mux.Session, error)
}

type oneSession struct{ s *mux.Session }

func (o oneSession) Session(context.Context) (*mux.Session, error) {
	select {
	case <-o.s.Done():
		return nil, o.s.Err()
	default:
		return o.s, nil
	}
}

// OneSession returns the Sessions of sess alone: a subscription on it ends
// with the session.
func OneSession(sess *mux.Session) Sessions { return oneSession{sess} }

// Event is what a subscription yields: a message of the topic, or a gap.
type Event struct {
	// Gap reports that messages were lost before this point (SPEC.md
	// §14.3): the history no longer held them when the subscriber resumed.
	// A gap event carries no data; its Position is the subscriber's new
	// position. An application that keeps state from a topic reloads it.
	Gap bool
	// Position is a message's place in the topic, or after a gap the
	// position delivery goes on from. Pass the last one seen as
	// SubscribeOptions.Since to resume later.
	Position Position
	// Prev is the offset of the message before this one in the topic.
	Prev uint64
	// Data is the message as published.
	Data []byte
}

// Unmarshal decodes the message's data into m.
func (e *Event) Unmarshal(m proto.Message) error { return proto.Unmarshal(e.Data, m) }

// SubscribeOptions configure Subscribe. A nil *SubscribeOptions means
// defaults.
type SubscribeOptions struct {
	// Since, if set, resumes after this position: the messages the topic's
	// history holds after it come first. Default: from the next message
	// published.
	Since *Position
	// Metadata travels with each subscription's open, for the server's
	// OnOpen to authorize.
	Metadata wsplex.Metadata
	// Stream configures the subscription's stream, such as the largest
	// message it accepts.
	Stream stream.Options
	// Subscribed, if set, is called each time the server accepts the
	// subscription, the first time and after each resume, with the
	// subscriber's position then: from that moment every message
	// published reaches the loop.
	Subscribed func(Position)
}

// Subscribe subscribes to topic and yields its events until the loop
// stops, ctx ends, or the subscription fails for good: then it yields the
// error, a *wsplex.Error for a refusal (CodeNotFound, CodePermissionDenied),
// and stops. When the session ends, or the server ends the subscription
// with CodeResourceExhausted (this subscriber read too slowly) or
// CodeUnavailable, Subscribe subscribes again on the next session
// sessions gives, from the position of the last event it yielded, so that
// with a *reconnect.Client a subscription outlives reconnects and, within
// the server's history, loses nothing and repeats nothing. The events
// come in topic order; a gap is always yielded as an event.
//
// The event and its Data are the loop body's to keep.
func Subscribe(ctx context.Context, sessions Sessions, topic string, opts *SubscribeOptions) iter.Seq2[*Event, error] {
	var o SubscribeOptions
	if opts != nil {
		o = *opts
	}
	return func(yield func(*Event, error) bool) {
		var pos *Position
		failures := 0
		if o.Since != nil {
			p := *o.Since
			pos = &p
		}
		for {
			if err := ctx.Err(); err != nil {
				yield(nil, err)
				return
			}
			sess, err := sessions.Session(ctx)
			if err != nil {
				yield(nil, err)
				return
			}
			var before Position
			if pos != nil {
				before = *pos
			}
			done, err := subscribeOnce(ctx, sess, topic, &o, &pos, yield)
			if done {
				return
			}
			if ctx.Err() == nil && sess.Err() != nil {
				continue // the session ended: sessions gives the next, or says why not
			}
			if !retryable(ctx, err) {
				yield(nil, err)
				return
			}
			// The server ended the subscription. Resume at once if it made
			// progress; otherwise wait, longer each time, so that a server
			// that keeps failing is not hammered.
			if pos != nil && *pos != before {
				failures = 0
			}
			if wait := backoff(failures); wait > 0 {
				t := time.NewTimer(wait)
				select {
				case <-t.C:
				case <-ctx.Done():
					t.Stop()
				}
			}
			failures++
		}
	}
}

// retryable reports whether a subscription that failed with err should
// subscribe again.
func retryable(ctx context.Context, err error) bool {
	if ctx.Err() != nil {
		return false
	}
	if errors.Is(err, net.ErrClosed) || errors.Is(err, mux.ErrGoAway) || errors.Is(err, io.ErrUnexpectedEOF) {
		return true // the session ended; sessions gives the next
	}
	switch wsplex.CodeOf(err) {
	case wsplex.CodeResourceExhausted, wsplex.CodeUnavailable:
		return true
	}
	return false
}

// subscribeOnce runs one subscription on sess, yielding its events and
// moving *pos. It reports done when the loop body stopped the iteration,
// and otherwise why the subscription ended.
func subscribeOnce(ctx context.Context, sess *mux.Session, topic string, o *SubscribeOptions, pos **Position, yield func(*Event, error) bool) (done bool, err error) {
	md := o.Metadata.Clone()
	if md == nil {
		md = wsplex.Metadata{}
	}
	md.Set(keyTopic, modeSubscribe)
	if *pos != nil {
		setPosition(md, **pos)
	}
	s, err := stream.Open(ctx, sess, topic, &stream.OpenOptions{Options: o.Stream, Metadata: md})
	if err != nil {
		return false, err
	}
	stop := context.AfterFunc(ctx, func() { s.Cancel() })
	defer stop()
	defer s.Cancel() // unsubscribes, when the loop body stops or the stream failed
	answer, err := s.Response(ctx)
	if err != nil {
		return false, err
	}
	start, err := position(answer)
	if err != nil || start == nil {
		return false, wsplex.Errorf(wsplex.CodeInternal, "subscription to %q answered without a position", topic)
	}
	*pos = start
	if o.Subscribed != nil {
		o.Subscribed(*start)
	}
	var ev wsplexv1.TopicEvent
	for {
		ev.Reset()
		if err := s.Receive(&ev); err != nil {
			if err == io.EOF {
				err = wsplex.Errorf(wsplex.CodeUnavailable, "server ended subscription to %q", topic)
			}
			if ctx.Err() != nil {
				err = ctx.Err()
			}
			return false, err
		}
		var out *Event
		switch e := ev.Event.(type) {
		case *wsplexv1.TopicEvent_Gap:
			out = &Event{Gap: true, Position: Position{Epoch: e.Gap.GetEpoch(), Offset: e.Gap.GetOffset()}}
		case *wsplexv1.TopicEvent_Message:
			m := e.Message
			if m.GetPrev() != (*pos).Offset {
				// A server that did not announce the gap: say it ourselves.
				gap := &Event{Gap: true, Position: Position{Epoch: (*pos).Epoch, Offset: m.GetPrev()}}
				*pos = &gap.Position
				if !yield(gap, nil) {
					return true, nil
				}
			}
			out = &Event{Position: Position{Epoch: (*pos).Epoch, Offset: m.GetOffset()}, Prev: m.GetPrev(), Data: m.GetData()}
		default:
			continue // an event of a later version of SPEC.md §14.3
		}
		p := out.Position
		*pos = &p
		if !yield(out, nil) {
			return true, nil
		}
	}
}

// Publisher publishes from a client on one publish stream (SPEC.md §14.4),
// where the server allows it.
type Publisher struct {
	s *stream.Stream
}

// NewPublisher opens a publish stream to topic on sess. A server that does
// not let this client publish refuses it: the first Publish returns a
// *wsplex.Error with CodePermissionDenied.
func NewPublisher(ctx context.Context, sess *mux.Session, topic string, md wsplex.Metadata) (*Publisher, error) {
	md = md.Clone()
	if md == nil {
		md = wsplex.Metadata{}
	}
	md.Set(keyTopic, modePublish)
	s, err := stream.Open(ctx, sess, topic, &stream.OpenOptions{Metadata: md})
	if err != nil {
		return nil, err
	}
	return &Publisher{s: s}, nil
}

// Publish publishes m and waits for the server to acknowledge it, returning
// its position. Publish is not safe for concurrent use.
func (p *Publisher) Publish(m proto.Message) (Position, error) {
	if err := p.s.Send(m); err != nil {
		return Position{}, err
	}
	var ack wsplexv1.TopicPublished
	if err := p.s.Receive(&ack); err != nil {
		if err == io.EOF {
			err = io.ErrUnexpectedEOF
		}
		return Position{}, err
	}
	return Position{Epoch: ack.GetEpoch(), Offset: ack.GetOffset()}, nil
}

// Close ends the publish stream.
func (p *Publisher) Close() error { return p.s.Close() }

// backoff returns the wait before resubscribing after n failures in a row
// without progress: none after the first, then random up to 10 ms·2ⁿ,
// capped at 5 s.
func backoff(n int) time.Duration {
	if n == 0 {
		return 0
	}
	bound := 10 * time.Millisecond << min(n, 9)
	return rand.N(min(bound, 5*time.Second))
}
