package stream_test

import (
	"bytes"
	"testing"
	"time"

	"google.golang.org/protobuf/types/known/wrapperspb"

	"github.com/wsplex/wsplex/internal/plextest"
	"github.com/wsplex/wsplex/mux"
	"github.com/wsplex/wsplex/stream"
)

// holdLong keeps held frames until their stream releases them, so that
// tests of what leaves together hold on a slow machine.
var holdLong = &mux.HandlerOptions{Options: mux.Options{HoldDelay: time.Hour}}

// The open request leaves with the stream's first message, in one
// WebSocket message; with Hold, the half-close joins them.
func TestOpenLeavesWithFirstMessage(t *testing.T) {
	for _, hold := range []bool{false, true} {
		srv, sessions := plextest.NewSessionServer(t, holdLong, 1)
		peer := plextest.DialRaw(t, srv.URL)
		sess := <-sessions
		s, err := stream.Open(t.Context(), sess, "/push", nil)
		if err != nil {
			t.Fatal(err)
		}
		if hold {
			s.Hold()
		}
		if err := s.Send(wrapperspb.String("hello")); err != nil {
			t.Fatal(err)
		}
		if hold {
			if err := s.CloseWrite(); err != nil {
				t.Fatal(err)
			}
		}
		want := unhex(t, `
			00 01 00 01 00 00 00 02 00 00 00 00
			00 00 00 00 00 00 00 02 00 00 00 08  07 0a 05 2f 70 75 73 68
			00 00 00 00 00 00 00 02 00 00 00 08  07 0a 05 68 65 6c 6c 6f`)
		if hold {
			want = append(want, unhex(t, "00 01 00 04 00 00 00 02 00 00 00 00")...)
		}
		peer.WS.SetReadDeadline(time.Now().Add(guard))
		_, got, err := peer.WS.ReadMessage()
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got, want) {
			t.Errorf("hold %v: first message\n% x\nwant\n% x", hold, got, want)
		}
		s.Close()
	}
}
