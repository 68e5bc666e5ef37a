package mux_test

import (
	"encoding/binary"
	"fmt"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/wsplex/wsplex/internal/plextest"
	"github.com/wsplex/wsplex/mux"
)

// framesOf splits one WebSocket message into its yamux frames, written as
// "type/flags/id/body", for comparison.
func framesOf(t *testing.T, msg []byte) []string {
	t.Helper()
	var out []string
	for len(msg) > 0 {
		if len(msg) < 12 {
			t.Fatalf("message ends in a partial header: % x", msg)
		}
		typ, flags, id, n := msg[1], binary.BigEndian.Uint16(msg[2:4]), binary.BigEndian.Uint32(msg[4:8]), binary.BigEndian.Uint32(msg[8:12])
		body := ""
		if typ == plextest.TypeData || typ == plextest.TypeReset {
			body = string(msg[12 : 12+n])
			msg = msg[12+n:]
		} else {
			msg = msg[12:]
		}
		out = append(out, fmt.Sprintf("%d/%d/%d/%s", typ, flags, id, body))
	}
	return out
}

// readMessage reads the peer's next WebSocket message, bounded by guard.
func readMessage(t *testing.T, peer *plextest.RawPeer) []string {
	t.Helper()
	peer.WS.SetReadDeadline(time.Now().Add(guard))
	_, msg, err := peer.WS.ReadMessage()
	if err != nil {
		t.Fatalf("read: %v", err)
	}
	return framesOf(t, msg)
}

// holdLong keeps held frames until their stream releases them, so that
// tests of what leaves together hold on a slow machine.
var holdLong = &mux.HandlerOptions{Options: mux.Options{HoldDelay: time.Hour}}

// openFromPeer opens stream 1 from the raw peer with a request, accepts
// it and reads the request, as a server does before it answers.
func openFromPeer(t *testing.T, opts *mux.HandlerOptions) (*plextest.RawPeer, *mux.Stream) {
	t.Helper()
	peer, server := rawServer(t, opts)
	f := plextest.Frame
	if err := peer.Send(f(plextest.TypeWindow, plextest.FlagSYN, 1, 0), f(plextest.TypeData, 0, 1, 3, []byte("req")...)); err != nil {
		t.Fatal(err)
	}
	st := accept(t, server)
	readRequest(t, st)
	return peer, st
}

func readRequest(t *testing.T, st *mux.Stream) {
	t.Helper()
	buf := make([]byte, 3)
	if _, err := io.ReadFull(st, buf); err != nil || string(buf) != "req" {
		t.Fatalf("read %q, %v", buf, err)
	}
}

// What a held stream writes, and its ACK and FIN, leave in one message.
func TestHoldSendsFramesTogether(t *testing.T) {
	peer, st := openFromPeer(t, holdLong)
	if _, err := st.Write([]byte("headers")); err != nil {
		t.Fatal(err)
	}
	if got, want := strings.Join(readMessage(t, peer), " "), "1/2/1/ 0/0/1/headers"; got != want {
		t.Fatalf("first message has frames %s, want %s", got, want)
	}
	if err := peer.Send(plextest.Frame(plextest.TypeData, 0, 1, 3, []byte("req")...)); err != nil {
		t.Fatal(err)
	}
	readRequest(t, st)
	st.Hold()
	for _, s := range []string{"answer", "response"} {
		if _, err := st.Write([]byte(s)); err != nil {
			t.Fatal(err)
		}
	}
	if err := st.CloseWrite(); err != nil {
		t.Fatal(err)
	}
	got := strings.Join(readMessage(t, peer), " ")
	if want := "0/0/1/answer 0/0/1/response 1/4/1/"; got != want {
		t.Fatalf("second message has frames %s, want %s", got, want)
	}
}

// A new stream's ACK waits for its first write, and leaves with it.
func TestAckLeavesWithFirstWrite(t *testing.T) {
	peer, st := openFromPeer(t, holdLong)
	if _, err := st.Write([]byte("hi")); err != nil {
		t.Fatal(err)
	}
	got := strings.Join(readMessage(t, peer), " ")
	if want := "1/2/1/ 0/0/1/hi"; got != want {
		t.Fatalf("first message has frames %s, want %s", got, want)
	}
}

// Held frames leave by themselves when nothing ends the hold.
func TestHeldFramesLeaveWithoutFlush(t *testing.T) {
	peer, st := openFromPeer(t, nil)
	st.Hold()
	if _, err := st.Write([]byte("forgotten")); err != nil {
		t.Fatal(err)
	}
	var got []string
	for len(got) < 2 {
		got = append(got, readMessage(t, peer)...)
	}
	if want := "1/2/1/ 0/0/1/forgotten"; strings.Join(got, " ") != want {
		t.Fatalf("frames %s, want %s", strings.Join(got, " "), want)
	}
}

// Flush sends what is held, and writes after it leave at once.
func TestFlushEndsHold(t *testing.T) {
	peer, st := openFromPeer(t, holdLong)
	st.Hold()
	if _, err := st.Write([]byte("a")); err != nil {
		t.Fatal(err)
	}
	st.Flush()
	if got, want := strings.Join(readMessage(t, peer), " "), "1/2/1/ 0/0/1/a"; got != want {
		t.Fatalf("frames %s, want %s", got, want)
	}
	if _, err := st.Write([]byte("b")); err != nil {
		t.Fatal(err)
	}
	if got, want := strings.Join(readMessage(t, peer), " "), "0/0/1/b"; got != want {
		t.Fatalf("frames %s, want %s", got, want)
	}
}

// A stream its peer half-closed before the accept is acknowledged too
// (SPEC.md §4.3), once: yamux sends no ACK for it by itself.
func TestAckForStreamHalfClosedBeforeAccept(t *testing.T) {
	peer, server := rawServer(t, nil)
	f := plextest.Frame
	if err := peer.Send(
		f(plextest.TypeWindow, plextest.FlagSYN, 1, 0),
		f(plextest.TypeData, 0, 1, 3, []byte("req")...),
		f(plextest.TypeWindow, plextest.FlagFIN, 1, 0),
		f(plextest.TypePing, plextest.FlagSYN, 0, 42),
	); err != nil {
		t.Fatal(err)
	}
	// The ping's answer means that the session read the FIN before it.
	if hdr, _, err := peer.ReadFrame(); err != nil || hdr[1] != plextest.TypePing {
		t.Fatalf("frame % x, %v; want the ping's answer", hdr, err)
	}
	st := accept(t, server)
	readRequest(t, st)
	if _, err := st.Write([]byte("res")); err != nil {
		t.Fatal(err)
	}
	if err := st.CloseWrite(); err != nil {
		t.Fatal(err)
	}
	var got []string
	for {
		hdr, body, err := peer.ReadFrame()
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, fmt.Sprintf("%d/%d/%d/%s", hdr[1], binary.BigEndian.Uint16(hdr[2:4]), binary.BigEndian.Uint32(hdr[4:8]), body))
		if hdr[1] == plextest.TypeWindow && binary.BigEndian.Uint16(hdr[2:4])&plextest.FlagFIN != 0 {
			break
		}
	}
	if want := "1/2/1/ 0/0/1/res 1/4/1/"; strings.Join(got, " ") != want {
		t.Fatalf("frames %s, want %s", strings.Join(got, " "), want)
	}
}
