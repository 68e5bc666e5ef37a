package wsplexnats_test

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"google.golang.org/protobuf/types/known/wrapperspb"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/wsplex/wsplex/mux"
	"github.com/wsplex/wsplex/reconnect"
	"github.com/wsplex/wsplex/stream"
	"github.com/wsplex/wsplex/topic"
	"github.com/wsplex/wsplex/wsplexnats"
)

// wsplexServer is one wsplex server with a topic Hub on its own NATS
// Broker.
type wsplexServer struct {
	hub     *topic.Hub
	broker  *wsplexnats.Broker
	handler *mux.Handler
	http    *httptest.Server
	once    sync.Once
}

func startServer(t *testing.T, ns *server.Server, opts *wsplexnats.Options) *wsplexServer {
	t.Helper()
	_, js := connect(t, ns)
	s := &wsplexServer{broker: newBroker(t, js, opts)}
	s.hub = topic.NewHub(&topic.Options{Broker: s.broker})
	routes := stream.NewRouter(nil)
	routes.Handle("/chat/{room}", s.hub)
	h, err := mux.NewHandler(func(sess *mux.Session) { routes.Serve(sess) }, nil)
	if err != nil {
		t.Fatal(err)
	}
	s.handler = h
	s.http = httptest.NewServer(h)
	t.Cleanup(s.close)
	return s
}

// close ends the server's sessions, stops it and closes its Broker.
func (s *wsplexServer) close() {
	s.once.Do(func() {
		s.handler.Close()
		s.http.Close()
		s.broker.Close()
	})
}

// subscriber is a Go client on a reconnect.Client, subscribed to a topic.
type subscriber struct {
	name      string
	target    atomic.Pointer[string]        // the address the client dials
	gate      atomic.Pointer[chan struct{}] // if set, dials wait for it to close
	connected chan struct{}                 // a token for each new session
	changed   chan struct{}

	mu     sync.Mutex
	events []*topic.Event
	err    error
}

func (s *subscriber) snapshot() ([]*topic.Event, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]*topic.Event(nil), s.events...), s.err
}

// wait waits until s has n events and returns them.
func (s *subscriber) wait(t *testing.T, n int) []*topic.Event {
	t.Helper()
	timer := time.NewTimer(30 * time.Second)
	defer timer.Stop()
	for {
		evs, err := s.snapshot()
		if len(evs) >= n {
			return evs
		}
		if err != nil {
			t.Fatalf("%s: subscription ended after %d of %d events: %v", s.name, len(evs), n, err)
		}
		select {
		case <-s.changed:
		case <-timer.C:
			t.Fatalf("%s: %d of %d events after 30s", s.name, len(evs), n)
		}
	}
}

// subscribe starts a client dialing addr and subscribes it to name from
// since, until ctx ends.
func subscribe(t *testing.T, ctx context.Context, wg *sync.WaitGroup, label, addr, name string, since topic.Position) *subscriber {
	t.Helper()
	s := &subscriber{name: label, connected: make(chan struct{}, 10), changed: make(chan struct{}, 1)}
	s.target.Store(&addr)
	opts := &reconnect.Options{
		MinDelay: time.Millisecond,
		MaxDelay: 20 * time.Millisecond,
		OnStateChange: func(st reconnect.State, _ error) {
			if st == reconnect.Connected {
				s.connected <- struct{}{}
			}
		},
	}
	opts.Dial.NetDialContext = func(ctx context.Context, network, _ string) (net.Conn, error) {
		if gate := s.gate.Load(); gate != nil {
			select {
			case <-*gate:
			case <-ctx.Done():
				return nil, ctx.Err()
			}
		}
		var d net.Dialer
		return d.DialContext(ctx, network, *s.target.Load())
	}
	opts.Dial.Proxy = func(*http.Request) (*url.URL, error) { return nil, nil }
	client, err := reconnect.New("ws://wsplex.test/", opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { client.Close() })
	wg.Go(func() {
		for ev, err := range topic.Subscribe(ctx, client, name, &topic.SubscribeOptions{Since: &since}) {
			s.mu.Lock()
			if err != nil {
				if ctx.Err() == nil {
					s.err = err
				}
			} else {
				s.events = append(s.events, ev)
			}
			s.mu.Unlock()
			select {
			case s.changed <- struct{}{}:
			default:
			}
		}
	})
	return s
}

// TestEndToEnd runs two wsplex servers whose Hubs share topics through
// NATS. Go clients subscribed on either get every message published on
// either, once, in one order; when one server goes away, its clients
// reconnect to the other and resume where they were: nothing lost,
// nothing repeated.
func TestEndToEnd(t *testing.T) {
	const (
		clients = 6
		first   = 40 // messages published on both servers
		second  = 40 // messages published on the remaining one
		name    = "/chat/42"
	)
	ns := runServer(t)
	opts := freshOptions()
	a, b := startServer(t, ns, opts), startServer(t, ns, opts)
	addr := func(s *wsplexServer) string { return strings.TrimPrefix(s.http.URL, "http://") }

	ctx, cancel := context.WithCancel(t.Context())
	var wg sync.WaitGroup
	defer wg.Wait()
	defer cancel()

	var published []topic.Position
	publish := func(s *wsplexServer, text string) {
		t.Helper()
		p, err := s.hub.Publish(ctx, name, wrapperspb.String(text))
		if err != nil {
			t.Fatalf("Publish(%q): %v", text, err)
		}
		published = append(published, p)
	}
	publish(a, "hello")
	since := published[0]
	published = published[:0]

	var subs []*subscriber
	for i := range clients {
		srv := a
		if i%2 == 1 {
			srv = b
		}
		subs = append(subs, subscribe(t, ctx, &wg, fmt.Sprintf("client %d", i), addr(srv), name, since))
	}
	for i := range first {
		publish([]*wsplexServer{a, b}[i%2], fmt.Sprintf("first %d", i))
	}
	check := func(n int) {
		t.Helper()
		for _, s := range subs {
			evs := s.wait(t, n)
			if len(evs) != n {
				t.Errorf("%s: %d events, want %d", s.name, len(evs), n)
			}
			for i, ev := range evs[:min(n, len(evs))] {
				var text wrapperspb.StringValue
				if err := ev.Unmarshal(&text); err != nil {
					t.Errorf("%s: event %d: %v", s.name, i, err)
				}
				if ev.Gap || ev.Position != published[i] {
					t.Errorf("%s: event %d is %q at %v (gap %v), want the message at %v", s.name, i, text.GetValue(), ev.Position, ev.Gap, published[i])
					break
				}
			}
		}
	}
	check(first)
	if t.Failed() {
		return
	}
	for _, s := range subs {
		<-s.connected // the first session
	}

	// Server a goes away; its clients find b at the address they dial,
	// but only once half the next messages are published, so that they
	// get those from the history when they resume.
	gate := make(chan struct{})
	for i, s := range subs {
		if i%2 == 0 {
			s.gate.Store(&gate)
			s.target.Store(new(addr(b)))
		}
	}
	a.close()
	for i := range second {
		if i == second/2 {
			close(gate)
		}
		publish(b, fmt.Sprintf("second %d", i))
	}
	publish(b, "end") // a message repeated at the end would come before it
	check(first + second + 1)
	for i, s := range subs {
		if i%2 == 0 {
			select {
			case <-s.connected:
			default:
				t.Errorf("%s: no new session after its server closed", s.name)
			}
		}
	}
}
