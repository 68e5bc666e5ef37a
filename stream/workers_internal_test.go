package stream

import (
	"context"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/wsplex/wsplex/internal/plextest"
	"github.com/wsplex/wsplex/mux"
)

// workersAfterBurst serves n streams at once on workers, and returns when
// every worker either waits idle or has exited; all waits for them all to
// exit.
func workersAfterBurst(t *testing.T, n int, idleFor time.Duration) (w *workers, exited *atomic.Int32, all *sync.WaitGroup, client, server *mux.Session) {
	t.Helper()
	client, server = plextest.SessionPair(t, nil)
	release := make(chan struct{})
	var started sync.WaitGroup
	started.Add(n)
	r := NewRouter(nil)
	r.HandleFunc("/wait", func(ctx context.Context, s *Stream) error {
		started.Done()
		<-release
		return nil
	})
	wg, all := new(sync.WaitGroup), new(sync.WaitGroup)
	events := make(chan struct{}, 2*n) // a worker waits idle, or exits
	w = &workers{next: make(chan *mux.Stream), quit: make(chan struct{}), wg: wg, idleFor: idleFor,
		idled: func() { events <- struct{}{} }}
	exited = new(atomic.Int32)
	for range n {
		s, err := Open(t.Context(), client, "/wait", nil)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { s.Close() })
		ms, err := server.Accept(t.Context())
		if err != nil {
			t.Fatal(err)
		}
		wg.Add(1)
		all.Add(1)
		go func() {
			r.work(w, ms)
			exited.Add(1)
			all.Done()
			events <- struct{}{}
		}()
	}
	started.Wait()
	close(release)
	for range n {
		select {
		case <-events:
		case <-time.After(20 * time.Second):
			t.Fatalf("%d idle and %d exited of %d workers", w.idle.Load(), exited.Load(), n)
		}
	}
	return w, exited, all, client, server
}

// After a burst, at most maxIdleWorkers workers wait for the next stream,
// they serve it, and they all exit when Serve returns.
func TestIdleWorkersAreBounded(t *testing.T) {
	const n = 3 * maxIdleWorkers
	w, exited, all, client, server := workersAfterBurst(t, n, time.Hour)
	if idle, ex := w.idle.Load(), exited.Load(); idle != maxIdleWorkers || ex != n-maxIdleWorkers {
		t.Fatalf("%d workers idle and %d exited after a burst of %d, want %d idle", idle, ex, n, maxIdleWorkers)
	}
	s, err := Open(t.Context(), client, "/wait", nil)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	ms, err := server.Accept(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	select {
	case w.next <- ms:
	case <-time.After(20 * time.Second):
		t.Fatal("no idle worker took the stream")
	}
	if _, err := s.Response(t.Context()); err != nil {
		t.Fatalf("the stream an idle worker took: %v", err)
	}
	close(w.quit)
	all.Wait()
	if ex := exited.Load(); ex != n {
		t.Fatalf("%d of %d workers exited after quit", ex, n)
	}
}

// Idle workers exit when no stream comes for them.
func TestIdleWorkersExit(t *testing.T) {
	const n = 4
	_, exited, all, _, _ := workersAfterBurst(t, n, time.Millisecond)
	all.Wait() // returns only if the idle ones exit by themselves
	if ex := exited.Load(); ex != n {
		t.Fatalf("%d of %d workers exited", ex, n)
	}
}
