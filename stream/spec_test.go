package stream_test

import (
	"bytes"
	"context"
	"encoding/hex"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	"google.golang.org/protobuf/types/known/wrapperspb"

	"github.com/wsplex/wsplex/internal/plextest"
	"github.com/wsplex/wsplex/mux"
	"github.com/wsplex/wsplex/stream"
)

// unhex decodes hex with spaces and newlines, as SPEC.md writes bytes.
func unhex(t *testing.T, s string) []byte {
	t.Helper()
	b, err := hex.DecodeString(strings.Join(strings.Fields(s), ""))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestWorkedExample sends the client's bytes of SPEC.md §11 from a raw
// WebSocket client to a Go server and checks that the server answers with
// exactly the bytes SPEC.md shows (message boundaries aside, which may
// differ).
func TestWorkedExample(t *testing.T) {
	routes := stream.NewRouter(nil)
	routes.HandleFunc("/echo", func(ctx context.Context, s *stream.Stream) error {
		for {
			var m wrapperspb.StringValue
			if err := s.Receive(&m); err == io.EOF {
				return nil
			} else if err != nil {
				return err
			}
			if err := s.Send(&m); err != nil {
				return err
			}
		}
	})
	srv := plextest.NewServer(t, func(sess *mux.Session) { routes.Serve(sess) }, nil)
	for _, tc := range []struct {
		name       string
		client     []string // messages, in order; the last ones wait for the server's answer
		wait       int      // send client[wait:] once the server sent this many bytes
		server     string
		serverTail string // sent by the server after client[wait:]
	}{
		{
			name: "echo",
			client: []string{
				"00 01 00 01 00 00 00 01 00 00 00 00",
				"00 00 00 00 00 00 00 01 00 00 00 08  07 0a 05 2f 65 63 68 6f",
				"00 00 00 00 00 00 00 01 00 00 00 08  07 0a 05 68 65 6c 6c 6f",
				"00 01 00 04 00 00 00 01 00 00 00 00",
			},
			wait: 3,
			server: `00 01 00 02 00 00 00 01 00 00 00 00
				00 00 00 00 00 00 00 01 00 00 00 03  02 0a 00
				00 00 00 00 00 00 00 01 00 00 00 08  07 0a 05 68 65 6c 6c 6f`,
			serverTail: "00 01 00 04 00 00 00 01 00 00 00 00",
		},
		{
			name: "refused",
			client: []string{
				"00 01 00 01 00 00 00 01 00 00 00 00",
				"00 00 00 00 00 00 00 01 00 00 00 08  07 0a 05 2f 6e 6f 70 65",
				"00 01 00 04 00 00 00 01 00 00 00 00",
			},
			wait: 2,
			server: `00 01 00 02 00 00 00 01 00 00 00 00
				00 00 00 00 00 00 00 01 00 00 00 24
				23 0a 21 08 05 12 1d 6e 6f 20 68 61 6e 64 6c 65 72 20 66 6f 72 20 73 74 72 65 61 6d 20 22 2f 6e 6f 70 65 22
				00 04 00 00 00 00 00 01 00 00 00 21
				08 05 12 1d 6e 6f 20 68 61 6e 64 6c 65 72 20 66 6f 72 20 73 74 72 65 61 6d 20 22 2f 6e 6f 70 65 22
				00 01 00 04 00 00 00 01 00 00 00 00`,
		},
		{
			name: "cancelled",
			client: []string{
				"00 01 00 01 00 00 00 01 00 00 00 00",
				"00 00 00 00 00 00 00 01 00 00 00 08  07 0a 05 2f 65 63 68 6f",
				"00 04 00 00 00 00 00 01 00 00 00 0c  08 01 12 08 63 61 6e 63 65 6c 65 64",
				"00 01 00 04 00 00 00 01 00 00 00 00",
			},
			wait: 2,
			server: `00 01 00 02 00 00 00 01 00 00 00 00
				00 00 00 00 00 00 00 01 00 00 00 03  02 0a 00`,
			serverTail: "00 01 00 04 00 00 00 01 00 00 00 00",
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			d := websocket.Dialer{Subprotocols: []string{mux.Subprotocol}}
			ws, _, err := d.DialContext(t.Context(), srv.URL, nil)
			if err != nil {
				t.Fatal(err)
			}
			defer ws.Close()
			send := func(msgs []string) {
				for _, m := range msgs {
					if err := ws.WriteMessage(websocket.BinaryMessage, unhex(t, m)); err != nil {
						t.Fatal(err)
					}
				}
			}
			read := func(want []byte) {
				t.Helper()
				ws.SetReadDeadline(time.Now().Add(10 * time.Second))
				var got []byte
				for len(got) < len(want) {
					_, p, err := ws.ReadMessage()
					if err != nil {
						t.Fatalf("after % x: %v", got, err)
					}
					got = append(got, p...)
				}
				if !bytes.Equal(got, want) {
					t.Fatalf("server sent\n% x\nwant\n% x", got, want)
				}
			}
			send(tc.client[:tc.wait])
			read(unhex(t, tc.server))
			send(tc.client[tc.wait:])
			if tc.serverTail != "" {
				read(unhex(t, tc.serverTail))
			}
		})
	}
}
