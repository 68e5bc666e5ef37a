package wsplexnats

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"sync"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/wsplex/wsplex/topic"
)

const (
	// liveIdle is how long the NATS server keeps a live consumer after its
	// last pull, when its Broker stopped it or lost its connection.
	liveIdle = 30 * time.Second
	// historyIdle is the same for the consumers that read history, which
	// are stopped as soon as they have read it.
	historyIdle = 5 * time.Second
	// historyWait bounds the wait for the next message of history, which
	// only times out when what the history had left expired while being
	// read (or the server is very slow): delivery then goes on with the
	// live messages, and the subscriber learns of what is missing as a gap.
	historyWait = 5 * time.Second
)

// live is the one consumer of a topic on a Broker that delivers its new
// messages to all the topic's subscriptions on this Broker, so that a
// thousand subscribers of a topic cost the NATS server one consumer per
// Broker, not a thousand.
type live struct {
	b     *Broker
	topic string
	subj  string
	ready chan struct{} // closed once started, or failed to
	err   error         // why it failed to start; set before ready is closed
	refs  int           // subscriptions attached or attaching; guarded by Broker.mu

	// Set before ready is closed, read-only after.
	epoch string
	cc    jetstream.ConsumeContext

	stopOnce sync.Once

	mu     sync.Mutex
	last   uint64 // offset of the last message fanned out, or the topic's last when it started
	subs   map[*subscription]struct{}
	failed error
}

// subscription is one call to Subscribe: it delivers in order, each
// message once, and never after stop. Every call to deliver happens with
// mu held.
type subscription struct {
	deliver func(*topic.Message, error)

	mu        sync.Mutex
	done      bool             // stopped, or ended by deliver(nil, err)
	buffering bool             // Subscribe is delivering history: keep live messages in buf
	buf       []*topic.Message // live messages that came while buffering
	last      uint64           // offset of the last message delivered, or the start
}

// push hands a live message to s, or keeps it for later while s delivers
// history.
func (s *subscription) push(m *topic.Message) {
	s.mu.Lock()
	defer s.mu.Unlock()
	switch {
	case s.done:
	case s.buffering:
		s.buf = append(s.buf, m)
	case m.Offset > s.last:
		s.last = m.Offset
		s.deliver(m, nil)
	}
}

// end ends s with err, unless it has ended.
func (s *subscription) end(err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.done {
		s.done, s.buf = true, nil
		s.deliver(nil, err)
	}
}

// Subscribe implements topic.Broker.
//
// Each topic with subscribers on a Broker has one live consumer, an
// ordered consumer filtered on the topic's subject, shared by them all: it
// starts with the first subscription and stops with the last. With since
// nil, a subscription joins it at once, and start is the offset of the
// last message it delivered (or of the topic's last when it started), so
// that every later message is delivered and no earlier one. With since
// set, the subscription joins it keeping what it delivers aside, reads
// the history after since with a consumer of its own until it meets what
// the live consumer brings, delivers that history, then what it kept
// aside that is newer, then the live messages as they come. The history
// is delivered before Subscribe returns; ctx bounds reading it.
//
// deliver must not call stop. A subscription ends with deliver(nil, err)
// when its live consumer fails for good: the NATS connection closed, the
// consumer or the stream deleted (a recreated stream is a new epoch, so
// its subscribers must resume), or the Broker closed (ErrClosed).
func (b *Broker) Subscribe(ctx context.Context, name string, since *topic.Position, deliver func(*topic.Message, error)) (topic.Position, func(), error) {
	if deliver == nil {
		return topic.Position{}, nil, errors.New("wsplex/nats: nil deliver func")
	}
	subj, err := b.subject(name)
	if err != nil {
		return topic.Position{}, nil, err
	}
	s := &subscription{deliver: deliver, buffering: since != nil}
	l, joined, err := b.join(ctx, name, subj, s)
	if err == ErrClosed {
		return topic.Position{}, nil, err
	}
	if err != nil {
		return topic.Position{}, nil, fmt.Errorf("wsplex/nats: subscribe to %q: %w", name, err)
	}
	var once sync.Once
	stop := func() {
		once.Do(func() {
			s.mu.Lock()
			s.done, s.buf = true, nil
			s.mu.Unlock()
			l.mu.Lock()
			delete(l.subs, s)
			l.mu.Unlock()
			b.release(l)
		})
	}
	if since == nil {
		return topic.Position{Epoch: l.epoch, Offset: joined}, stop, nil
	}
	start, err := b.resume(ctx, l, s, *since, joined)
	if err != nil {
		stop()
		return topic.Position{}, nil, fmt.Errorf("wsplex/nats: subscribe to %q: %w", name, err)
	}
	return start, stop, nil
}

// join attaches s to the topic's live consumer, started if need be, and
// returns the offset of the last message that consumer delivered before s
// joined: every later one goes to s.
func (b *Broker) join(ctx context.Context, name, subj string, s *subscription) (*live, uint64, error) {
	for tries := 0; ; tries++ {
		l, err := b.attach(ctx, name, subj)
		if err != nil {
			return nil, 0, err
		}
		l.mu.Lock()
		if l.failed == nil {
			joined := l.last
			s.mu.Lock()
			s.last = joined
			s.mu.Unlock()
			l.subs[s] = struct{}{}
			l.mu.Unlock()
			return l, joined, nil
		}
		err = l.failed
		l.mu.Unlock()
		b.release(l)
		if tries > 0 {
			return nil, 0, err
		}
		// It failed just now and is no longer the topic's: start another.
	}
}

// attach returns the topic's live consumer with a reference taken,
// starting it if it has none.
func (b *Broker) attach(ctx context.Context, name, subj string) (*live, error) {
	for tries := 0; ; tries++ {
		epoch, _, err := b.current(ctx)
		if err != nil {
			return nil, err
		}
		b.mu.Lock()
		if b.closed {
			b.mu.Unlock()
			return nil, ErrClosed
		}
		l := b.lives[name]
		start := l == nil
		if start {
			l = &live{b: b, topic: name, subj: subj, ready: make(chan struct{}), subs: make(map[*subscription]struct{})}
			b.lives[name] = l
		}
		l.refs++
		b.mu.Unlock()
		if start {
			l.err = l.start(ctx, epoch)
			if l.err != nil {
				b.mu.Lock()
				if b.lives[name] == l {
					delete(b.lives, name)
				}
				b.mu.Unlock()
			}
			close(l.ready)
		} else {
			select {
			case <-l.ready:
			case <-ctx.Done():
				b.release(l)
				return nil, ctx.Err()
			}
		}
		if l.err == nil {
			return l, nil
		}
		b.release(l)
		if start || tries > 0 {
			return nil, l.err
		}
		// Another subscription's start failed, maybe for its own ctx:
		// try once ourselves.
	}
}

// release drops a reference to l and stops l with the last one.
func (b *Broker) release(l *live) {
	b.mu.Lock()
	l.refs--
	last := l.refs == 0
	if last && b.lives[l.topic] == l {
		delete(b.lives, l.topic)
	}
	b.mu.Unlock()
	if last {
		l.stop(false)
	}
}

// start reads the topic's last sequence and starts consuming after it.
// It starts from that sequence rather than with DeliverNew so that no
// message published in between is missed, neither now nor when the
// ordered consumer recreates itself before its first message (it would
// apply DeliverNew again).
func (l *live) start(ctx context.Context, epoch string) error {
	last, err := l.b.lastSeq(ctx, l.subj)
	if err != nil {
		return err
	}
	l.epoch, l.last = epoch, last
	cons, err := l.b.stream.OrderedConsumer(ctx, jetstream.OrderedConsumerConfig{
		FilterSubjects:    []string{l.subj},
		DeliverPolicy:     jetstream.DeliverByStartSequencePolicy,
		OptStartSeq:       last + 1,
		InactiveThreshold: liveIdle,
	})
	if err != nil {
		l.b.suspect(err)
		return err
	}
	l.cc, err = cons.Consume(l.handle, jetstream.ConsumeErrHandler(l.consumeError))
	if err != nil {
		return err
	}
	l.b.log.Debug("wsplex/nats: live consumer started", "topic", l.topic, "after", last)
	return nil
}

// stop stops l's consumer, once; with wait, it waits until the consumer
// has stopped.
func (l *live) stop(wait bool) {
	l.stopOnce.Do(func() {
		if l.cc != nil {
			l.cc.Stop()
			l.b.log.Debug("wsplex/nats: live consumer stopped", "topic", l.topic)
		}
	})
	if wait && l.cc != nil {
		<-l.cc.Closed()
	}
}

// handle fans a message of the live consumer out to the subscriptions. The
// consumer calls it from one goroutine, in stream order.
func (l *live) handle(msg jetstream.Msg) {
	m, _, err := l.message(msg)
	if err != nil {
		l.b.log.Warn("wsplex/nats: unreadable message", "topic", l.topic, "err", err)
		return
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.failed != nil || m.Offset <= l.last {
		return
	}
	l.last = m.Offset
	for s := range l.subs {
		s.push(m)
	}
}

// consumeError ends l's subscriptions when its consumer cannot go on. The
// ordered consumer recovers from the rest (missed heartbeats, reconnects)
// by itself, resuming after the last message it delivered. It runs with the
// consumer's lock held, so it must not stop the consumer: the last release
// does.
func (l *live) consumeError(_ jetstream.ConsumeContext, err error) {
	if !consumerFatal(err) {
		// Missed heartbeats: the consumer will recreate itself after the
		// last message it delivered. Should the stream have been deleted
		// and created again meanwhile, it would go on in the new stream,
		// so the Broker reads the stream's creation time again before its
		// next Publish or Subscribe, and ends the subscriptions of the
		// old epoch.
		l.b.log.Debug("wsplex/nats: live consumer error", "topic", l.topic, "err", err)
		l.b.mu.Lock()
		l.b.stale = true
		l.b.mu.Unlock()
		return
	}
	l.b.log.Warn("wsplex/nats: live consumer failed", "topic", l.topic, "err", err)
	b := l.b
	b.mu.Lock()
	if b.lives[l.topic] == l {
		delete(b.lives, l.topic)
	}
	if streamLost(err) {
		b.stale = true
	}
	b.mu.Unlock()
	l.fail(fmt.Errorf("wsplex/nats: consumer of %q: %w", l.topic, err))
}

// fail ends every subscription of l with err, once.
func (l *live) fail(err error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.failed != nil {
		return
	}
	l.failed = err
	for s := range l.subs {
		s.end(err)
	}
}

// message makes a topic.Message of msg.
func (l *live) message(msg jetstream.Msg) (*topic.Message, *jetstream.MsgMetadata, error) {
	md, err := msg.Metadata()
	if err != nil {
		return nil, nil, err
	}
	// A message without a valid Wsplex-Prev, which no Broker published,
	// gets Prev 0: its subscribers see a gap rather than a false link.
	prev, _ := strconv.ParseUint(msg.Headers().Get(headerPrev), 10, 64)
	return &topic.Message{
		Topic:    l.topic,
		Position: topic.Position{Epoch: l.epoch, Offset: md.Sequence.Stream},
		Prev:     prev,
		Data:     msg.Data(),
	}, md, nil
}

// resume delivers to s, which joined l keeping its live messages aside,
// the history after since, then what it kept aside, and returns the
// subscription's start, following topic.Broker's contract: start is the
// Prev of the first message delivered, or the topic's last offset when
// there is none, so that start == since exactly when nothing was lost.
// The live consumer delivers to s every message after joined.
func (b *Broker) resume(ctx context.Context, l *live, s *subscription, since topic.Position, joined uint64) (topic.Position, error) {
	var (
		from, until uint64 // read history from, until at least
		read        bool
	)
	switch {
	case since.Epoch != l.epoch:
		from, until, read = 1, joined, true // all the history held
	case since.Offset < joined:
		from, until, read = since.Offset+1, joined, true
	case since.Offset > joined:
		// The live consumer has not delivered since yet, or since was
		// never reached: ask the stream.
		last, err := b.lastSeq(ctx, l.subj)
		if err != nil {
			return topic.Position{}, err
		}
		if last > since.Offset {
			from, until, read = since.Offset+1, last, true
		} else {
			joined = last
		}
	}
	var hist []*topic.Message
	if read && until > 0 {
		var err error
		if hist, err = b.history(ctx, l, from, until); err != nil {
			return topic.Position{}, err
		}
		joined = until
	}
	start := topic.Position{Epoch: l.epoch, Offset: joined}
	if len(hist) > 0 {
		start.Offset = hist[0].Prev
	}

	s.mu.Lock()
	defer s.mu.Unlock()
	if s.done {
		return start, nil
	}
	s.last = start.Offset
	for _, batch := range [][]*topic.Message{hist, s.buf} {
		for _, m := range batch {
			if m.Offset > s.last {
				s.last = m.Offset
				s.deliver(m, nil)
			}
		}
	}
	s.buf, s.buffering = nil, false
	return start, nil
}

// history reads the topic's messages from stream sequence from until one
// at or after until, or the end of the stream.
func (b *Broker) history(ctx context.Context, l *live, from, until uint64) ([]*topic.Message, error) {
	cons, err := b.stream.OrderedConsumer(ctx, jetstream.OrderedConsumerConfig{
		FilterSubjects:    []string{l.subj},
		DeliverPolicy:     jetstream.DeliverByStartSequencePolicy,
		OptStartSeq:       from,
		InactiveThreshold: historyIdle,
	})
	if err != nil {
		b.suspect(err)
		return nil, err
	}
	if info := cons.CachedInfo(); info != nil && info.NumPending == 0 {
		return nil, nil
	}
	it, err := cons.Messages()
	if err != nil {
		return nil, err
	}
	defer it.Stop()
	var hist []*topic.Message
	for {
		wctx, cancel := context.WithTimeout(ctx, historyWait)
		msg, err := it.Next(jetstream.NextContext(wctx))
		cancel()
		if err != nil {
			if ctx.Err() != nil {
				return nil, ctx.Err()
			}
			if errors.Is(err, context.DeadlineExceeded) {
				b.log.Warn("wsplex/nats: history ended early", "topic", l.topic, "read", len(hist))
				return hist, nil
			}
			b.suspect(err)
			return nil, err
		}
		m, md, err := l.message(msg)
		if err != nil {
			return nil, err
		}
		hist = append(hist, m)
		if m.Offset >= until || md.NumPending == 0 {
			return hist, nil
		}
	}
}
