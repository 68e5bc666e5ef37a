package wsplexnats

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/wsplex/wsplex/topic"
)

// headerPrev carries a message's Prev: the stream sequence of its topic's
// message before it, 0 if there was none.
const headerPrev = "Wsplex-Prev"

const (
	// maxPublishAttempts bounds the publishes of one message that lose the
	// race for its topic's next place to another publisher.
	maxPublishAttempts = 64
	// maxCachedTopics bounds the topics whose last sequence a Broker
	// remembers to publish without reading it first.
	maxCachedTopics = 4096
)

// Broker is a topic.Broker on a NATS JetStream stream: the Hubs of many
// servers, each with its own Broker on the same stream, deliver what any
// of them publishes to the subscribers of all, and a subscriber resumes on
// any server from a position another gave it. Get one from NewBroker; it
// must be closed. Its methods may be called concurrently.
type Broker struct {
	js     jetstream.JetStream
	stream jetstream.Stream
	name   string // the stream's
	prefix string // of the topics' subjects
	log    *slog.Logger

	mu     sync.Mutex
	epoch  string
	gen    uint64 // counts changes of epoch: last sequences cached before are void
	stale  bool   // the stream may be gone or new: read its creation time before using epoch
	closed bool
	lives  map[string]*live     // the live consumer of each topic with local subscribers
	pubs   map[string]*pubTopic // the publish state of recently published topics
}

var _ topic.Broker = (*Broker)(nil)

// pubTopic serializes one Broker's publishes to a topic and remembers the
// topic's last sequence, so that a publish usually needs no read first.
type pubTopic struct {
	mu    sync.Mutex
	users int // holding or waiting for mu; guarded by Broker.mu
	gen   uint64
	known bool
	last  uint64
}

// NewBroker creates or updates the stream that Options describe and
// returns a Broker on it. ctx bounds this setup only. The stream's
// retention is by limits, discarding old messages: it keeps a topic's
// latest Options.HistorySize messages (MaxMsgsPerSubject) for
// Options.HistoryTTL (MaxAge). Each topic is one subject, so that
// JetStream bounds each topic's history alone and a consumer filtered on
// it reads that topic only.
//
// A position's epoch is the stream's creation time, in nanoseconds since
// 1970, and its offset the message's stream sequence: servers that share
// the stream agree on both, and a stream deleted and recreated, whose
// sequences start again, is a new epoch. NewBroker returns an error if
// the stream cannot be created or updated, for instance when its storage
// would change or its subjects overlap another stream's.
func NewBroker(ctx context.Context, js jetstream.JetStream, opts *Options) (*Broker, error) {
	if js == nil {
		return nil, errors.New("wsplex/nats: nil JetStream")
	}
	o, err := opts.withDefaults()
	if err != nil {
		return nil, err
	}
	storage := jetstream.FileStorage
	if o.MemoryStorage {
		storage = jetstream.MemoryStorage
	}
	s, err := js.CreateOrUpdateStream(ctx, jetstream.StreamConfig{
		Name:              o.Stream,
		Description:       "wsplex topics",
		Subjects:          []string{o.Subject + ".>"},
		Retention:         jetstream.LimitsPolicy,
		Discard:           jetstream.DiscardOld,
		MaxMsgsPerSubject: int64(o.HistorySize),
		MaxAge:            o.HistoryTTL,
		Storage:           storage,
		Replicas:          o.Replicas,
	})
	if err != nil {
		return nil, fmt.Errorf("wsplex/nats: stream %s: %w", o.Stream, err)
	}
	b := &Broker{
		js:     js,
		stream: s,
		name:   o.Stream,
		prefix: o.Subject,
		log:    o.Logger,
		epoch:  epochOf(s.CachedInfo().Created),
		lives:  make(map[string]*live),
		pubs:   make(map[string]*pubTopic),
	}
	return b, nil
}

func epochOf(created time.Time) string {
	return strconv.FormatInt(created.UnixNano(), 10)
}

// subject returns the subject of the topic called name: one token, whatever
// the name holds, so that no name is read as a wildcard or splits in two.
func (b *Broker) subject(name string) (string, error) {
	if name == "" {
		return "", errors.New("wsplex/nats: empty topic name")
	}
	return b.prefix + "." + base64.RawURLEncoding.EncodeToString([]byte(name)), nil
}

// current returns the stream's epoch and its generation, first reading the
// stream's creation time again if the broker saw signs that the stream
// was lost. When the epoch changed, the live consumers of the old one
// fail, so that their subscribers resume in the new one and learn of the
// gap.
func (b *Broker) current(ctx context.Context) (string, uint64, error) {
	b.mu.Lock()
	if b.closed {
		b.mu.Unlock()
		return "", 0, ErrClosed
	}
	if !b.stale {
		defer b.mu.Unlock()
		return b.epoch, b.gen, nil
	}
	b.mu.Unlock()
	info, err := b.stream.Info(ctx)
	if err != nil {
		return "", 0, fmt.Errorf("wsplex/nats: stream %s: %w", b.name, err)
	}
	epoch := epochOf(info.Created)
	var lost []*live
	b.mu.Lock()
	if b.closed {
		b.mu.Unlock()
		return "", 0, ErrClosed
	}
	if epoch != b.epoch {
		b.log.Warn("wsplex/nats: stream recreated: new epoch", "stream", b.name, "epoch", epoch, "old", b.epoch)
		b.epoch = epoch
		b.gen++
		for name, l := range b.lives {
			lost = append(lost, l)
			delete(b.lives, name)
		}
	}
	b.stale = false
	gen := b.gen
	b.mu.Unlock()
	for _, l := range lost {
		l.fail(errors.New("wsplex/nats: stream recreated"))
	}
	return epoch, gen, nil
}

// suspect marks the epoch for a check if err says the stream may be gone.
func (b *Broker) suspect(err error) {
	if streamLost(err) {
		b.mu.Lock()
		b.stale = true
		b.mu.Unlock()
	}
}

// lastSeq returns the stream sequence of subj's last message, 0 if the
// stream holds none.
func (b *Broker) lastSeq(ctx context.Context, subj string) (uint64, error) {
	m, err := b.stream.GetLastMsgForSubject(ctx, subj)
	if errors.Is(err, jetstream.ErrMsgNotFound) {
		return 0, nil
	}
	if err != nil {
		b.suspect(err)
		return 0, err
	}
	return m.Sequence, nil
}

// Publish implements topic.Broker. It stores data as the topic's next
// message, with the stream sequence of the topic's last message as its
// Prev, and publishes only if that is still the topic's last message
// (JetStream's Nats-Expected-Last-Subject-Sequence): so Prev is exact even
// when many servers publish to a topic at once. A publish that loses that
// race tries again after the message that won, which the refusal names
// (or, if it does not, after the topic's last message, read again), up to
// 64 times, with growing random pauses from the second retry on, so that
// a publisher that already knows the last sequence does not starve
// another. A Broker remembers each topic's last sequence, so a publish
// usually costs one round trip, and sends one publish of a topic at a
// time. ctx bounds the whole publish, retries included.
func (b *Broker) Publish(ctx context.Context, name string, data []byte) (topic.Position, error) {
	subj, err := b.subject(name)
	if err != nil {
		return topic.Position{}, err
	}
	epoch, gen, err := b.current(ctx)
	if err != nil {
		return topic.Position{}, err
	}
	p := b.acquirePub(name)
	defer b.releasePub(p)
	if p.gen != gen {
		p.gen, p.known = gen, false
	}
	for attempt := 1; ; attempt++ {
		if !p.known {
			last, err := b.lastSeq(ctx, subj)
			if err != nil {
				return topic.Position{}, fmt.Errorf("wsplex/nats: publish to %q: %w", name, err)
			}
			p.last, p.known = last, true
		}
		msg := &nats.Msg{Subject: subj, Data: data, Header: nats.Header{}}
		msg.Header.Set(headerPrev, strconv.FormatUint(p.last, 10))
		ack, err := b.js.PublishMsg(ctx, msg,
			jetstream.WithExpectStream(b.name),
			jetstream.WithExpectLastSequencePerSubject(p.last))
		if err == nil {
			p.last = ack.Sequence
			return topic.Position{Epoch: epoch, Offset: ack.Sequence}, nil
		}
		p.known = false
		if !wrongLastSequence(err) || attempt == maxPublishAttempts {
			b.suspect(err)
			return topic.Position{}, fmt.Errorf("wsplex/nats: publish to %q: %w", name, err)
		}
		// Another publisher got there first. The refusal says which
		// message is now the topic's last, saving a read.
		if last, ok := actualLast(err); ok {
			p.last, p.known = last, true
		}
		if err := backoff(ctx, attempt); err != nil {
			return topic.Position{}, fmt.Errorf("wsplex/nats: publish to %q: %w", name, err)
		}
	}
}

// actualLast returns the sequence a "wrong last sequence" refusal names as
// the subject's last, if it names one.
func actualLast(err error) (uint64, bool) {
	var apiErr *jetstream.APIError
	if !errors.As(err, &apiErr) {
		return 0, false
	}
	const prefix = "wrong last sequence: "
	d := apiErr.Description
	if !strings.HasPrefix(d, prefix) {
		return 0, false
	}
	n, err := strconv.ParseUint(d[len(prefix):], 10, 64)
	return n, err == nil
}

// backoff waits before the next attempt of a publish that lost attempt
// races in a row: at once after the first, then up to a random time that
// doubles, to 10 ms, so that a publisher on a busy topic is not starved
// by another that keeps winning because it already knows the last
// sequence.
func backoff(ctx context.Context, attempt int) error {
	if attempt < 2 {
		return ctx.Err()
	}
	d := time.Duration(rand.Int64N(int64(min(100*time.Microsecond<<min(attempt, 10), 10*time.Millisecond))))
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// acquirePub returns the locked publish state of the topic called name.
func (b *Broker) acquirePub(name string) *pubTopic {
	b.mu.Lock()
	p := b.pubs[name]
	if p == nil {
		p = &pubTopic{}
		b.pubs[name] = p
	}
	p.users++
	b.mu.Unlock()
	p.mu.Lock()
	return p
}

// releasePub unlocks p and, while the broker remembers more topics than
// maxCachedTopics, forgets one that nobody uses (a random one: map order).
func (b *Broker) releasePub(p *pubTopic) {
	p.mu.Unlock()
	b.mu.Lock()
	defer b.mu.Unlock()
	p.users--
	if len(b.pubs) <= maxCachedTopics {
		return
	}
	for name, q := range b.pubs {
		if q.users == 0 {
			delete(b.pubs, name)
			return
		}
	}
}

// Close ends every subscription, passing ErrClosed to its deliver func,
// stops the broker's consumers and waits until they have stopped. Later
// calls to Publish and Subscribe return ErrClosed. Close leaves the
// stream, its messages and the NATS connection alone. It is idempotent.
func (b *Broker) Close() error {
	b.mu.Lock()
	if b.closed {
		b.mu.Unlock()
		return nil
	}
	b.closed = true
	lives := make([]*live, 0, len(b.lives))
	for _, l := range b.lives {
		lives = append(lives, l)
	}
	clear(b.lives)
	b.mu.Unlock()
	for _, l := range lives {
		<-l.ready
		l.fail(ErrClosed)
		l.stop(true)
	}
	return nil
}
