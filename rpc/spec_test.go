package rpc_test

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/hex"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"connectrpc.com/connect/v2"
	"github.com/gorilla/websocket"

	pingv1 "github.com/wsplex/wsplex/internal/gen/ping/v1"
	"github.com/wsplex/wsplex/internal/gen/ping/v1/pingv1connect"
	"github.com/wsplex/wsplex/internal/plextest"
	"github.com/wsplex/wsplex/mux"
	"github.com/wsplex/wsplex/rpc"
	"github.com/wsplex/wsplex/stream"
)

// The bytes of SPEC.md §13.7: a unary call and its answer.
const (
	specCall = `
		00 01 00 01 00 00 00 01 00 00 00 00
		00 00 00 00 00 00 00 01 00 00 00 3a
		39 0a 20 2f 77 73 70 6c 65 78 2e 70 69 6e 67 2e 76 31 2e 50 69 6e 67 53 65 72 76 69 63 65 2f 50 69 6e 67
		12 15 0a 0a 77 73 70 6c 65 78 2d 72 70 63 12 07 0a 05 75 6e 61 72 79
		00 00 00 00 00 00 00 01 00 00 00 03  02 08 07
		00 01 00 04 00 00 00 01 00 00 00 00`
	specAnswer = `
		00 01 00 02 00 00 00 01 00 00 00 00
		00 00 00 00 00 00 00 01 00 00 00 03  02 0a 00
		00 00 00 00 00 00 00 01 00 00 00 03  02 08 07
		00 01 00 04 00 00 00 01 00 00 00 00`
)

func unhex(t *testing.T, s string) []byte {
	t.Helper()
	b, err := hex.DecodeString(strings.Join(strings.Fields(s), ""))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// readBytes reads WebSocket messages until it has n bytes, and reports
// how many messages they took.
func readBytes(t *testing.T, ws *websocket.Conn, n int) ([]byte, int) {
	t.Helper()
	ws.SetReadDeadline(time.Now().Add(guard))
	var got []byte
	msgs := 0
	for len(got) < n {
		_, m, err := ws.ReadMessage()
		if err != nil {
			t.Fatalf("read after %d bytes % x: %v", len(got), got, err)
		}
		got = append(got, m...)
		msgs++
	}
	return got, msgs
}

// A Go caller sends the bytes of SPEC.md §13.7, in one WebSocket message,
// and understands the answer SPEC.md shows.
func TestSpecUnaryCaller(t *testing.T) {
	peer := make(chan *websocket.Conn, 1)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		up := websocket.Upgrader{Subprotocols: []string{mux.Subprotocol}}
		ws, err := up.Upgrade(w, r, nil)
		if err != nil {
			return
		}
		peer <- ws
	}))
	t.Cleanup(srv.Close)
	// HoldDelay: what leaves together must not depend on the machine's speed.
	sess, err := mux.Dial(t.Context(), "ws"+strings.TrimPrefix(srv.URL, "http"), &mux.DialOptions{Options: mux.Options{HoldDelay: time.Hour}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { sess.Close() })
	ws := <-peer
	t.Cleanup(func() { ws.Close() })

	client := pingv1connect.NewPingServiceClient(connect.NewClient(rpc.NewTransport(sess, nil)))
	type result struct {
		res *pingv1.PingResponse
		err error
	}
	done := make(chan result, 1)
	go func() {
		res, err := client.Ping(context.Background(), &pingv1.PingRequest{Number: 7})
		done <- result{res, err}
	}()
	want := unhex(t, specCall)
	got, msgs := readBytes(t, ws, len(want))
	if !bytes.Equal(got, want) {
		t.Fatalf("the caller sent\n% x\nwant\n% x", got, want)
	}
	if msgs != 1 {
		t.Errorf("the call took %d WebSocket messages, want 1", msgs)
	}
	if err := ws.WriteMessage(websocket.BinaryMessage, unhex(t, specAnswer)); err != nil {
		t.Fatal(err)
	}
	r := <-done
	if r.err != nil || r.res.GetNumber() != 7 {
		t.Fatalf("Ping: %v, %v", r.res, r.err)
	}
}

// A Go server answers the call of SPEC.md §13.7 with the bytes it shows,
// in one WebSocket message.
func TestSpecUnaryServer(t *testing.T) {
	services := connect.NewServer()
	pingv1connect.RegisterPingServiceHandler(services, newPingServer())
	routes := stream.NewRouter(nil)
	rpc.Mount(routes, services, nil)
	srv := plextest.NewServer(t, func(sess *mux.Session) { routes.Serve(sess) }, &mux.HandlerOptions{Options: mux.Options{HoldDelay: time.Hour}})
	peer := plextest.DialRaw(t, srv.URL)
	if err := peer.Send(unhex(t, specCall)); err != nil {
		t.Fatal(err)
	}
	want := unhex(t, specAnswer)
	got, msgs := readBytes(t, peer.WS, len(want))
	if !bytes.Equal(got, want) {
		t.Fatalf("the server answered\n% x\nwant\n% x", got, want)
	}
	if msgs != 1 {
		t.Errorf("the answer took %d WebSocket messages, want 1", msgs)
	}
}

// A Go server answers a unary call that fails with its answer, status and
// FIN in one WebSocket message (SPEC.md §13.3, §13.4).
func TestSpecUnaryFailureServer(t *testing.T) {
	services := connect.NewServer()
	pingv1connect.RegisterPingServiceHandler(services, newPingServer())
	routes := stream.NewRouter(nil)
	rpc.Mount(routes, services, nil)
	srv := plextest.NewServer(t, func(sess *mux.Session) { routes.Serve(sess) }, &mux.HandlerOptions{Options: mux.Options{HoldDelay: time.Hour}})
	peer := plextest.DialRaw(t, srv.URL)
	call := unhex(t, specCall)
	open := call[:len(call)-15-12]         // the call without its request and FIN
	secret := []byte("\x08\x12\x06secret") // PingRequest{text: "secret"}, delimited
	if err := peer.Send(open, plextest.Frame(plextest.TypeData, 0, 1, uint32(len(secret)), secret...),
		plextest.Frame(plextest.TypeWindow, plextest.FlagFIN, 1, 0)); err != nil {
		t.Fatal(err)
	}
	peer.WS.SetReadDeadline(time.Now().Add(guard))
	_, m, err := peer.WS.ReadMessage()
	if err != nil {
		t.Fatal(err)
	}
	// The message's last frame is the stream's FIN.
	var last []byte
	for len(m) >= 12 {
		last = m[:12]
		n := 12
		if m[1] == plextest.TypeData || m[1] == plextest.TypeReset {
			n += int(binary.BigEndian.Uint32(m[8:12]))
		}
		if n > len(m) {
			t.Fatalf("truncated frame % x", m)
		}
		m = m[n:]
	}
	if last == nil || binary.BigEndian.Uint16(last[2:4])&plextest.FlagFIN == 0 {
		t.Fatalf("the first message ends with frame % x, want the FIN", last)
	}
}
