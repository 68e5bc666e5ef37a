package wsplexnats_test

import (
	"errors"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/wsplex/wsplex/topic"
	"github.com/wsplex/wsplex/wsplexnats"
)

// ended is a deliver func that reports the error ending its subscription,
// and fails the test if a message comes after it or a second error.
type ended struct {
	t    *testing.T
	msgs chan *topic.Message
	err  chan error
	done bool
}

func newEnded(t *testing.T) *ended {
	return &ended{t: t, msgs: make(chan *topic.Message, 100), err: make(chan error, 1)}
}

func (e *ended) deliver(m *topic.Message, err error) {
	if e.done {
		e.t.Errorf("deliver(%v, %v) after the subscription ended", m, err)
		return
	}
	if m == nil {
		e.done = true
		e.err <- err
		return
	}
	e.msgs <- m
}

func (e *ended) wait(t *testing.T) error {
	t.Helper()
	select {
	case err := <-e.err:
		return err
	case <-time.After(30 * time.Second):
		t.Fatal("subscription did not end")
		return nil
	}
}

func (e *ended) next(t *testing.T) *topic.Message {
	t.Helper()
	select {
	case m := <-e.msgs:
		return m
	case err := <-e.err:
		t.Fatalf("subscription ended: %v", err)
	case <-time.After(30 * time.Second):
		t.Fatal("no message")
	}
	return nil
}

// TestExpectLastSubjectSequenceZero checks what the Prev chain relies on:
// that this NATS server takes an expected last subject sequence of 0 to
// mean "the subject has no message", and refuses with code 10071 when it
// has one.
func TestExpectLastSubjectSequenceZero(t *testing.T) {
	ns := runServer(t)
	_, js := connect(t, ns)
	ctx := t.Context()
	if _, err := js.CreateStream(ctx, jetstream.StreamConfig{Name: "Z", Subjects: []string{"z.>"}}); err != nil {
		t.Fatal(err)
	}
	if _, err := js.Publish(ctx, "z.a", []byte("1"), jetstream.WithExpectLastSequencePerSubject(0)); err != nil {
		t.Fatalf("first message with expected last 0: %v", err)
	}
	_, err := js.Publish(ctx, "z.a", []byte("2"), jetstream.WithExpectLastSequencePerSubject(0))
	var apiErr *jetstream.APIError
	if !errors.As(err, &apiErr) || apiErr.ErrorCode != jetstream.JSErrCodeStreamWrongLastSequence {
		t.Fatalf("second message with expected last 0: %v, want error code 10071", err)
	}
	if !strings.HasSuffix(apiErr.Description, ": 1") {
		t.Errorf("refusal %q does not name the last sequence, 1", apiErr.Description)
	}
	if _, err := js.Publish(ctx, "z.b", []byte("1"), jetstream.WithExpectLastSequencePerSubject(0)); err != nil {
		t.Fatalf("other subject with expected last 0: %v", err)
	}
}

func TestOptions(t *testing.T) {
	ns := runServer(t)
	_, js := connect(t, ns)
	for _, tc := range []struct {
		name string
		opts wsplexnats.Options
	}{
		{"stream with a dot", wsplexnats.Options{Stream: "A.B"}},
		{"stream with a space", wsplexnats.Options{Stream: "A B"}},
		{"wildcard subject", wsplexnats.Options{Subject: "a.*"}},
		{"empty token", wsplexnats.Options{Subject: "a..b"}},
		{"negative history", wsplexnats.Options{HistorySize: -1}},
		{"negative replicas", wsplexnats.Options{Replicas: -1}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if b, err := wsplexnats.NewBroker(t.Context(), js, &tc.opts); err == nil {
				b.Close()
				t.Fatal("NewBroker accepted", tc.opts)
			}
		})
	}
	t.Run("defaults", func(t *testing.T) {
		b := newBroker(t, js, nil)
		s, err := js.Stream(t.Context(), "WSPLEX_TOPICS")
		if err != nil {
			t.Fatal(err)
		}
		cfg := s.CachedInfo().Config
		if cfg.Subjects[0] != "wsplex.topic.>" || cfg.MaxMsgsPerSubject != 100 || cfg.MaxAge != 5*time.Minute ||
			cfg.Storage != jetstream.FileStorage || cfg.Discard != jetstream.DiscardOld || cfg.Retention != jetstream.LimitsPolicy {
			t.Errorf("default stream config %+v", cfg)
		}
		if _, err := b.Publish(t.Context(), "", []byte("x")); err == nil {
			t.Error("Publish to an empty topic name succeeded")
		}
	})
}

// TestOneConsumerPerTopic checks that the subscribers of a topic on one
// Broker share one consumer.
func TestOneConsumerPerTopic(t *testing.T) {
	ns := runServer(t)
	_, js := connect(t, ns)
	o := freshOptions()
	b := newBroker(t, js, o)
	for range 10 {
		_, stop, err := b.Subscribe(t.Context(), "/one", nil, func(*topic.Message, error) {})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(stop)
	}
	s, err := js.Stream(t.Context(), o.Stream)
	if err != nil {
		t.Fatal(err)
	}
	info, err := s.Info(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if info.State.Consumers != 1 {
		t.Errorf("%d consumers for 10 subscribers of one topic, want 1", info.State.Consumers)
	}
}

// TestConnectionClosed checks that a subscription whose NATS connection
// closes ends with an error, and nothing after it.
func TestConnectionClosed(t *testing.T) {
	ns := runServer(t)
	nc, js := connect(t, ns)
	b := newBroker(t, js, freshOptions())
	e := newEnded(t)
	_, stop, err := b.Subscribe(t.Context(), "/closed", nil, e.deliver)
	if err != nil {
		t.Fatal(err)
	}
	defer stop()
	nc.Close()
	if err := e.wait(t); !errors.Is(err, jetstream.ErrConnectionClosed) && !errors.Is(err, nats.ErrConnectionClosed) {
		t.Errorf("subscription ended with %v, want connection closed", err)
	}
}

// TestClose checks that Close ends the subscriptions with ErrClosed, and
// that the Broker refuses to work after it.
func TestClose(t *testing.T) {
	ns := runServer(t)
	_, js := connect(t, ns)
	b := newBroker(t, js, freshOptions())
	e := newEnded(t)
	_, stop, err := b.Subscribe(t.Context(), "/close", nil, e.deliver)
	if err != nil {
		t.Fatal(err)
	}
	defer stop()
	if err := b.Close(); err != nil {
		t.Fatal(err)
	}
	if err := e.wait(t); !errors.Is(err, wsplexnats.ErrClosed) {
		t.Errorf("subscription ended with %v, want ErrClosed", err)
	}
	if _, err := b.Publish(t.Context(), "/close", []byte("x")); !errors.Is(err, net.ErrClosed) {
		t.Errorf("Publish after Close: %v, want net.ErrClosed", err)
	}
	if _, _, err := b.Subscribe(t.Context(), "/close", nil, e.deliver); !errors.Is(err, net.ErrClosed) {
		t.Errorf("Subscribe after Close: %v, want net.ErrClosed", err)
	}
	if err := b.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
}

// TestStreamRecreated checks that a stream deleted and created again is a
// new epoch: the subscriptions of the old one end, and a subscriber that
// resumes from the old one learns of the gap.
func TestStreamRecreated(t *testing.T) {
	ns := runServer(t)
	_, js := connect(t, ns)
	_, js2 := connect(t, ns)
	o := freshOptions()
	b := newBroker(t, js, o)
	ctx := t.Context()
	old, err := b.Publish(ctx, "/re", []byte("old"))
	if err != nil {
		t.Fatal(err)
	}
	e := newEnded(t)
	_, stop, err := b.Subscribe(ctx, "/re", nil, e.deliver)
	if err != nil {
		t.Fatal(err)
	}
	defer stop()
	// Once a message has come, the consumer has a pull request waiting,
	// which the server ends at once when it deletes the consumer.
	old, err = b.Publish(ctx, "/re", []byte("old 2"))
	if err != nil {
		t.Fatal(err)
	}
	e.next(t)

	if err := js2.DeleteStream(ctx, o.Stream); err != nil {
		t.Fatal(err)
	}
	err = e.wait(t)
	t.Logf("subscription ended with: %v", err)
	b2 := newBroker(t, js2, o) // creates the stream again
	fresh, err := b2.Publish(ctx, "/re", []byte("new"))
	if err != nil {
		t.Fatal(err)
	}
	if fresh.Epoch == old.Epoch {
		t.Fatalf("recreated stream has the old epoch %q", old.Epoch)
	}

	e2 := newEnded(t)
	start, stop2, err := b.Subscribe(ctx, "/re", &old, e2.deliver)
	if err != nil {
		t.Fatal(err)
	}
	defer stop2()
	if start.Epoch != fresh.Epoch || start.Offset != 0 {
		t.Errorf("resumed from the old epoch at %v, want 0@%s", start, fresh.Epoch)
	}
	if m := e2.next(t); string(m.Data) != "new" || m.Position != fresh {
		t.Errorf("got %q at %v, want \"new\" at %v", m.Data, m.Position, fresh)
	}
	p, err := b.Publish(ctx, "/re", []byte("newer"))
	if err != nil {
		t.Fatal(err)
	}
	if p.Epoch != fresh.Epoch {
		t.Errorf("old broker publishes in epoch %q, want %q", p.Epoch, fresh.Epoch)
	}
	if m := e2.next(t); m.Position != p || m.Prev != fresh.Offset {
		t.Errorf("got %v after %d, want %v after %d", m.Position, m.Prev, p, fresh.Offset)
	}
}
