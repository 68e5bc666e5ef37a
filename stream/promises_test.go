package stream_test

// Tests of the promises outside checks found broken: each fails without
// the change that keeps it.

import (
	"context"
	"errors"
	"fmt"
	"net"
	"runtime"
	"testing"
	"time"

	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/wrapperspb"

	"github.com/wsplex/wsplex/internal/plextest"
	"github.com/wsplex/wsplex/mux"
	"github.com/wsplex/wsplex/stream"
)

const guard = 30 * time.Second

// A client that sends its request, half-closes and closes at once (Close
// before reading the answer) must not lose its request: the handler runs,
// reads it, and its context lives while it does (SPEC.md §5, CodeOK).
func TestCloseBeforeAnswerStillServes(t *testing.T) {
	type seen struct {
		msg string
		err error
	}
	served := make(chan seen, 20)
	routes := stream.NewRouter(nil)
	routes.HandleFunc("/submit", func(ctx context.Context, s *stream.Stream) error {
		var m wrapperspb.StringValue
		err := s.Receive(&m)
		if err == nil && ctx.Err() != nil {
			err = fmt.Errorf("context ended: %v", context.Cause(ctx))
		}
		served <- seen{m.GetValue(), err}
		return nil
	})
	sess := serve(t, routes)
	for i := range 20 {
		s, err := stream.Open(t.Context(), sess, "/submit", nil)
		if err != nil {
			t.Fatal(err)
		}
		want := fmt.Sprint("job ", i)
		if err := s.Send(wrapperspb.String(want)); err != nil {
			t.Fatal(err)
		}
		s.CloseWrite()
		s.Close()
		select {
		case got := <-served:
			if got.err != nil || got.msg != want {
				t.Fatalf("try %d: the handler read %q, %v", i, got.msg, got.err)
			}
		case <-time.After(guard):
			t.Fatalf("try %d: the handler never ran", i)
		}
	}
}

// A Receive that times out in the middle of a message consumes nothing:
// the next Receive returns the whole message, and the stream lives on.
func TestReceiveAfterTimeoutMidMessage(t *testing.T) {
	got := make(chan error, 1)
	secondHalf := make(chan struct{})
	want := wrapperspb.String(string(make([]byte, 10000)))
	routes := stream.NewRouter(nil)
	routes.HandleFunc("/slow", func(ctx context.Context, s *stream.Stream) error {
		s.SetReadDeadline(time.Now().Add(100 * time.Millisecond))
		var m wrapperspb.StringValue
		err := s.Receive(&m)
		var ne net.Error
		if !errors.As(err, &ne) || !ne.Timeout() {
			got <- fmt.Errorf("first Receive: %v, want a timeout", err)
			return nil
		}
		close(secondHalf)
		s.SetReadDeadline(time.Time{})
		if err := s.Receive(&m); err != nil || !proto.Equal(&m, want) {
			got <- fmt.Errorf("second Receive: %v (%d bytes)", err, len(m.GetValue()))
			return nil
		}
		got <- nil
		return nil
	})
	sess := serve(t, routes)
	s := open(t, sess, "/slow", nil)
	b, _ := proto.Marshal(want)
	msg := protowire.AppendVarint(nil, uint64(len(b)))
	msg = append(msg, b...)
	half := len(msg) / 2
	if _, err := s.Write(msg[:half]); err != nil {
		t.Fatal(err)
	}
	select {
	case <-secondHalf:
	case err := <-got:
		t.Fatal(err)
	case <-time.After(guard):
		t.Fatal("no timeout")
	}
	if _, err := s.Write(msg[half:]); err != nil {
		t.Fatal(err)
	}
	if err := <-got; err != nil {
		t.Fatal(err)
	}
}

// Response(ctx) ends its wait when ctx ends, and leaves the read deadline
// the caller had set in place.
func TestResponseKeepsTheReadDeadline(t *testing.T) {
	// A server that accepts streams and never answers them.
	srv := plextest.NewServer(t, func(s *mux.Session) {
		for {
			st, err := s.Accept(context.Background())
			if err != nil {
				return
			}
			defer st.Close()
		}
	}, nil)
	sess := srv.Dial(t, nil)
	s := open(t, sess, "/quiet", nil)
	s.SetReadDeadline(time.Now().Add(500 * time.Millisecond))
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	if _, err := s.Response(ctx); !errors.Is(err, context.Canceled) {
		t.Fatalf("Response = %v, want context.Canceled", err)
	}
	done := make(chan error, 1)
	go func() { done <- s.Receive(new(wrapperspb.StringValue)) }()
	select {
	case err := <-done:
		var ne net.Error
		if !errors.As(err, &ne) || !ne.Timeout() {
			t.Fatalf("Receive = %v, want the caller's deadline to pass", err)
		}
	case <-time.After(guard):
		t.Fatal("Response cleared the read deadline: Receive waits forever")
	}
}

// A length prefix announcing a large message reserves no memory before
// the message's bytes arrive: the stream holds what arrived, not what was
// announced.
func TestLengthPrefixReservesNoMemory(t *testing.T) {
	const streams = 6
	routes := stream.NewRouter(nil)
	routes.HandleFunc("/big", func(ctx context.Context, s *stream.Stream) error {
		return s.Receive(new(wrapperspb.BytesValue))
	})
	sess := serve(t, routes)
	var before runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	// Each stream announces a message of almost 4 MiB (the limit), then
	// sends 300 KiB of it: more than the 256 KiB initial window, so the
	// Write returns only after the server read the prefix and granted
	// more window.
	msg := protowire.AppendVarint(nil, 4<<20-16)
	msg = append(msg, make([]byte, 300<<10)...)
	for range streams {
		s := open(t, sess, "/big", nil)
		s.SetWriteDeadline(time.Now().Add(guard))
		if _, err := s.Write(msg); err != nil {
			t.Fatal(err)
		}
	}
	var after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&after)
	grew := int64(after.HeapAlloc) - int64(before.HeapAlloc)
	if grew > 12<<20 {
		t.Fatalf("the heap grew by %d MiB for %d streams that sent 300 KiB of a 4 MiB message", grew>>20, streams)
	}
	if sess.Err() != nil {
		t.Fatal(sess.Err())
	}
}
