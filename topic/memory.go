package topic

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"strconv"
	"sync"
	"time"
)

// MemoryOptions configure a MemoryBroker. A nil *MemoryOptions, and the
// zero value of each field, mean the defaults.
type MemoryOptions struct {
	// HistorySize is how many of a topic's latest messages the broker
	// keeps for subscribers that resume. Default 100; negative keeps none.
	HistorySize int
	// HistoryTTL is how long the broker keeps a message in history.
	// Default 5 minutes.
	HistoryTTL time.Duration
}

// MemoryBroker is the in-process Broker: it delivers what one server
// publishes to that server's subscribers and keeps a bounded history per
// topic, so that a subscriber that lost its session resumes without loss
// if it returns within the history's size and age. It holds at most
// HistorySize messages per topic for HistoryTTL, and forgets a topic that
// has neither subscribers nor history. A restarted server starts a new
// epoch: its subscribers learn of the gap when they resume.
type MemoryBroker struct {
	size  int
	ttl   time.Duration
	epoch string

	mu     sync.Mutex
	topics map[string]*memTopic
	made   uint64    // topics created, to give each a fresh epoch
	swept  time.Time // when expired history was last dropped from every topic
}

type memTopic struct {
	mu    sync.Mutex
	epoch string
	last  uint64
	hist  []memEntry // oldest first
	subs  map[*memSub]struct{}
	gone  bool // removed from the broker's map; a caller holding it looks again
}

type memEntry struct {
	m  *Message
	at time.Time
}

type memSub struct {
	deliver func(*Message, error)
}

// NewMemoryBroker returns an empty in-process broker.
func NewMemoryBroker(opts *MemoryOptions) *MemoryBroker {
	var o MemoryOptions
	if opts != nil {
		o = *opts
	}
	if o.HistorySize == 0 {
		o.HistorySize = 100
	}
	if o.HistorySize < 0 {
		o.HistorySize = 0
	}
	if o.HistoryTTL <= 0 {
		o.HistoryTTL = 5 * time.Minute
	}
	var b [6]byte
	rand.Read(b[:])
	return &MemoryBroker{
		size:   o.HistorySize,
		ttl:    o.HistoryTTL,
		epoch:  hex.EncodeToString(b[:]),
		topics: make(map[string]*memTopic),
		swept:  time.Now(),
	}
}

// topic returns the locked topic called name, created if need be.
func (b *MemoryBroker) topic(name string) *memTopic {
	for {
		b.mu.Lock()
		now := time.Now()
		if now.Sub(b.swept) >= b.ttl/4 {
			b.sweepLocked(now)
		}
		t := b.topics[name]
		if t == nil {
			b.made++
			t = &memTopic{
				epoch: b.epoch + "." + strconv.FormatUint(b.made, 10),
				subs:  make(map[*memSub]struct{}),
			}
			b.topics[name] = t
		}
		b.mu.Unlock()
		t.mu.Lock()
		if !t.gone {
			return t
		}
		t.mu.Unlock()
	}
}

// sweepLocked drops expired history from every topic and forgets the
// topics left with neither history nor subscribers.
func (b *MemoryBroker) sweepLocked(now time.Time) {
	b.swept = now
	for name, t := range b.topics {
		t.mu.Lock()
		t.expire(now, b.ttl)
		if len(t.hist) == 0 && len(t.subs) == 0 {
			t.gone = true
			delete(b.topics, name)
		}
		t.mu.Unlock()
	}
}

func (t *memTopic) expire(now time.Time, ttl time.Duration) {
	n := 0
	for n < len(t.hist) && now.Sub(t.hist[n].at) >= ttl {
		t.hist[n] = memEntry{}
		n++
	}
	if n > 0 {
		t.hist = t.hist[n:]
	}
}

// Publish implements Broker.
func (b *MemoryBroker) Publish(ctx context.Context, topic string, data []byte) (Position, error) {
	if err := ctx.Err(); err != nil {
		return Position{}, err
	}
	t := b.topic(topic)
	defer t.mu.Unlock()
	t.last++
	m := &Message{Topic: topic, Position: Position{Epoch: t.epoch, Offset: t.last}, Prev: t.last - 1, Data: data}
	if b.size > 0 {
		now := time.Now()
		t.expire(now, b.ttl)
		if len(t.hist) == b.size {
			t.hist[0] = memEntry{}
			t.hist = t.hist[1:]
		}
		if cap(t.hist) == len(t.hist) {
			// Move the window back to the start of a buffer sized for the
			// whole history rather than growing without bound.
			h := make([]memEntry, len(t.hist), b.size)
			copy(h, t.hist)
			t.hist = h
		}
		t.hist = append(t.hist, memEntry{m: m, at: now})
	}
	for s := range t.subs {
		s.deliver(m, nil)
	}
	return m.Position, nil
}

// Subscribe implements Broker. The history after since is delivered before
// Subscribe returns.
func (b *MemoryBroker) Subscribe(ctx context.Context, topic string, since *Position, deliver func(*Message, error)) (Position, func(), error) {
	if err := ctx.Err(); err != nil {
		return Position{}, nil, err
	}
	t := b.topic(topic)
	t.expire(time.Now(), b.ttl)
	start := Position{Epoch: t.epoch, Offset: t.last}
	if since != nil {
		i := 0
		if since.Epoch == t.epoch {
			for i < len(t.hist) && t.hist[i].m.Offset <= since.Offset {
				i++
			}
		}
		if i < len(t.hist) {
			start.Offset = t.hist[i].m.Prev
		}
		if since.Epoch == t.epoch && since.Offset > t.last {
			// A position this epoch never reached: deliver from now, and the
			// subscriber learns of the mismatch from start.
			i = len(t.hist)
		}
		for _, e := range t.hist[i:] {
			deliver(e.m, nil)
		}
	}
	s := &memSub{deliver: deliver}
	t.subs[s] = struct{}{}
	t.mu.Unlock()
	var once sync.Once
	stop := func() {
		once.Do(func() {
			b.mu.Lock()
			t.mu.Lock()
			delete(t.subs, s)
			if len(t.subs) == 0 && len(t.hist) == 0 && !t.gone {
				// Forget it now, not at the next sweep: subscribing to names
				// that never see a message must not pile up topics.
				t.gone = true
				delete(b.topics, topic)
			}
			t.mu.Unlock()
			b.mu.Unlock()
		})
	}
	return start, stop, nil
}
