package topic

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/wsplex/wsplex"
	wsplexv1 "github.com/wsplex/wsplex/proto/wsplex/v1"
	"github.com/wsplex/wsplex/stream"
	"google.golang.org/protobuf/proto"
)

// Options configure a Hub. A nil *Options, and the zero value of each
// field, mean the defaults.
type Options struct {
	// Broker stores and moves the messages. Default: a MemoryBroker with
	// its default options, for one server.
	Broker Broker
	// QueueSize bounds the messages waiting to be written to one
	// subscriber. When a subscriber reads so slowly that its queue
	// overflows, its subscription ends with CodeResourceExhausted, which
	// tells it to resume from its position; the overflow is logged at Warn
	// and counted in Stats.Overflows. The publisher and the other
	// subscribers never wait for it. Default 1024 (it should exceed the
	// broker's history size, or a resume from far back overflows).
	QueueSize int
	// AllowPublish, if set, decides whether a client may publish on the
	// stream s (SPEC.md §14.4): nil lets it, an error refuses the stream
	// with the error's status. Without AllowPublish clients may not
	// publish; the server still can, with Hub.Publish.
	AllowPublish func(ctx context.Context, s *stream.Stream) error
	// Logger receives overflows (Warn) and broker failures. Default: discard.
	Logger *slog.Logger
}

// Stats are a Hub's figures.
type Stats struct {
	// Subscriptions being served now.
	Subscriptions int64
	// Overflows counts the subscriptions ended because their subscriber
	// read too slowly (Options.QueueSize).
	Overflows uint64
}

// Hub serves topics on a stream.Router: it is the stream.Handler of the
// names that are topics. A client subscribes by opening a stream to the
// topic's name; the Router's OnOpen authorizes it by name and by the
// session's identity (mux.AuthInfo) like any stream.
type Hub struct {
	broker       Broker
	queue        int
	allowPublish func(context.Context, *stream.Stream) error
	log          *slog.Logger

	subs      atomic.Int64
	overflows atomic.Uint64
}

// NewHub returns a Hub. A nil opts means defaults.
func NewHub(opts *Options) *Hub {
	var o Options
	if opts != nil {
		o = *opts
	}
	h := &Hub{broker: o.Broker, queue: o.QueueSize, allowPublish: o.AllowPublish, log: o.Logger}
	if h.broker == nil {
		h.broker = NewMemoryBroker(nil)
	}
	if h.queue <= 0 {
		h.queue = 1024
	}
	if h.log == nil {
		h.log = slog.New(slog.DiscardHandler)
	}
	return h
}

// Stats returns the Hub's figures.
func (h *Hub) Stats() Stats {
	return Stats{Subscriptions: h.subs.Load(), Overflows: h.overflows.Load()}
}

// Publish publishes m to topic through the broker, to the topic's
// subscribers on every server that shares it, and returns its position.
func (h *Hub) Publish(ctx context.Context, topic string, m proto.Message) (Position, error) {
	b, err := proto.Marshal(m)
	if err != nil {
		return Position{}, err
	}
	return h.PublishBytes(ctx, topic, b)
}

// PublishBytes publishes data, which the broker may keep: the caller must
// not change it afterwards.
func (h *Hub) PublishBytes(ctx context.Context, topic string, data []byte) (Position, error) {
	if err := stream.CheckName(topic); err != nil {
		return Position{}, err
	}
	return h.broker.Publish(ctx, topic, data)
}

// AnswersOpen implements stream.Answerer: a subscription's answer carries
// its position.
func (h *Hub) AnswersOpen() bool { return true }

// ServeStream implements stream.Handler: it serves a subscription or a
// publish stream, as the stream's wsplex-topic metadata says.
func (h *Hub) ServeStream(ctx context.Context, s *stream.Stream) error {
	switch mode := s.Metadata().Values(keyTopic); {
	case len(mode) == 1 && mode[0] == modeSubscribe:
		return h.serveSubscription(ctx, s)
	case len(mode) == 1 && mode[0] == modePublish:
		return h.servePublisher(ctx, s)
	case len(mode) == 0:
		return wsplex.Errorf(wsplex.CodeInvalidArgument, "stream %q is a topic: open it with %s metadata", s.Name(), keyTopic)
	default:
		return wsplex.Errorf(wsplex.CodeInvalidArgument, "%s must be %q or %q, once", keyTopic, modeSubscribe, modePublish)
	}
}

// subscription is one subscriber's queue between the broker and the
// goroutine that writes to its stream.
type subscription struct {
	s      *stream.Stream
	max    int
	wake   chan struct{} // one token: the queue has something or overflowed
	mu     sync.Mutex
	queue  []*Message
	failed error // the broker ended the subscription
	over   bool  // the queue overflowed
	// replay is true while Broker.Subscribe runs and delivers history,
	// which does not count against max: the broker bounds it. backlog is
	// how much of it is still queued.
	replay  bool
	backlog int
}

func (q *subscription) deliver(m *Message, err error) {
	q.mu.Lock()
	switch {
	case q.over || q.failed != nil:
	case err != nil:
		q.failed = err
	case q.replay:
		q.queue = append(q.queue, m)
		q.backlog++
	case len(q.queue)-q.backlog >= q.max:
		q.over, q.queue = true, nil
		// The writer may be blocked in a Send that waits for the
		// subscriber's window: end the wait now. (Under q.mu, so that the
		// writer, which clears the deadline once it sees q.over, clears it
		// after.)
		q.s.SetWriteDeadline(time.Now())
	default:
		q.queue = append(q.queue, m)
	}
	q.mu.Unlock()
	select {
	case q.wake <- struct{}{}:
	default:
	}
}

// take moves the queued messages into batch, which it returns.
func (q *subscription) overflowed() bool {
	q.mu.Lock()
	defer q.mu.Unlock()
	return q.over
}

func (q *subscription) take(batch []*Message) ([]*Message, bool, error) {
	q.mu.Lock()
	defer q.mu.Unlock()
	batch = append(batch[:0], q.queue...)
	clear(q.queue)
	q.queue = q.queue[:0]
	q.backlog = 0
	return batch, q.over, q.failed
}

func (h *Hub) serveSubscription(ctx context.Context, s *stream.Stream) error {
	since, err := position(s.Metadata())
	if err != nil {
		return err
	}
	q := &subscription{s: s, max: h.queue, wake: make(chan struct{}, 1), replay: true}
	start, stop, err := h.broker.Subscribe(ctx, s.Name(), since, q.deliver)
	q.mu.Lock()
	q.replay = false
	q.mu.Unlock()
	if err != nil {
		h.log.Warn("wsplex/topic: subscribe failed", "topic", s.Name(), "err", err)
		return wsplex.Errorf(wsplex.CodeUnavailable, "topic %q: %v", s.Name(), err)
	}
	defer stop()
	h.subs.Add(1)
	defer h.subs.Add(-1)
	err = h.deliver(ctx, s, q, since, start)
	if err != nil && q.overflowed() {
		s.SetWriteDeadline(time.Time{}) // set by deliver; the status must leave
		h.overflows.Add(1)
		h.log.Warn("wsplex/topic: subscriber too slow, subscription ended", "topic", s.Name(),
			"queue", h.queue, "remote", s.RemoteAddr().String())
		return wsplex.Errorf(wsplex.CodeResourceExhausted, "subscriber too slow: more than %d messages waiting", h.queue)
	}
	return err
}

// deliver answers the subscription's open and writes its events until it
// ends.
func (h *Hub) deliver(ctx context.Context, s *stream.Stream, q *subscription, since *Position, start Position) error {
	pos := start
	if since != nil {
		pos = *since
	}
	setPosition(s.ResponseMetadata(), pos)
	if err := s.Respond(); err != nil {
		return err
	}
	send := func(m *Message) error {
		if m.Epoch != pos.Epoch || m.Prev != pos.Offset {
			if err := s.Send(gapEvent(Position{Epoch: m.Epoch, Offset: m.Prev})); err != nil {
				return err
			}
		}
		pos = m.Position
		return s.SendBytes(m.encoded())
	}
	if pos != start {
		pos = start
		if err := s.Send(gapEvent(start)); err != nil {
			return err
		}
	}
	var batch []*Message
	for {
		var over bool
		var failed error
		batch, over, failed = q.take(batch)
		if over {
			return errOverflow
		}
		if len(batch) > 0 {
			s.Hold()
			for _, m := range batch {
				if err := send(m); err != nil {
					return err
				}
			}
			s.Flush()
			clear(batch)
			continue
		}
		if failed != nil {
			h.log.Warn("wsplex/topic: broker ended subscription", "topic", s.Name(), "err", failed)
			return wsplex.Errorf(wsplex.CodeUnavailable, "topic %q: %v", s.Name(), failed)
		}
		select {
		case <-q.wake:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

var errOverflow = errors.New("queue overflowed")

func (h *Hub) servePublisher(ctx context.Context, s *stream.Stream) error {
	if h.allowPublish == nil {
		return wsplex.Errorf(wsplex.CodePermissionDenied, "clients may not publish to %q", s.Name())
	}
	if err := h.allowPublish(ctx, s); err != nil {
		return err
	}
	if err := s.Respond(); err != nil {
		return err
	}
	for {
		var data []byte
		err := s.ReceiveBytes(func(b []byte) error {
			data = append([]byte(nil), b...)
			return nil
		})
		if err != nil {
			if err == io.EOF {
				return nil
			}
			return err
		}
		p, err := h.broker.Publish(ctx, s.Name(), data)
		if err != nil {
			h.log.Warn("wsplex/topic: publish failed", "topic", s.Name(), "err", err)
			return wsplex.Errorf(wsplex.CodeUnavailable, "publish to %q: %v", s.Name(), err)
		}
		if err := s.Send(&wsplexv1.TopicPublished{Epoch: p.Epoch, Offset: p.Offset}); err != nil {
			return err
		}
	}
}
