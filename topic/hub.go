package topic

import (
	"context"
	"errors"
	"io"
	"iter"
	"log/slog"
	"net"
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
	max  int
	wake chan struct{} // iterator (Hub.Subscribe): one token, the queue has something or overflowed
	// s is the subscriber's stream (not Hub.Subscribe's iterator), which a
	// goroutine of its own writes to only while there is something to
	// write: deliver starts one (pump) when none runs.
	s       *stream.Stream
	writing bool // a pump runs, or the handler still writes
	done    bool // ended: nothing starts a pump again
	mu      sync.Mutex
	queue   []*Message
	failed  error // the broker ended the subscription
	over    bool  // the queue overflowed
	// replay is true while Broker.Subscribe runs and delivers history,
	// which does not count against max: the broker bounds it. backlog is
	// how much of it is still queued.
	replay  bool
	backlog int

	pos Position // the subscriber's, moved by one writer at a time

	// Stream subscriptions only, set before the stream is detached.
	hub     *Hub
	name    string
	stop    func()      // leaves the broker
	unwatch func() bool // stops watching the stream's context
}

func (q *subscription) deliver(m *Message, err error) {
	q.mu.Lock()
	switch {
	case q.over || q.failed != nil || q.done:
		q.mu.Unlock()
		return
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
		if q.s != nil {
			q.s.SetWriteDeadline(time.Now())
		}
	default:
		q.queue = append(q.queue, m)
	}
	pump := q.s != nil && !q.writing
	if pump {
		q.writing = true
	}
	wake := q.wake
	q.mu.Unlock()
	if pump {
		go q.pump()
		return
	}
	select {
	case wake <- struct{}{}:
	default:
	}
}

// take moves the queued messages into batch, which it returns, with
// whether the queue overflowed and why the broker ended the subscription.
func (q *subscription) take(batch []*Message) ([]*Message, bool, error) {
	q.mu.Lock()
	defer q.mu.Unlock()
	batch = append(batch[:0], q.queue...)
	clear(q.queue)
	q.queue = q.queue[:0]
	q.backlog = 0
	return batch, q.over, q.failed
}

// subscribe subscribes q to topic name through the broker.
func (h *Hub) subscribe(ctx context.Context, name string, since *Position, q *subscription) (Position, func(), error) {
	q.max, q.replay = h.queue, true
	if q.s == nil {
		q.wake = make(chan struct{}, 1)
	}
	// Stats count the subscription while the broker has it: from before
	// Broker.Subscribe until before its stop, so that a Broker that reports
	// both calls reports counts already changed.
	h.subs.Add(1)
	start, stop, err := h.broker.Subscribe(ctx, name, since, q.deliver)
	q.mu.Lock()
	q.replay = false
	q.mu.Unlock()
	if err != nil {
		h.subs.Add(-1)
		h.log.Warn("wsplex/topic: subscribe failed", "topic", name, "err", err)
		return Position{}, nil, wsplex.Errorf(wsplex.CodeUnavailable, "topic %q: %v", name, err)
	}
	return start, func() { h.subs.Add(-1); stop() }, nil
}

// overflowed counts and logs an overflow and returns its status.
func (h *Hub) overflowed(name string, attrs ...any) error {
	h.overflows.Add(1)
	h.log.Warn("wsplex/topic: subscriber too slow, subscription ended",
		append([]any{"topic", name, "queue", h.queue}, attrs...)...)
	return wsplex.Errorf(wsplex.CodeResourceExhausted, "subscriber too slow: more than %d messages waiting", h.queue)
}

// relay is where a subscription's events go: a subscriber's stream, or
// the loop body of Hub.Subscribe.
type relay interface {
	gap(Position) error
	message(*Message) error
	// batch brackets a run of events that may leave together.
	batch(begin bool)
}

// run relays q's events to r, starting at the subscriber's position pos
// (since, or start without since), until ctx ends or a write fails.
func (h *Hub) run(ctx context.Context, name string, q *subscription, pos, start Position, r relay) error {
	q.pos = pos
	if pos != start {
		q.pos = start
		if err := r.gap(start); err != nil {
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
			if err := q.write(batch, r); err != nil {
				return err
			}
			clear(batch)
			continue
		}
		if failed != nil {
			h.log.Warn("wsplex/topic: broker ended subscription", "topic", name, "err", failed)
			return wsplex.Errorf(wsplex.CodeUnavailable, "topic %q: %v", name, failed)
		}
		select {
		case <-q.wake:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

// serveSubscription answers a subscription, writes what its subscriber
// has missed, and detaches the stream (stream.Stream.Detach): from then
// on a goroutine writes to it only while messages wait, so that an idle
// subscription costs no goroutine.
func (h *Hub) serveSubscription(ctx context.Context, s *stream.Stream) error {
	since, err := position(s.Metadata())
	if err != nil {
		return err
	}
	q := &subscription{s: s, writing: true, hub: h, name: s.Name()}
	start, stop, err := h.subscribe(ctx, s.Name(), since, q)
	if err != nil {
		return err
	}
	q.stop = stop
	q.pos = start
	if since != nil {
		q.pos = *since
	}
	setPosition(s.ResponseMetadata(), q.pos)
	if err := s.Respond(); err != nil {
		q.finish(err)
		return nil
	}
	if q.pos != start {
		q.pos = start
		if err := s.Send(gapEvent(start)); err != nil {
			q.finish(err)
			return nil
		}
	}
	s.Detach()
	q.unwatch = context.AfterFunc(ctx, func() { q.finish(ctx.Err()) })
	q.pump()
	return nil
}

// pumpLinger is how long a pump waits for more once the queue is empty
// before its goroutine ends: a busy subscription keeps one goroutine, which
// a new one per message would cost its stack's growth each time, and an
// idle one has none.
const pumpLinger = time.Second

// pump writes what the subscription's queue holds, waiting up to
// pumpLinger for more, or ends the subscription when the queue
// overflowed, the broker failed or a write failed.
func (q *subscription) pump() {
	var batch []*Message
	var linger *time.Timer
	defer func() {
		if linger != nil {
			linger.Stop()
		}
	}()
	lingered := false
	for {
		q.mu.Lock()
		if q.done {
			q.mu.Unlock()
			return
		}
		if len(q.queue) == 0 && !q.over && q.failed == nil {
			if lingered {
				q.writing = false
				q.mu.Unlock()
				return
			}
			if q.wake == nil {
				q.wake = make(chan struct{}, 1)
			}
			wake := q.wake
			q.mu.Unlock()
			if linger == nil {
				linger = time.NewTimer(pumpLinger)
			} else {
				linger.Reset(pumpLinger)
			}
			select {
			case <-wake:
			case <-linger.C:
				lingered = true
			}
			continue
		}
		lingered = false
		batch = append(batch[:0], q.queue...)
		clear(q.queue)
		q.queue, q.backlog = q.queue[:0], 0
		over, failed := q.over, q.failed
		q.mu.Unlock()
		switch {
		case over:
			q.finish(errOverflow)
			return
		case failed != nil && len(batch) == 0:
			q.finish(failed)
			return
		}
		if err := q.write(batch, streamRelay{q.s}); err != nil {
			q.finish(err)
			return
		}
		clear(batch)
	}
}

// write relays batch, announcing a gap where a message does not follow
// the subscriber's position.
func (q *subscription) write(batch []*Message, r relay) error {
	if len(batch) > 1 {
		r.batch(true) // so that they leave together
		defer r.batch(false)
	}
	for _, m := range batch {
		if m.Epoch != q.pos.Epoch || m.Prev != q.pos.Offset {
			if err := r.gap(Position{Epoch: m.Epoch, Offset: m.Prev}); err != nil {
				return err
			}
		}
		q.pos = m.Position
		if err := r.message(m); err != nil {
			return err
		}
	}
	return nil
}

// streamRelay writes events to a subscriber's stream.
type streamRelay struct{ s *stream.Stream }

func (r streamRelay) gap(p Position) error     { return r.s.Send(gapEvent(p)) }
func (r streamRelay) message(m *Message) error { return r.s.SendBytes(m.encoded()) }
func (r streamRelay) batch(begin bool) {
	if begin {
		r.s.Hold()
	} else {
		r.s.Flush()
	}
}

// finish ends a stream subscription, once: it leaves the broker and ends
// the stream with the status that why calls for.
func (q *subscription) finish(why error) {
	q.mu.Lock()
	if q.done {
		q.mu.Unlock()
		return
	}
	q.done, q.queue = true, nil
	over, wake := q.over, q.wake
	q.mu.Unlock()
	select {
	case wake <- struct{}{}: // a lingering pump ends
	default:
	}
	if q.unwatch != nil {
		q.unwatch()
	}
	if q.stop != nil {
		q.stop()
	}
	h, s := q.hub, q.s
	switch {
	case over:
		s.SetWriteDeadline(time.Time{}) // set by deliver; the status must leave
		s.CloseWithError(h.overflowed(q.name, "remote", s.RemoteAddr().String()))
	case errors.Is(why, context.Canceled) || errors.Is(why, context.DeadlineExceeded) ||
		errors.Is(why, wsplex.ErrPeerClosed) || errors.Is(why, net.ErrClosed):
		s.Close() // the subscriber left, or the session ended
	case why != nil && !errors.Is(why, errOverflow):
		var we *wsplex.Error
		if !errors.As(why, &we) {
			h.log.Warn("wsplex/topic: subscription ended", "topic", q.name, "err", why)
			why = wsplex.Errorf(wsplex.CodeUnavailable, "topic %q: %v", q.name, why)
		}
		s.CloseWithError(why)
	default:
		s.Close()
	}
}

// yieldRelay passes events to the loop body of Hub.Subscribe.
type yieldRelay struct {
	yield func(*Event, error) bool
}

var errStopped = errors.New("loop stopped")

func (r yieldRelay) gap(p Position) error {
	if !r.yield(&Event{Gap: true, Position: p}, nil) {
		return errStopped
	}
	return nil
}

func (r yieldRelay) message(m *Message) error {
	if !r.yield(&Event{Position: m.Position, Prev: m.Prev, Data: m.Data}, nil) {
		return errStopped
	}
	return nil
}

func (yieldRelay) batch(bool) {}

// Subscribe subscribes on the server itself, for code that relays a topic
// elsewhere, such as an RPC handler streaming a topic to its caller. It
// yields the topic's events as the client's Subscribe does, from the next
// message published or after since, gaps included, until the loop stops or
// ctx ends (it yields ctx's error). A loop body that falls more than
// Options.QueueSize messages behind ends the subscription with a
// *wsplex.Error with CodeResourceExhausted, as a slow client's would: to go
// on, subscribe again after the last position seen. An Event's Data is
// shared with the topic's other subscribers: read it, don't change it.
func (h *Hub) Subscribe(ctx context.Context, name string, since *Position) iter.Seq2[*Event, error] {
	return func(yield func(*Event, error) bool) {
		q := &subscription{}
		start, stop, err := h.subscribe(ctx, name, since, q)
		if err != nil {
			yield(nil, err)
			return
		}
		defer stop()
		pos := start
		if since != nil {
			pos = *since
		}
		err = h.run(ctx, name, q, pos, start, yieldRelay{yield})
		switch {
		case err == errStopped:
		case err == errOverflow:
			yield(nil, h.overflowed(name))
		default:
			yield(nil, err)
		}
	}
}

// History returns the messages the broker's history holds for topic name,
// oldest first, and the topic's position after the last of them.
func (h *Hub) History(ctx context.Context, name string) ([]*Message, Position, error) {
	var msgs []*Message
	// A position of no epoch is one the broker never made: it delivers
	// all the history it holds, before Subscribe returns.
	start, stop, err := h.broker.Subscribe(ctx, name, &Position{Epoch: "\x00"}, func(m *Message, err error) {
		if m != nil {
			msgs = append(msgs, m)
		}
	})
	if err != nil {
		return nil, Position{}, wsplex.Errorf(wsplex.CodeUnavailable, "topic %q: %v", name, err)
	}
	stop()
	if len(msgs) > 0 {
		return msgs, msgs[len(msgs)-1].Position, nil
	}
	return nil, start, nil
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
