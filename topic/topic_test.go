package topic_test

import (
	"context"
	"errors"
	"fmt"
	"iter"
	"log/slog"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"
	"google.golang.org/protobuf/types/known/wrapperspb"

	"github.com/wsplex/wsplex"
	"github.com/wsplex/wsplex/internal/plextest"
	"github.com/wsplex/wsplex/mux"
	wsplexv1 "github.com/wsplex/wsplex/proto/wsplex/v1"
	"github.com/wsplex/wsplex/reconnect"
	"github.com/wsplex/wsplex/stream"
	"github.com/wsplex/wsplex/topic"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// guard bounds waits that succeed at once unless the code is broken.
const guard = 20 * time.Second

// server is a wsplex server whose Router serves hub on /t/{id} and
// refuses /t/secret in its OnOpen.
type server struct {
	*plextest.Server
	hub      *topic.Hub
	sessions chan *mux.Session
}

func newServer(t *testing.T, opts *topic.Options) *server {
	t.Helper()
	srv := &server{hub: topic.NewHub(opts), sessions: make(chan *mux.Session, 16)}
	routes := stream.NewRouter(&stream.Options{OnOpen: func(ctx context.Context, s *stream.Stream) (wsplex.Metadata, error) {
		if s.Name() == "/t/secret" {
			return nil, wsplex.NewError(wsplex.CodePermissionDenied, "not for you")
		}
		return nil, nil
	}})
	routes.Handle("/t/{id}", srv.hub)
	srv.Server = plextest.NewServer(t, func(s *mux.Session) {
		select {
		case srv.sessions <- s:
		default:
		}
		routes.Serve(s)
	}, nil)
	return srv
}

func text(s string) *wrapperspb.StringValue { return wrapperspb.String(s) }

// publish publishes texts to name and returns their positions.
func publish(t *testing.T, hub *topic.Hub, name string, texts ...string) []topic.Position {
	t.Helper()
	var out []topic.Position
	for _, s := range texts {
		p, err := hub.Publish(context.Background(), name, text(s))
		if err != nil {
			t.Fatalf("publish %q: %v", s, err)
		}
		out = append(out, p)
	}
	return out
}

// collect reads n events from a subscription.
func collect(t *testing.T, next func() (*topic.Event, error, bool), n int) []*topic.Event {
	t.Helper()
	var out []*topic.Event
	for len(out) < n {
		ev, err, ok := next()
		if !ok {
			t.Fatalf("subscription ended after %d events", len(out))
		}
		if err != nil {
			t.Fatalf("after %d events: %v", len(out), err)
		}
		out = append(out, ev)
	}
	return out
}

func texts(t *testing.T, evs []*topic.Event) string {
	t.Helper()
	var b []string
	for _, ev := range evs {
		if ev.Gap {
			b = append(b, fmt.Sprintf("gap@%d", ev.Position.Offset))
			continue
		}
		var m wrapperspb.StringValue
		if err := ev.Unmarshal(&m); err != nil {
			t.Fatal(err)
		}
		b = append(b, m.GetValue())
	}
	return strings.Join(b, " ")
}

func subscribe(t *testing.T, ctx context.Context, sessions topic.Sessions, name string, opts *topic.SubscribeOptions) func() (*topic.Event, error, bool) {
	t.Helper()
	next, stop := iterPull(topic.Subscribe(ctx, sessions, name, opts))
	t.Cleanup(stop)
	return next
}

func TestSubscribeInOrder(t *testing.T) {
	srv := newServer(t, nil)
	sess := srv.Dial(t, nil)
	ctx := t.Context()
	first := publish(t, srv.hub, "/t/1", "a")[0]
	publish(t, srv.hub, "/t/2", "other topic")
	next := subscribe(t, ctx, topic.OneSession(sess), "/t/1", &topic.SubscribeOptions{Since: &topic.Position{Epoch: first.Epoch}})
	if got := texts(t, collect(t, next, 1)); got != "a" {
		t.Fatalf("history: %q", got)
	}
	var want []string
	for i := range 100 {
		want = append(want, fmt.Sprint(i))
	}
	ps := publish(t, srv.hub, "/t/1", want...)
	evs := collect(t, next, 100)
	if got := texts(t, evs); got != strings.Join(want, " ") {
		t.Fatalf("got %q", got)
	}
	prev := first.Offset
	for i, ev := range evs {
		if ev.Position != ps[i] || ev.Prev != prev {
			t.Fatalf("event %d at %v prev %d, want %v prev %d", i, ev.Position, ev.Prev, ps[i], prev)
		}
		prev = ev.Position.Offset
	}
}

// TestSubscribeFromNow checks that a subscription without a position
// starts after the topic's last message and is answered with it.
func TestSubscribeFromNow(t *testing.T) {
	srv := newServer(t, nil)
	sess := srv.Dial(t, nil)
	publish(t, srv.hub, "/t/1", "old")
	s, err := stream.Open(t.Context(), sess, "/t/1", &stream.OpenOptions{Metadata: wsplex.Metadata{"wsplex-topic": {"subscribe"}}})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	md, err := s.Response(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if md.Get("wsplex-topic-offset") != "1" || md.Get("wsplex-topic-epoch") == "" {
		t.Fatalf("answer %v, want offset 1 and an epoch", md)
	}
	// The answer came after the subscription was made: what is published
	// now arrives, what was published before does not.
	publish(t, srv.hub, "/t/1", "new")
	next := streamEvents(s)
	if got := texts(t, collect(t, next, 1)); got != "new" {
		t.Fatalf("got %q", got)
	}
}

// TestResumeAcrossReconnect ends the client's session from the server
// while messages are being published; the subscription resumes on the
// next session from its last position, with nothing lost or repeated.
func TestResumeAcrossReconnect(t *testing.T) {
	srv := newServer(t, nil)
	client, err := reconnect.New(srv.URL, &reconnect.Options{MinDelay: time.Millisecond, MaxDelay: 10 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	defer client.Close()
	first := publish(t, srv.hub, "/t/1", "0")[0]
	next := subscribe(t, t.Context(), client, "/t/1", &topic.SubscribeOptions{Since: &topic.Position{Epoch: first.Epoch}})
	var want []string
	got := collect(t, next, 1)
	for round := range 3 {
		sess := <-srv.sessions
		for i := range 10 {
			s := fmt.Sprintf("%d.%d", round, i)
			want = append(want, s)
			publish(t, srv.hub, "/t/1", s)
			if i == 5 {
				sess.Close() // the client dials again and resumes
			}
		}
		got = append(got, collect(t, next, 10)...)
	}
	if g, w := texts(t, got), "0 "+strings.Join(want, " "); g != w {
		t.Fatalf("got  %q\nwant %q", g, w)
	}
}

func TestGapWhenHistoryIsGone(t *testing.T) {
	srv := newServer(t, &topic.Options{Broker: topic.NewMemoryBroker(&topic.MemoryOptions{HistorySize: 2})})
	sess := srv.Dial(t, nil)
	ps := publish(t, srv.hub, "/t/1", "1", "2", "3", "4", "5")
	next := subscribe(t, t.Context(), topic.OneSession(sess), "/t/1", &topic.SubscribeOptions{Since: &ps[0]})
	evs := collect(t, next, 3)
	if got := texts(t, evs); got != "gap@3 4 5" {
		t.Fatalf("got %q", got)
	}
	if evs[0].Position != ps[2] {
		t.Fatalf("gap moved to %v, want %v", evs[0].Position, ps[2])
	}

	t.Run("other epoch", func(t *testing.T) {
		next := subscribe(t, t.Context(), topic.OneSession(sess), "/t/1", &topic.SubscribeOptions{Since: &topic.Position{Epoch: "gone", Offset: 4}})
		if got := texts(t, collect(t, next, 3)); got != "gap@3 4 5" {
			t.Fatalf("got %q", got)
		}
	})
	t.Run("no history", func(t *testing.T) {
		srv := newServer(t, &topic.Options{Broker: topic.NewMemoryBroker(&topic.MemoryOptions{HistorySize: -1})})
		sess := srv.Dial(t, nil)
		ps := publish(t, srv.hub, "/t/1", "1", "2")
		next := subscribe(t, t.Context(), topic.OneSession(sess), "/t/1", &topic.SubscribeOptions{Since: &ps[0]})
		evs := collect(t, next, 1)
		if !evs[0].Gap || evs[0].Position != ps[1] {
			t.Fatalf("got %+v, want a gap to %v", evs[0], ps[1])
		}
		publish(t, srv.hub, "/t/1", "3")
		if got := texts(t, collect(t, next, 1)); got != "3" {
			t.Fatalf("got %q", got)
		}
	})
	t.Run("resume from the end", func(t *testing.T) {
		next := subscribe(t, t.Context(), topic.OneSession(sess), "/t/1", &topic.SubscribeOptions{Since: &ps[4]})
		publish(t, srv.hub, "/t/1", "6")
		if got := texts(t, collect(t, next, 1)); got != "6" {
			t.Fatalf("got %q, want no gap", got)
		}
	})
}

// warnings is a slog.Handler that passes Warn records to a channel.
type warnings chan string

func (w warnings) Enabled(_ context.Context, l slog.Level) bool { return l >= slog.LevelWarn }
func (w warnings) Handle(_ context.Context, r slog.Record) error {
	select {
	case w <- r.Message:
	default:
	}
	return nil
}
func (w warnings) WithAttrs([]slog.Attr) slog.Handler { return w }
func (w warnings) WithGroup(string) slog.Handler      { return w }

// TestSlowSubscriber checks the overflow policy: a subscriber that stops
// reading neither slows the publisher nor another subscriber; its
// subscription ends with CodeResourceExhausted, logged and counted, and
// Subscribe resumes it from the history with nothing lost.
func TestSlowSubscriber(t *testing.T) {
	warned := make(warnings, 4)
	srv := newServer(t, &topic.Options{QueueSize: 32, Logger: slog.New(warned),
		Broker: topic.NewMemoryBroker(&topic.MemoryOptions{HistorySize: 1000})})
	sess := srv.Dial(t, nil)
	first := publish(t, srv.hub, "/t/1", "start")[0]
	since := &topic.Position{Epoch: first.Epoch}
	slow := subscribe(t, t.Context(), topic.OneSession(sess), "/t/1", &topic.SubscribeOptions{Since: since})
	fast := subscribe(t, t.Context(), topic.OneSession(srv.Dial(t, nil)), "/t/1", &topic.SubscribeOptions{Since: since})
	collect(t, slow, 1)
	collect(t, fast, 1)

	// 16 KiB messages, each published once the fast subscriber has the one
	// before: 400 of them fill the slow subscriber's window and then its
	// queue, while the fast one keeps up.
	big := strings.Repeat("x", 16<<10)
	var want []string
	for i := range 400 {
		want = append(want, fmt.Sprint(i))
		publish(t, srv.hub, "/t/1", fmt.Sprint(i)+big)
		var m wrapperspb.StringValue
		collect(t, fast, 1)[0].Unmarshal(&m)
		if m.GetValue() != want[i]+big {
			t.Fatalf("fast subscriber: message %d wrong", i)
		}
	}
	select {
	case msg := <-warned:
		if !strings.Contains(msg, "too slow") {
			t.Fatalf("warning %q", msg)
		}
	case <-time.After(guard):
		t.Fatal("no overflow")
	}
	if n := srv.hub.Stats().Overflows; n != 1 {
		t.Fatalf("Overflows %d, want 1", n)
	}
	// The slow subscriber now reads: everything, once, in order, the
	// subscription having resumed from the history.
	for i, ev := range collect(t, slow, 400) {
		var m wrapperspb.StringValue
		ev.Unmarshal(&m)
		if ev.Gap || m.GetValue() != want[i]+big {
			t.Fatalf("slow subscriber: event %d is %.10q (gap %v), want %q", i, m.GetValue(), ev.Gap, want[i])
		}
	}
}

func TestRefusals(t *testing.T) {
	srv := newServer(t, nil)
	sess := srv.Dial(t, nil)
	for _, tc := range []struct {
		name string
		md   wsplex.Metadata
		code wsplex.Code
	}{
		{"/t/secret", nil, wsplex.CodePermissionDenied},
		{"/nothing/here", nil, wsplex.CodeNotFound},
		{"/t/1", wsplex.Metadata{"wsplex-topic-offset": {"x"}, "wsplex-topic-epoch": {"e"}}, wsplex.CodeInvalidArgument},
		{"/t/1", wsplex.Metadata{"wsplex-topic-offset": {"1"}}, wsplex.CodeInvalidArgument},
		{"/t/1", wsplex.Metadata{"wsplex-topic-offset": {"18446744073709551616"}, "wsplex-topic-epoch": {"e"}}, wsplex.CodeInvalidArgument},
	} {
		next := subscribe(t, t.Context(), topic.OneSession(sess), tc.name, &topic.SubscribeOptions{Metadata: tc.md})
		_, err, _ := next()
		if wsplex.CodeOf(err) != tc.code {
			t.Errorf("%s %v: %v, want %v", tc.name, tc.md, err, tc.code)
		}
	}
	for _, mode := range [][]string{nil, {"watch"}, {"subscribe", "subscribe"}} {
		s, err := stream.Open(t.Context(), sess, "/t/1", &stream.OpenOptions{Metadata: wsplex.Metadata{"wsplex-topic": mode}})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := s.Response(t.Context()); wsplex.CodeOf(err) != wsplex.CodeInvalidArgument {
			t.Errorf("wsplex-topic %q: %v, want invalid argument", mode, err)
		}
		s.Close()
	}
	p, err := topic.NewPublisher(t.Context(), sess, "/t/1", nil)
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	if _, err := p.Publish(text("x")); wsplex.CodeOf(err) != wsplex.CodePermissionDenied {
		t.Fatalf("publish without AllowPublish: %v, want permission denied", err)
	}
}

// stopWatch is a Broker that reports each subscription's stop.
type stopWatch struct {
	topic.Broker
	stopped chan string
}

func (w stopWatch) Subscribe(ctx context.Context, name string, since *topic.Position, deliver func(*topic.Message, error)) (topic.Position, func(), error) {
	start, stop, err := w.Broker.Subscribe(ctx, name, since, deliver)
	return start, func() { stop(); w.stopped <- name }, err
}

// TestUnsubscribe checks that leaving the loop ends the subscription on
// the server, and that cancelling the context does too.
func TestUnsubscribe(t *testing.T) {
	watch := stopWatch{topic.NewMemoryBroker(nil), make(chan string, 4)}
	srv := newServer(t, &topic.Options{Broker: watch})
	sess := srv.Dial(t, nil)
	first := publish(t, srv.hub, "/t/1", "a")[0]
	for ev, err := range topic.Subscribe(t.Context(), topic.OneSession(sess), "/t/1", &topic.SubscribeOptions{Since: &topic.Position{Epoch: first.Epoch}}) {
		if err != nil || ev.Gap {
			t.Fatal(err, ev)
		}
		break
	}
	select {
	case <-watch.stopped:
	case <-time.After(guard):
		t.Fatal("subscription still served after the loop ended")
	}
	ctx, cancel := context.WithCancel(t.Context())
	var got error
	done := make(chan struct{})
	go func() {
		defer close(done)
		for _, err := range topic.Subscribe(ctx, topic.OneSession(sess), "/t/1", &topic.SubscribeOptions{Since: &topic.Position{Epoch: first.Epoch}}) {
			if err != nil {
				got = err
				return
			}
			cancel()
		}
	}()
	select {
	case <-watch.stopped:
	case <-time.After(guard):
		t.Fatal("subscription still served after its context ended")
	}
	<-done
	if !errors.Is(got, context.Canceled) {
		t.Fatalf("Subscribe yielded %v, want context.Canceled", got)
	}
	if n := srv.hub.Stats().Subscriptions; n != 0 {
		t.Fatalf("%d subscriptions left", n)
	}
}

func TestClientPublish(t *testing.T) {
	srv := newServer(t, &topic.Options{AllowPublish: func(ctx context.Context, s *stream.Stream) error {
		if s.Name() == "/t/readonly" {
			return wsplex.NewError(wsplex.CodePermissionDenied, "read only")
		}
		return nil
	}})
	sess := srv.Dial(t, nil)
	p, err := topic.NewPublisher(t.Context(), sess, "/t/1", nil)
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	var ps []topic.Position
	for _, s := range []string{"a", "b", "c"} {
		pos, err := p.Publish(text(s))
		if err != nil {
			t.Fatal(err)
		}
		ps = append(ps, pos)
	}
	if ps[1].Offset != ps[0].Offset+1 || ps[2].Offset != ps[1].Offset+1 {
		t.Fatalf("positions %v", ps)
	}
	next := subscribe(t, t.Context(), topic.OneSession(sess), "/t/1", &topic.SubscribeOptions{Since: &topic.Position{Epoch: ps[0].Epoch}})
	if got := texts(t, collect(t, next, 3)); got != "a b c" {
		t.Fatalf("got %q", got)
	}
	ro, err := topic.NewPublisher(t.Context(), sess, "/t/readonly", nil)
	if err != nil {
		t.Fatal(err)
	}
	defer ro.Close()
	if _, err := ro.Publish(text("x")); wsplex.CodeOf(err) != wsplex.CodePermissionDenied {
		t.Fatalf("got %v, want permission denied", err)
	}
}

// TestSessionEndsSubscription checks that a subscription on one session
// ends, with the session's error, when the session does.
func TestSessionEndsSubscription(t *testing.T) {
	srv := newServer(t, nil)
	sess := srv.Dial(t, nil)
	first := publish(t, srv.hub, "/t/1", "a")[0]
	next := subscribe(t, t.Context(), topic.OneSession(sess), "/t/1", &topic.SubscribeOptions{Since: &topic.Position{Epoch: first.Epoch}})
	collect(t, next, 1)
	(<-srv.sessions).Close()
	_, err, ok := next()
	if !ok || err == nil || err != sess.Err() {
		t.Fatalf("got %v (ok %v), want the session's end", err, ok)
	}
}

// iterPull turns a subscription into a function returning its next event.
func iterPull(seq iter.Seq2[*topic.Event, error]) (func() (*topic.Event, error, bool), func()) {
	next, stop := iter.Pull2(seq)
	return func() (*topic.Event, error, bool) {
		ev, err, ok := next()
		return ev, err, ok
	}, stop
}

// streamEvents reads the events of a subscription opened by hand.
func streamEvents(s *stream.Stream) func() (*topic.Event, error, bool) {
	return func() (*topic.Event, error, bool) {
		var ev wsplexv1.TopicEvent
		if err := s.Receive(&ev); err != nil {
			return nil, err, true
		}
		if g := ev.GetGap(); g != nil {
			return &topic.Event{Gap: true, Position: topic.Position{Epoch: g.GetEpoch(), Offset: g.GetOffset()}}, nil, true
		}
		m := ev.GetMessage()
		return &topic.Event{Position: topic.Position{Offset: m.GetOffset()}, Prev: m.GetPrev(), Data: m.GetData()}, nil, true
	}
}

// TestHubSubscribe checks the server's own subscriptions: events from a
// position, gaps, and the overflow of a loop body that falls behind.
func TestHubSubscribe(t *testing.T) {
	hub := topic.NewHub(&topic.Options{QueueSize: 4, Broker: topic.NewMemoryBroker(&topic.MemoryOptions{HistorySize: 3})})
	ctx := t.Context()
	ps := publish(t, hub, "/a", "1", "2", "3", "4")
	next, stop := iterPull(hub.Subscribe(ctx, "/a", &topic.Position{Epoch: ps[0].Epoch}))
	defer stop()
	if got := texts(t, collect(t, next, 4)); got != "gap@1 2 3 4" {
		t.Fatalf("got %q", got)
	}
	publish(t, hub, "/a", "5")
	if got := texts(t, collect(t, next, 1)); got != "5" {
		t.Fatalf("got %q", got)
	}
	// Not reading: the fifth message waiting overflows the queue of 4.
	publish(t, hub, "/a", "6", "7", "8", "9", "10")
	for {
		_, err, ok := next()
		if !ok {
			t.Fatal("ended without an error")
		}
		if err != nil {
			if wsplex.CodeOf(err) != wsplex.CodeResourceExhausted {
				t.Fatalf("got %v, want resource exhausted", err)
			}
			break
		}
	}
	if _, _, ok := next(); ok {
		t.Fatal("events after the overflow")
	}
	if s := hub.Stats(); s.Overflows != 1 || s.Subscriptions != 0 {
		t.Fatalf("stats %+v", s)
	}

	msgs, last, err := hub.History(ctx, "/a")
	if err != nil || len(msgs) != 3 || string(msgs[0].Data) == "" || last.Offset != 10 {
		t.Fatalf("History: %d messages, last %v, %v; want 3 (8 to 10)", len(msgs), last, err)
	}
	msgs, last, err = hub.History(ctx, "/empty")
	if err != nil || len(msgs) != 0 || last.Offset != 0 || last.Epoch == "" {
		t.Fatalf("History of an empty topic: %d, %v, %v", len(msgs), last, err)
	}
}

// TestSubscribedFromNow subscribes without a position: Subscribed says
// when the subscription stands, after which every message arrives.
func TestSubscribedFromNow(t *testing.T) {
	srv := newServer(t, nil)
	publish(t, srv.hub, "/t/1", "before")
	ready := make(chan topic.Position, 1)
	next := subscribe(t, t.Context(), topic.OneSession(srv.Dial(t, nil)), "/t/1", &topic.SubscribeOptions{
		Subscribed: func(p topic.Position) { ready <- p },
	})
	// The iterator runs when pulled: pull in the background until ready.
	got := make(chan []*topic.Event, 1)
	go func() {
		evs := []*topic.Event{}
		for len(evs) < 2 {
			ev, err, ok := next()
			if !ok || err != nil {
				break
			}
			evs = append(evs, ev)
		}
		got <- evs
	}()
	var start topic.Position
	select {
	case start = <-ready:
	case <-time.After(guard):
		t.Fatal("never subscribed")
	}
	if start.Offset != 1 {
		t.Fatalf("subscribed at %v, want offset 1", start)
	}
	publish(t, srv.hub, "/t/1", "a", "b")
	if s := texts(t, <-got); s != "a b" {
		t.Fatalf("got %q", s)
	}
}
