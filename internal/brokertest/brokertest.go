// Package brokertest checks that a topic.Broker keeps the contract written
// on topic.Broker: every broker, the in-process one and those shared by
// many servers, runs the same checks, as x/net's nettest.TestConn does for
// net.Conn. Run it from a test:
//
//	func TestBroker(t *testing.T) {
//		brokertest.Run(t, func(t *testing.T, opts brokertest.Options) []topic.Broker {
//			return []topic.Broker{topic.NewMemoryBroker(&topic.MemoryOptions{HistorySize: opts.HistorySize})}
//		})
//	}
//
// The brokers one call returns share one message space: what one
// publishes, the others deliver, with positions that any of them resumes
// from, as the brokers of many servers on one NATS stream do. The checks
// publish and subscribe through all of them.
package brokertest

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/wsplex/wsplex/topic"
)

// Options say what the brokers of one call must be like.
type Options struct {
	// HistorySize is how many of a topic's latest messages the brokers
	// keep for subscribers that resume, and no more: the checks of gaps
	// count on older ones being dropped.
	HistorySize int
}

// NewBrokers returns fresh brokers that share one message space, empty,
// configured as opts says. They are released when t ends.
type NewBrokers func(t *testing.T, opts Options) []topic.Broker

// patience bounds every wait for deliveries: a broker that has not
// delivered what it must by then fails the check.
const patience = 30 * time.Second

// Run checks the brokers that newBrokers makes, each check in a subtest
// with brokers of its own.
func Run(t *testing.T, newBrokers NewBrokers) {
	checks := []struct {
		name string
		f    func(*testing.T, NewBrokers)
	}{
		{"Order", testOrder},
		{"Start", testStart},
		{"Resume", testResume},
		{"ResumeWhilePublishing", testResumeWhilePublishing},
		{"Gap", testGap},
		{"UnknownEpoch", testUnknownEpoch},
		{"Stop", testStop},
		{"ManySubscribers", testManySubscribers},
		{"TopicsSeparate", testTopicsSeparate},
	}
	for _, c := range checks {
		t.Run(c.name, func(t *testing.T) { c.f(t, newBrokers) })
	}
}

// brokers calls newBrokers and checks that it made at least one broker.
func brokers(t *testing.T, newBrokers NewBrokers, opts Options) []topic.Broker {
	t.Helper()
	bs := newBrokers(t, opts)
	if len(bs) == 0 {
		t.Fatal("newBrokers returned no broker")
	}
	return bs
}

// recorder is a subscription's deliver func that keeps what it is given
// and checks the rules every deliver func may count on: never called
// concurrently, never after stop returned, nothing after an error.
type recorder struct {
	t    *testing.T
	name string

	in      atomic.Bool // a deliver call is running
	stopped atomic.Bool // stop has returned
	changed chan struct{}

	mu   sync.Mutex
	msgs []*topic.Message
	err  error
}

func newRecorder(t *testing.T, name string) *recorder {
	return &recorder{t: t, name: name, changed: make(chan struct{}, 1)}
}

func (r *recorder) deliver(m *topic.Message, err error) {
	if !r.in.CompareAndSwap(false, true) {
		r.t.Errorf("%s: deliver called while another call runs", r.name)
		return
	}
	defer r.in.Store(false)
	if r.stopped.Load() {
		r.t.Errorf("%s: deliver(%v, %v) after stop returned", r.name, m != nil, err)
	}
	r.mu.Lock()
	switch {
	case r.err != nil:
		r.t.Errorf("%s: deliver after deliver(nil, %v)", r.name, r.err)
	case m == nil && err == nil:
		r.t.Errorf("%s: deliver(nil, nil)", r.name)
	case m != nil && err != nil:
		r.t.Errorf("%s: deliver with both a message and %v", r.name, err)
	case m == nil:
		r.err = err
	default:
		r.msgs = append(r.msgs, m)
	}
	r.mu.Unlock()
	select {
	case r.changed <- struct{}{}:
	default:
	}
}

// snapshot returns the messages delivered so far.
func (r *recorder) snapshot() []*topic.Message {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.msgs)
}

// wait waits until r has at least n messages, and returns them all.
func (r *recorder) wait(t *testing.T, n int) []*topic.Message {
	t.Helper()
	timer := time.NewTimer(patience)
	defer timer.Stop()
	for {
		r.mu.Lock()
		msgs, err := slices.Clone(r.msgs), r.err
		r.mu.Unlock()
		if len(msgs) >= n {
			return msgs
		}
		if err != nil {
			t.Fatalf("%s: subscription ended after %d of %d messages: %v", r.name, len(msgs), n, err)
		}
		select {
		case <-r.changed:
		case <-timer.C:
			t.Fatalf("%s: %d of %d messages after %v", r.name, len(msgs), n, patience)
		}
	}
}

// sub is a subscription under test.
type sub struct {
	*recorder
	start topic.Position
	stop  func()
}

// subscribe subscribes to name on b; the subscription stops when t ends.
func subscribe(t *testing.T, b topic.Broker, name string, since *topic.Position, label string) *sub {
	t.Helper()
	r := newRecorder(t, label)
	start, stop, err := b.Subscribe(t.Context(), name, since, r.deliver)
	if err != nil {
		t.Fatalf("%s: Subscribe(%q, %v): %v", label, name, since, err)
	}
	s := &sub{recorder: r, start: start, stop: func() {
		stop()
		r.stopped.Store(true)
	}}
	t.Cleanup(s.stop)
	return s
}

// publish publishes data to name on b and returns its position.
func publish(t testing.TB, b topic.Broker, name, data string) topic.Position {
	t.Helper()
	p, err := b.Publish(context.Background(), name, []byte(data))
	if err != nil {
		t.Fatalf("Publish(%q, %q): %v", name, data, err)
	}
	if p.Offset == 0 {
		t.Fatalf("Publish(%q, %q) returned offset 0", name, data)
	}
	return p
}

// publishN publishes n messages "<prefix>-<i>" to name, round robin over
// brokers, and returns their positions.
func publishN(t testing.TB, bs []topic.Broker, name, prefix string, n int) []topic.Position {
	t.Helper()
	ps := make([]topic.Position, n)
	for i := range n {
		ps[i] = publish(t, bs[i%len(bs)], name, fmt.Sprintf("%s-%d", prefix, i))
	}
	return ps
}

// expect checks that msgs are exactly the messages at positions want,
// with data want's data, and that they chain from start: each one's Prev
// is the offset before it.
func expect(t *testing.T, label string, start topic.Position, msgs []*topic.Message, want []topic.Position, data []string) {
	t.Helper()
	if len(msgs) != len(want) {
		t.Errorf("%s: %d messages %s, want %d %s", label, len(msgs), describe(msgs), len(want), data)
		return
	}
	checkChain(t, label, start, msgs)
	for i, m := range msgs {
		if m.Position != want[i] || string(m.Data) != data[i] {
			t.Errorf("%s: message %d is %q at %v, want %q at %v", label, i, m.Data, m.Position, data[i], want[i])
		}
	}
}

// checkChain checks that msgs follow start and each other: same epoch,
// each one's Prev the offset of the one before, offsets growing.
func checkChain(t *testing.T, label string, start topic.Position, msgs []*topic.Message) {
	t.Helper()
	prev := start.Offset
	for i, m := range msgs {
		if m.Epoch != start.Epoch {
			t.Errorf("%s: message %d has epoch %q, want %q", label, i, m.Epoch, start.Epoch)
		}
		if m.Prev != prev {
			t.Errorf("%s: message %d (%q, offset %d) has Prev %d, want %d", label, i, m.Data, m.Offset, m.Prev, prev)
		}
		if m.Offset <= m.Prev {
			t.Errorf("%s: message %d has offset %d not after its Prev %d", label, i, m.Offset, m.Prev)
		}
		prev = m.Offset
	}
}

func describe(msgs []*topic.Message) string {
	var sb strings.Builder
	sb.WriteByte('[')
	for i, m := range msgs {
		if i > 0 {
			sb.WriteByte(' ')
		}
		fmt.Fprintf(&sb, "%s@%d", m.Data, m.Offset)
	}
	sb.WriteByte(']')
	return sb.String()
}

// after returns the positions and data of messages k+1 and on of a
// sequence published by publishN.
func after(ps []topic.Position, prefix string, k int) ([]topic.Position, []string) {
	var data []string
	for i := k + 1; i < len(ps); i++ {
		data = append(data, fmt.Sprintf("%s-%d", prefix, i))
	}
	return slices.Clone(ps[k+1:]), data
}

// testOrder: publishers on every broker at once; every subscriber on every
// broker gets every message once, all in one order that keeps each
// publisher's, with positions that chain and match what Publish returned.
func testOrder(t *testing.T, newBrokers NewBrokers) {
	const (
		publishersPerBroker = 2
		perPublisher        = 40
		subsPerBroker       = 2
	)
	bs := brokers(t, newBrokers, Options{HistorySize: 1000})
	const name = "/order"
	var subs []*sub
	for i, b := range bs {
		for j := range subsPerBroker {
			s := subscribe(t, b, name, nil, fmt.Sprintf("broker %d subscriber %d", i, j))
			if s.start.Offset != 0 {
				t.Errorf("%s: start %v on an empty topic, want offset 0", s.name, s.start)
			}
			subs = append(subs, s)
		}
	}
	epoch := subs[0].start.Epoch
	for _, s := range subs {
		if s.start.Epoch != epoch {
			t.Errorf("%s: epoch %q, %s had %q: brokers of one space must agree", s.name, s.start.Epoch, subs[0].name, epoch)
		}
	}

	var (
		wg        sync.WaitGroup
		mu        sync.Mutex
		published = map[string]topic.Position{}
	)
	for i, b := range bs {
		for j := range publishersPerBroker {
			wg.Go(func() {
				for k := range perPublisher {
					data := fmt.Sprintf("b%d.p%d.%d", i, j, k)
					p, err := b.Publish(context.Background(), name, []byte(data))
					if err != nil {
						t.Errorf("Publish(%q): %v", data, err)
						return
					}
					mu.Lock()
					published[data] = p
					mu.Unlock()
				}
			})
		}
	}
	wg.Wait()
	if t.Failed() {
		t.FailNow()
	}
	total := len(bs) * publishersPerBroker * perPublisher
	end := publish(t, bs[0], name, "end")

	var first []*topic.Message
	for _, s := range subs {
		msgs := s.wait(t, total+1)
		if len(msgs) != total+1 || string(msgs[total].Data) != "end" || msgs[total].Position != end {
			t.Errorf("%s: got %d messages, want %d then \"end\" at %v: the last is %q at %v", s.name, len(msgs), total, end, msgs[len(msgs)-1].Data, msgs[len(msgs)-1].Position)
			continue
		}
		msgs = msgs[:total]
		checkChain(t, s.name, s.start, msgs)
		seen := map[string]bool{}
		next := map[string]int{} // publisher -> next k
		for _, m := range msgs {
			data := string(m.Data)
			if seen[data] {
				t.Errorf("%s: %q delivered twice", s.name, data)
			}
			seen[data] = true
			if p, ok := published[data]; !ok || p != m.Position {
				t.Errorf("%s: %q at %v, but Publish returned %v", s.name, data, m.Position, p)
			}
			var bi, pj, k int
			if _, err := fmt.Sscanf(data, "b%d.p%d.%d", &bi, &pj, &k); err != nil {
				t.Errorf("%s: unexpected message %q", s.name, data)
				continue
			}
			pub := fmt.Sprintf("b%d.p%d", bi, pj)
			if k != next[pub] {
				t.Errorf("%s: %q after %s.%d: publisher's order lost", s.name, data, pub, next[pub]-1)
			}
			next[pub] = k + 1
		}
		if first == nil {
			first = msgs
			continue
		}
		for i := range msgs {
			if msgs[i].Position != first[i].Position {
				t.Errorf("%s: message %d is %q at %v, %s got %q at %v: one order for all", s.name, i, msgs[i].Data, msgs[i].Position, subs[0].name, first[i].Data, first[i].Position)
				break
			}
		}
	}
}

// testStart: the start of a subscription without since is the topic's
// last position, and of one with since, since itself when nothing was
// lost, otherwise the Prev of the first message delivered, or the topic's
// current position.
func testStart(t *testing.T, newBrokers NewBrokers) {
	bs := brokers(t, newBrokers, Options{HistorySize: 100})
	const name = "/start"
	ps := publishN(t, bs, name, "m", 5)
	epoch, last := ps[0].Epoch, ps[4]
	type tc struct {
		label string
		since *topic.Position
		start topic.Position
		k     int // the messages after ps[k] come, then "end"
	}
	var cases []tc
	for i := range bs {
		cases = append(cases,
			tc{fmt.Sprintf("broker %d: no since", i), nil, last, 4},
			tc{fmt.Sprintf("broker %d: since the last", i), &last, last, 4},
			tc{fmt.Sprintf("broker %d: since the third", i), &ps[2], ps[2], 2},
			tc{fmt.Sprintf("broker %d: since beyond the last", i), &topic.Position{Epoch: epoch, Offset: last.Offset + 1000}, last, 4},
		)
	}
	var subs []*sub
	for i, c := range cases {
		s := subscribe(t, bs[i/4], name, c.since, c.label)
		if s.start != c.start {
			t.Errorf("%s: start %v, want %v", c.label, s.start, c.start)
		}
		subs = append(subs, s)
	}
	end := publish(t, bs[len(bs)-1], name, "end")
	for i, c := range cases {
		want, data := after(ps, "m", c.k)
		want, data = append(want, end), append(data, "end")
		expect(t, c.label, subs[i].start, subs[i].wait(t, len(want)), want, data)
	}
}

// testResume: a subscriber resumes from any position of the history, on
// any broker, and gets exactly the messages after it: none lost, none
// repeated.
func testResume(t *testing.T, newBrokers NewBrokers) {
	bs := brokers(t, newBrokers, Options{HistorySize: 100})
	const name = "/resume"
	ps := publishN(t, bs, name, "m", 10)
	origin := topic.Position{Epoch: ps[0].Epoch}
	type tc struct {
		label string
		since topic.Position
		k     int
	}
	var cases []tc
	for i := range bs {
		cases = append(cases,
			tc{fmt.Sprintf("broker %d: from the start", i), origin, -1},
			tc{fmt.Sprintf("broker %d: after the first", i), ps[0], 0},
			tc{fmt.Sprintf("broker %d: after the fifth", i), ps[4], 4},
			tc{fmt.Sprintf("broker %d: after the ninth", i), ps[8], 8},
		)
	}
	var subs []*sub
	for i, c := range cases {
		s := subscribe(t, bs[i/4], name, &c.since, c.label)
		if s.start != c.since {
			t.Errorf("%s: start %v, want since %v: the history holds all after it", c.label, s.start, c.since)
		}
		subs = append(subs, s)
	}
	end := publish(t, bs[0], name, "end")
	for i, c := range cases {
		want, data := after(ps, "m", c.k)
		want, data = append(want, end), append(data, "end")
		expect(t, c.label, subs[i].start, subs[i].wait(t, len(want)), want, data)
	}
}

// testResumeWhilePublishing: subscribers resume while publishers run on
// every broker; each gets the messages after its position exactly once,
// in the order a subscriber that never left saw them.
func testResumeWhilePublishing(t *testing.T, newBrokers NewBrokers) {
	const (
		before     = 10
		perBroker  = 60
		resumeEach = 4 // resumes per broker, spread over the publishing
	)
	bs := brokers(t, newBrokers, Options{HistorySize: 1000})
	const name = "/resume-while-publishing"
	witness := subscribe(t, bs[0], name, nil, "witness")
	ps := publishN(t, bs, name, "m", before)

	var wg sync.WaitGroup
	published := make(chan struct{}, len(bs)*perBroker)
	for i, b := range bs {
		wg.Go(func() {
			for k := range perBroker {
				if _, err := b.Publish(context.Background(), name, fmt.Appendf(nil, "b%d-%d", i, k)); err != nil {
					t.Errorf("Publish: %v", err)
					return
				}
				published <- struct{}{}
			}
		})
	}
	var subs []*sub
	var sinces []topic.Position
	for r := range resumeEach {
		// Resume from a position reached before or while publishing.
		for range perBroker / resumeEach / 2 {
			<-published
		}
		for i, b := range bs {
			since := ps[(r*3+i)%before]
			if r%2 == 1 {
				// A position the witness saw while the publishers run.
				if msgs := witness.snapshot(); len(msgs) > 0 {
					since = msgs[len(msgs)-1].Position
				}
			}
			s := subscribe(t, b, name, &since, fmt.Sprintf("resume %d on broker %d after %d", r, i, since.Offset))
			if s.start != since {
				t.Errorf("%s: start %v, want since %v", s.name, s.start, since)
			}
			subs, sinces = append(subs, s), append(sinces, since)
		}
	}
	wg.Wait()
	if t.Failed() {
		t.FailNow()
	}
	publish(t, bs[0], name, "end")
	total := before + len(bs)*perBroker + 1
	all := witness.wait(t, total)
	checkChain(t, witness.name, witness.start, all)
	if len(all) != total {
		t.Fatalf("witness got %d messages, want %d", len(all), total)
	}
	for i, s := range subs {
		k := slices.IndexFunc(all, func(m *topic.Message) bool { return m.Position == sinces[i] })
		if k < 0 {
			t.Fatalf("%s: the witness never saw %v", s.name, sinces[i])
		}
		want := all[k+1:]
		got := s.wait(t, len(want))
		if len(got) != len(want) {
			t.Errorf("%s: %d messages, want %d", s.name, len(got), len(want))
			continue
		}
		for j := range got {
			if got[j].Position != want[j].Position {
				t.Errorf("%s: message %d is %q at %v, want %q at %v", s.name, j, got[j].Data, got[j].Position, want[j].Data, want[j].Position)
				break
			}
		}
	}
}

// testGap: a subscriber resuming from a position the history no longer
// holds gets a start other than since, the Prev of the first message
// delivered, then what the history holds.
func testGap(t *testing.T, newBrokers NewBrokers) {
	const size = 5
	bs := brokers(t, newBrokers, Options{HistorySize: size})
	const name = "/gap"
	ps := publishN(t, bs, name, "m", 20)
	held := 20 - size // index of the oldest message the history holds
	type tc struct {
		label string
		since topic.Position
		start topic.Position // want
	}
	var cases []tc
	for i := range bs {
		cases = append(cases,
			tc{fmt.Sprintf("broker %d: from the start", i), topic.Position{Epoch: ps[0].Epoch}, ps[held-1]},
			tc{fmt.Sprintf("broker %d: after the first", i), ps[0], ps[held-1]},
			tc{fmt.Sprintf("broker %d: after the first one dropped", i), ps[held-2], ps[held-1]},
			tc{fmt.Sprintf("broker %d: after the last one dropped", i), ps[held-1], ps[held-1]}, // no gap
		)
	}
	var subs []*sub
	for i, c := range cases {
		s := subscribe(t, bs[i/4], name, &c.since, c.label)
		if s.start != c.start {
			t.Errorf("%s: start %v, want %v", c.label, s.start, c.start)
		}
		subs = append(subs, s)
	}
	end := publish(t, bs[0], name, "end")
	want, data := after(ps, "m", held-1)
	want, data = append(want, end), append(data, "end")
	for i, c := range cases {
		expect(t, c.label, subs[i].start, subs[i].wait(t, len(want)), want, data)
	}
}

// testUnknownEpoch: a since of another epoch starts with all the history
// held, from a start in the topic's epoch.
func testUnknownEpoch(t *testing.T, newBrokers NewBrokers) {
	const size = 5
	bs := brokers(t, newBrokers, Options{HistorySize: size})
	const name, empty = "/unknown-epoch", "/unknown-epoch/empty"
	ps := publishN(t, bs, name, "m", 8)
	since := topic.Position{Epoch: "no such epoch", Offset: ps[7].Offset}
	var subs, emptySubs []*sub
	for i, b := range bs {
		s := subscribe(t, b, name, &since, fmt.Sprintf("broker %d", i))
		if want := (topic.Position{Epoch: ps[0].Epoch, Offset: ps[2].Offset}); s.start != want {
			t.Errorf("%s: start %v, want %v, the Prev of the oldest message held", s.name, s.start, want)
		}
		subs = append(subs, s)
		e := subscribe(t, b, empty, &since, fmt.Sprintf("broker %d, empty topic", i))
		if e.start.Offset != 0 || e.start.Epoch == since.Epoch {
			t.Errorf("%s: start %v, want offset 0 in the topic's epoch", e.name, e.start)
		}
		emptySubs = append(emptySubs, e)
	}
	end := publish(t, bs[0], name, "end")
	want, data := after(ps, "m", 8-size-1)
	want, data = append(want, end), append(data, "end")
	for _, s := range subs {
		expect(t, s.name, s.start, s.wait(t, len(want)), want, data)
	}
	first := publish(t, bs[len(bs)-1], empty, "first")
	for _, e := range emptySubs {
		expect(t, e.name, e.start, e.wait(t, 1), []topic.Position{first}, []string{"first"})
	}
}

// testStop: once stop returns, deliver is not called again, while the
// topic's other subscribers go on; stop may be called twice.
func testStop(t *testing.T, newBrokers NewBrokers) {
	const n = 100
	bs := brokers(t, newBrokers, Options{HistorySize: 1000})
	const name = "/stop"
	var keep, stopped []*sub
	for i, b := range bs {
		keep = append(keep, subscribe(t, b, name, nil, fmt.Sprintf("broker %d: kept", i)))
		stopped = append(stopped, subscribe(t, b, name, nil, fmt.Sprintf("broker %d: stopped", i)))
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		for i := range n {
			if _, err := bs[i%len(bs)].Publish(context.Background(), name, fmt.Appendf(nil, "m-%d", i)); err != nil {
				t.Errorf("Publish: %v", err)
				return
			}
		}
	}()
	for _, s := range stopped {
		s.wait(t, n/4) // stop in the middle of the stream
		s.stop()
		s.stop()
	}
	<-done
	if t.Failed() {
		t.FailNow()
	}
	publish(t, bs[0], name, "end")
	for i, s := range keep {
		all := s.wait(t, n+1)
		checkChain(t, s.name, s.start, all)
		got := stopped[i].snapshot()
		samePlace := func(a, b *topic.Message) bool { return a.Position == b.Position }
		if len(got) >= len(all) || !slices.EqualFunc(got, all[:len(got)], samePlace) {
			t.Errorf("%s: got %s, not a prefix of what %s got", stopped[i].name, describe(got), s.name)
		}
	}
}

// testManySubscribers: many subscribers of one topic, spread over the
// brokers, each get every message in one order; those that stop get no
// more, the others go on.
func testManySubscribers(t *testing.T, newBrokers NewBrokers) {
	const (
		nsubs  = 30
		first  = 20
		second = 10
	)
	bs := brokers(t, newBrokers, Options{HistorySize: 100})
	const name = "/many"
	var subs []*sub
	for i := range nsubs {
		subs = append(subs, subscribe(t, bs[i%len(bs)], name, nil, fmt.Sprintf("subscriber %d", i)))
	}
	ps := publishN(t, bs, name, "m", first)
	want, data := after(ps, "m", -1)
	for _, s := range subs {
		expect(t, s.name, s.start, s.wait(t, first), want, data)
	}
	for _, s := range subs[:nsubs/2] {
		s.stop()
	}
	more := publishN(t, bs, name, "n", second)
	w2, d2 := after(more, "n", -1)
	want, data = append(want, w2...), append(data, d2...)
	for _, s := range subs[nsubs/2:] {
		expect(t, s.name, s.start, s.wait(t, first+second), want, data)
	}
	for _, s := range subs[:nsubs/2] {
		if got := s.snapshot(); len(got) != first {
			t.Errorf("%s: %d messages after stop, want %d", s.name, len(got), first)
		}
	}
}

// testTopicsSeparate: topics with names of any characters are delivered
// apart, each with its own chain of positions.
func testTopicsSeparate(t *testing.T, newBrokers NewBrokers) {
	const n = 10
	bs := brokers(t, newBrokers, Options{HistorySize: 100})
	names := []string{"/a", "/b", "/a/b", "/a.b", "/chat.*.>", "/ü >\ttab", strings.Repeat("/long", 200)}
	subs := map[string][]*sub{}
	for _, name := range names {
		for i, b := range bs {
			subs[name] = append(subs[name], subscribe(t, b, name, nil, fmt.Sprintf("%.20q on broker %d", name, i)))
		}
	}
	published := map[string][]topic.Position{}
	for i := range n {
		for j, name := range names {
			p := publish(t, bs[(i+j)%len(bs)], name, fmt.Sprintf("%s-%d", name, i))
			published[name] = append(published[name], p)
		}
	}
	for _, name := range names {
		want, data := after(published[name], name, -1)
		for _, s := range subs[name] {
			msgs := s.wait(t, n)
			expect(t, s.name, s.start, msgs, want, data)
			for _, m := range msgs {
				if m.Topic != name {
					t.Errorf("%s: message of topic %.20q", s.name, m.Topic)
				}
			}
		}
	}
}
