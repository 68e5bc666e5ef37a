package mux_test

// Tests of the promises outside checks found broken: each fails without
// the change that keeps it.

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"io"
	"log/slog"
	"net"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"

	"github.com/wsplex/wsplex"
	"github.com/wsplex/wsplex/internal/plextest"
	"github.com/wsplex/wsplex/mux"
	wsplexv1 "github.com/wsplex/wsplex/proto/wsplex/v1"
)

// guard bounds a wait that must end; it fails the test, on a loaded
// machine too, only if it does not end at all.
const guard = 30 * time.Second

func waitDone(t *testing.T, ch <-chan struct{}, what string) {
	t.Helper()
	select {
	case <-ch:
	case <-time.After(guard):
		t.Fatalf("%s: still waiting after %v", what, guard)
	}
}

func resetBody(t *testing.T, code wsplexv1.Code, msg string) []byte {
	t.Helper()
	b, err := proto.Marshal(&wsplexv1.Status{Code: code, Message: msg})
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// rawServer returns a server whose sessions come out of the channel, and
// a RawPeer connected to it with its server session.
func rawServer(t *testing.T, opts *mux.HandlerOptions) (*plextest.RawPeer, *mux.Session) {
	t.Helper()
	srv, sessions := plextest.NewSessionServer(t, opts, 1)
	peer := plextest.DialRaw(t, srv.URL)
	return peer, <-sessions
}

func accept(t *testing.T, s *mux.Session) *mux.Stream {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), guard)
	defer cancel()
	st, err := s.Accept(ctx)
	if err != nil {
		t.Fatalf("Accept: %v", err)
	}
	t.Cleanup(func() { st.Close() })
	return st
}

// A plain yamux RST, as another yamux implementation sends to abort a
// stream, must end the stream's context, not only its writes.
func TestYamuxRSTCancelsContext(t *testing.T) {
	peer, server := rawServer(t, nil)
	f := plextest.Frame
	if err := peer.Send(f(plextest.TypeWindow, plextest.FlagSYN, 1, 0), f(plextest.TypeData, 0, 1, 5, []byte("hello")...)); err != nil {
		t.Fatal(err)
	}
	st := accept(t, server)
	if err := peer.Send(f(plextest.TypeWindow, plextest.FlagRST, 1, 0)); err != nil {
		t.Fatal(err)
	}
	waitDone(t, st.Context().Done(), "context after RST")
	if code := wsplex.CodeOf(context.Cause(st.Context())); code != wsplex.CodeUnavailable {
		t.Fatalf("cause %v, want unavailable", context.Cause(st.Context()))
	}
	if _, err := st.Read(make([]byte, 5)); wsplex.CodeOf(err) != wsplex.CodeUnavailable {
		t.Fatalf("read after RST: %v (its data is dropped)", err)
	}
	if _, err := st.Write([]byte("x")); wsplex.CodeOf(err) != wsplex.CodeUnavailable {
		t.Fatalf("write after RST: %v", err)
	}
}

// MaxStreams refuses only the streams beyond it, even when a burst
// arrives before the first Accept.
func TestMaxStreamsRefusesOnlyTheExcess(t *testing.T) {
	client, server := plextest.SessionPair(t, &mux.Options{MaxStreams: 4})
	var streams []*mux.Stream
	for range 5 {
		s, err := client.Open(t.Context())
		if err != nil {
			t.Fatal(err)
		}
		defer s.Close()
		streams = append(streams, s)
	}
	// The fifth is refused before anything is accepted.
	if _, err := streams[4].Read(make([]byte, 1)); wsplex.CodeOf(err) != wsplex.CodeResourceExhausted {
		t.Fatalf("fifth stream: %v, want resource_exhausted", err)
	}
	for i, s := range streams[:4] {
		b := accept(t, server)
		if b.ID() != s.ID() {
			t.Fatalf("accepted stream %d, want %d", b.ID(), s.ID())
		}
		if _, err := s.Write([]byte{byte(i)}); err != nil {
			t.Fatalf("stream %d: %v", i, err)
		}
		got := make([]byte, 1)
		if _, err := io.ReadFull(b, got); err != nil || got[0] != byte(i) {
			t.Fatalf("stream %d read %v, %v", i, got, err)
		}
	}
}

// Data sent after a reset frame is not delivered: SPEC.md §5 promises
// only the data sent before it.
func TestDataAfterResetIsDropped(t *testing.T) {
	peer, server := rawServer(t, nil)
	f := plextest.Frame
	status := resetBody(t, wsplexv1.Code_CODE_ABORTED, "stop")
	if err := peer.Send(
		f(plextest.TypeWindow, plextest.FlagSYN, 1, 0),
		f(plextest.TypeData, 0, 1, 6, []byte("before")...),
		f(plextest.TypeReset, 0, 1, uint32(len(status)), status...),
		f(plextest.TypeData, 0, 1, 5, []byte("after")...),
	); err != nil {
		t.Fatal(err)
	}
	st := accept(t, server)
	got, err := io.ReadAll(st)
	if string(got) != "before" || wsplex.CodeOf(err) != wsplex.CodeAborted {
		t.Fatalf("read %q, %v; want \"before\" then aborted", got, err)
	}
}

// Each side may reset a stream while the peer's reset is on its way: each
// keeps the status it sent, and the session goes on.
func TestCrossingResets(t *testing.T) {
	client, server := plextest.SessionPair(t, nil)
	for range 20 {
		a, b := streamPair(t, client, server)
		var wg sync.WaitGroup
		wg.Go(func() { a.Reset(wsplex.NewError(wsplex.CodeAborted, "a")) })
		wg.Go(func() { b.Reset(wsplex.NewError(wsplex.CodeCanceled, "b")) })
		wg.Wait()
		var e *wsplex.Error
		if _, err := a.Read(make([]byte, 1)); !errors.As(err, &e) || e.Message != "a" || e.Remote {
			t.Fatalf("a read %v, want its own reset", err)
		}
		if _, err := b.Read(make([]byte, 1)); !errors.As(err, &e) || e.Message != "b" || e.Remote {
			t.Fatalf("b read %v, want its own reset", err)
		}
	}
	a, b := streamPair(t, client, server)
	a.Write([]byte("ok"))
	if _, err := io.ReadFull(b, make([]byte, 2)); err != nil {
		t.Fatal(err)
	}
	if client.Err() != nil || server.Err() != nil {
		t.Fatalf("sessions ended: %v, %v", client.Err(), server.Err())
	}
}

// A code this side does not know reads as unknown (SPEC.md §9).
func TestUnknownCodeReadsAsUnknown(t *testing.T) {
	peer, server := rawServer(t, nil)
	f := plextest.Frame
	status := resetBody(t, 99, "from the future")
	peer.Send(f(plextest.TypeWindow, plextest.FlagSYN, 1, 0), f(plextest.TypeReset, 0, 1, uint32(len(status)), status...))
	st := accept(t, server)
	var e *wsplex.Error
	if _, err := st.Read(make([]byte, 1)); !errors.As(err, &e) || e.Code != wsplex.CodeUnknown || !strings.Contains(e.Message, "99") {
		t.Fatalf("read %v, want unknown, naming code 99", err)
	}
}

// Frames for a finished stream are ignored (SPEC.md §4.5): a second FIN
// is fatal only while the stream exists.
func TestFramesForFinishedStreamsAreIgnored(t *testing.T) {
	peer, server := rawServer(t, nil)
	f := plextest.Frame
	peer.Send(f(plextest.TypeWindow, plextest.FlagSYN, 1, 0), f(plextest.TypeWindow, plextest.FlagFIN, 1, 0))
	st := accept(t, server)
	if _, err := st.Read(make([]byte, 1)); err != io.EOF {
		t.Fatalf("read: %v", err)
	}
	st.Close() // sends FIN: the stream is finished
	for {
		hdr, _, err := peer.ReadFrame()
		if err != nil {
			t.Fatal(err)
		}
		if hdr[1] == plextest.TypeWindow && hdr[3]&plextest.FlagFIN != 0 {
			break
		}
	}
	status := resetBody(t, wsplexv1.Code_CODE_ABORTED, "late")
	peer.Send(
		f(plextest.TypeWindow, plextest.FlagFIN, 1, 0),
		f(plextest.TypeData, 0, 1, 3, []byte("abc")...),
		f(plextest.TypeReset, 0, 1, uint32(len(status)), status...),
		f(plextest.TypeWindow, 0, 7, 100), // never opened
		f(plextest.TypeWindow, plextest.FlagSYN, 3, 0),
	)
	next := accept(t, server)
	if next.ID() != 3 || server.Err() != nil {
		t.Fatalf("accepted %d, session %v", next.ID(), server.Err())
	}
}

// The session answers yamux pings itself.
func TestPingIsAnswered(t *testing.T) {
	peer, _ := rawServer(t, nil)
	peer.Send(plextest.Frame(plextest.TypePing, plextest.FlagSYN, 0, 0xdecaf))
	hdr, _, err := peer.ReadFrame()
	if err != nil {
		t.Fatal(err)
	}
	if want := plextest.Frame(plextest.TypePing, plextest.FlagACK, 0, 0xdecaf); !bytes.Equal(hdr, want) {
		t.Fatalf("answer % x, want % x", hdr, want)
	}
}

// A flood of pings must not make the server hold a goroutine or a reply
// per ping: yamux starts a goroutine for each. The peer reads nothing.
func TestPingFloodHoldsNothing(t *testing.T) {
	peer, server := rawServer(t, nil)
	before := runtime.NumGoroutine()
	ping := plextest.Frame(plextest.TypePing, plextest.FlagSYN, 0, 1)
	batch := bytes.Repeat(ping, 10000)
	peak := 0
	for range 50 { // 500,000 pings, 6 MB
		if err := peer.Send(batch); err != nil {
			t.Fatal(err)
		}
		peak = max(peak, runtime.NumGoroutine())
	}
	// A stream round trip: the pings before it have been handled.
	peer.Send(plextest.Frame(plextest.TypeWindow, plextest.FlagSYN, 1, 0))
	accept(t, server)
	peak = max(peak, runtime.NumGoroutine())
	if peak-before > 20 {
		t.Fatalf("goroutines rose from %d to %d during the ping flood", before, peak)
	}
	if server.Err() != nil {
		t.Fatalf("session ended: %v", server.Err())
	}
}

// Refused streams cost nothing: a peer that opens streams beyond
// MaxStreams and never ends them leaves only MaxStreams tracked.
func TestRefusedStreamsAreNotKept(t *testing.T) {
	peer, server := rawServer(t, &mux.HandlerOptions{Options: mux.Options{MaxStreams: 8}})
	var batch [][]byte
	for id := uint32(1); id < 2*10008; id += 2 {
		batch = append(batch, plextest.Frame(plextest.TypeWindow, plextest.FlagSYN, id, 0))
		if len(batch) == 1000 {
			if err := peer.Send(batch...); err != nil {
				t.Fatal(err)
			}
			batch = batch[:0]
		}
	}
	peer.Send(batch...)
	// Read the refusals: a reset with resource_exhausted, then a RST, for
	// each stream beyond the 8.
	refused := 0
	for refused < 10000 {
		hdr, body, err := peer.ReadFrame()
		if err != nil {
			t.Fatal(err)
		}
		if hdr[1] == plextest.TypeReset {
			var st wsplexv1.Status
			if err := proto.Unmarshal(body, &st); err != nil || st.Code != wsplexv1.Code_CODE_RESOURCE_EXHAUSTED {
				t.Fatalf("reset %v, %v", &st, err)
			}
			refused++
		}
	}
	if all, fromPeer := server.Tracked(); all != 8 || fromPeer != 8 {
		t.Fatalf("the server tracks %d streams (%d from the peer), want 8", all, fromPeer)
	}
}

// The session window bounds the data a peer can make the server hold:
// a peer sending a full initial window on many streams that nobody reads
// gets the streams beyond it reset, and new streams refused.
func TestSessionWindowBoundsHeldData(t *testing.T) {
	const window = 1 << 20
	peer, server := rawServer(t, &mux.HandlerOptions{Options: mux.Options{SessionWindow: window}})
	chunk := make([]byte, 64<<10)
	for id := uint32(1); id <= 2*16; id += 2 {
		frames := [][]byte{plextest.Frame(plextest.TypeWindow, plextest.FlagSYN, id, 0)}
		for range 4 { // 256 KiB: the initial window
			frames = append(frames, plextest.Frame(plextest.TypeData, 0, id, uint32(len(chunk)), chunk...))
		}
		if err := peer.Send(frames...); err != nil {
			t.Fatal(err)
		}
	}
	peer.WS.SetReadDeadline(time.Now().Add(guard))
	resets := 0
	for resets < 12 {
		hdr, body, err := peer.ReadFrame()
		if err != nil {
			t.Fatalf("after %d resets: %v", resets, err)
		}
		if hdr[1] == plextest.TypeReset {
			var st wsplexv1.Status
			proto.Unmarshal(body, &st)
			if st.Code != wsplexv1.Code_CODE_RESOURCE_EXHAUSTED {
				t.Fatalf("reset with %v", &st)
			}
			resets++
		}
	}
	if held := server.Held(); held > window {
		t.Fatalf("the server holds %d bytes, over its %d-byte session window", held, window)
	}
	if server.Err() != nil {
		t.Fatalf("session ended: %v", server.Err())
	}
}

// A stream's window grows while its reader keeps up, so that one bulk
// stream is not held to 256 KiB in flight, and stays within WindowSize.
func TestWindowGrowsForBulkStream(t *testing.T) {
	client, server := plextest.SessionPair(t, &mux.Options{WindowSize: 4 << 20})
	a, b := streamPair(t, client, server)
	go func() {
		buf := make([]byte, 64<<10)
		for range 256 { // 16 MiB
			if _, err := a.Write(buf); err != nil {
				return
			}
		}
		a.CloseWrite()
	}()
	n, err := io.Copy(io.Discard, b)
	if err != nil || n != 16<<20 {
		t.Fatalf("read %d, %v", n, err)
	}
	if w := b.Window(); w <= 256<<10 || w > 4<<20 {
		t.Fatalf("the stream's window is %d, want it grown past 256 KiB, up to 4 MiB", w)
	}
}

// A peer that reads Window Updates late, as a browser's page does behind
// its own work, keeps much of the window in flight, so the receiver never
// sees it nearly used up; the Ping sent with a Window Update measures what
// arrives in one round trip, and the window grows to cover it.
func TestWindowGrowsToWhatArrivesInARoundTrip(t *testing.T) {
	peer, server := rawServer(t, nil)
	f := plextest.Frame
	peer.WS.SetReadDeadline(time.Now().Add(guard))
	peer.Send(f(plextest.TypeWindow, plextest.FlagSYN, 1, 0))
	st := accept(t, server)
	go io.Copy(io.Discard, st)
	chunk := make([]byte, 32<<10)
	send := func(n int) { // n chunks, 32 KiB each
		for range n {
			if err := peer.Send(f(plextest.TypeData, 0, 1, uint32(len(chunk)), chunk...)); err != nil {
				t.Fatal(err)
			}
		}
	}
	// 160 KiB of the 256 KiB window: the reader's consumption makes a
	// grant due while 96 KiB or more of the window is unused.
	send(5)
	var ping uint32
	for ping == 0 {
		hdr, _, err := peer.ReadFrame()
		if err != nil {
			t.Fatalf("waiting for a Ping with the Window Update: %v", err)
		}
		if hdr[1] == plextest.TypePing && hdr[3] == plextest.FlagSYN {
			ping = binary.BigEndian.Uint32(hdr[8:])
		}
	}
	if w := st.Window(); w != 256<<10 {
		t.Fatalf("window %d before the round trip ends, want 256 KiB", w)
	}
	// Another 160 KiB arrives before the answer: over half the window.
	send(5)
	// The answer, then a Ping of the peer's own: its answer comes once the
	// session has handled the first.
	peer.Send(f(plextest.TypePing, plextest.FlagACK, 0, ping), f(plextest.TypePing, plextest.FlagSYN, 0, ping+1))
	for {
		hdr, _, err := peer.ReadFrame()
		if err != nil {
			t.Fatalf("waiting for the answer to the peer's Ping: %v", err)
		}
		if hdr[1] == plextest.TypePing && hdr[3] == plextest.FlagACK && binary.BigEndian.Uint32(hdr[8:]) == ping+1 {
			break
		}
	}
	// The round trip saw the second 160 KiB (and the first's last chunk if
	// it arrived after the grant).
	if w := st.Window(); w < 320<<10 {
		t.Fatalf("window %d, want at least twice the 160 KiB that arrived in the round trip", w)
	}
}

// A write honours its deadline while the session's output waits for a
// peer that does not read, reports exactly what it queued, and later
// writes carry on where it stopped: nothing is sent twice or lost, and the
// peer's window is never overrun.
func TestWriteDeadlineOnAStalledLink(t *testing.T) {
	peer, server := rawServer(t, nil)
	f := plextest.Frame
	// The peer opens a stream and grants a large window, then stops reading.
	peer.Send(f(plextest.TypeWindow, plextest.FlagSYN, 1, 64<<20))
	st := accept(t, server)
	buf := make([]byte, 64<<10)
	for i := range buf {
		buf[i] = byte(i)
	}
	var written int64
	late := 0
	timeouts := 0
	for timeouts < 5 {
		dl := time.Now().Add(200 * time.Millisecond)
		st.SetWriteDeadline(dl)
		n, err := st.Write(buf)
		written += int64(n)
		if err != nil {
			var ne net.Error
			if !errors.As(err, &ne) || !ne.Timeout() {
				t.Fatalf("write: %v, want a timeout", err)
			}
			timeouts++
			if time.Since(dl) > 3*time.Second {
				late++
			}
		}
		if written > 512<<20 {
			t.Fatal("wrote 512 MiB into a peer that reads nothing")
		}
	}
	if late > 0 {
		t.Fatalf("%d of %d timed-out writes returned over 3 s after their deadline", late, timeouts)
	}
	// The peer reads again; the stream goes on.
	st.SetWriteDeadline(time.Time{})
	go func() {
		st.Write(buf[:1000])
		st.CloseWrite()
	}()
	written += 1000
	var got int64
	for {
		hdr, body, err := peer.ReadFrame()
		if err != nil {
			t.Fatal(err)
		}
		if hdr[1] == plextest.TypeData {
			for i, c := range body {
				if c != byte((got+int64(i))%int64(len(buf))) && got+int64(i) < written-1000 {
					t.Fatalf("byte %d is %d: data was lost or sent twice", got+int64(i), c)
				}
			}
			got += int64(len(body))
		}
		if hdr[1] == plextest.TypeWindow && hdr[3]&plextest.FlagFIN != 0 {
			break
		}
	}
	if got != written {
		t.Fatalf("the peer got %d bytes, writes reported %d", got, written)
	}
	if server.Err() != nil {
		t.Fatalf("session ended: %v", server.Err())
	}
}

// Handler.Shutdown returns when its ctx ends, even while a serve func has
// not returned, as http.Server.Shutdown does.
func TestShutdownHonoursContextWhileServeRuns(t *testing.T) {
	release, serving := make(chan struct{}), make(chan struct{})
	srv := plextest.NewServer(t, func(s *mux.Session) {
		close(serving)
		<-release
	}, nil)
	srv.Dial(t, nil)
	<-serving
	ctx, cancel := context.WithTimeout(t.Context(), 200*time.Millisecond)
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- srv.Handler.Shutdown(ctx) }()
	select {
	case err := <-done:
		if !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("Shutdown = %v", err)
		}
	case <-time.After(guard):
		t.Fatal("Shutdown ignored its context")
	}
	close(release)
}

// A client's normal close is not a warning.
func TestNormalCloseIsNotAWarning(t *testing.T) {
	var logs plextest.LogBuffer
	log := slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelWarn}))
	srv, sessions := plextest.NewSessionServer(t, &mux.HandlerOptions{Options: mux.Options{Logger: log}}, 1)
	client := srv.Dial(t, nil)
	server := <-sessions
	client.Close()
	waitDone(t, server.Done(), "server session")
	if got := logs.String(); got != "" {
		t.Fatalf("logged:\n%s", got)
	}
}

// yamux writes only 12-byte control frames here. A yamux version that
// writes anything else (a data frame's header and body, say) must fail
// loudly instead of silently corrupting the byte stream.
func TestUnexpectedYamuxWritesFail(t *testing.T) {
	client, _ := plextest.SessionPair(t, nil)
	data := plextest.Frame(plextest.TypeData, 0, 1, 5, []byte("hello")...)
	if _, err := client.WriteControl(data); err == nil || !strings.Contains(err.Error(), "not supported") {
		t.Fatalf("a data frame in one write: %v", err)
	}
	if _, err := client.WriteControl(data[:12]); err == nil || !strings.Contains(err.Error(), "not supported") {
		t.Fatalf("a data frame's header: %v", err)
	}
	ping := plextest.Frame(plextest.TypePing, plextest.FlagSYN, 0, 1)
	if _, err := client.WriteControl(ping); err == nil {
		t.Fatal("a ping from yamux was accepted")
	}
}

// A yamux RST right after a reset frame ends the stream with that frame's
// status (SPEC.md §4.7): a clean end for CodeOK.
func TestRSTAfterResetKeepsTheStatus(t *testing.T) {
	peer, server := rawServer(t, nil)
	f := plextest.Frame
	peer.Send(f(plextest.TypeWindow, plextest.FlagSYN, 1, 0), f(plextest.TypeWindow, plextest.FlagSYN, 3, 0))
	ok, aborted := accept(t, server), accept(t, server)
	status := resetBody(t, wsplexv1.Code_CODE_ABORTED, "gone")
	peer.Send(
		f(plextest.TypeReset, 0, 1, 0),
		f(plextest.TypeWindow, plextest.FlagRST, 1, 0),
		f(plextest.TypeReset, 0, 3, uint32(len(status)), status...),
		f(plextest.TypeWindow, plextest.FlagRST, 3, 0),
	)
	waitDone(t, aborted.Context().Done(), "context after RST")
	if _, err := ok.Read(make([]byte, 1)); err != io.EOF {
		t.Fatalf("read after a CodeOK reset and a RST: %v, want io.EOF", err)
	}
	if _, err := ok.Write([]byte("x")); !errors.Is(err, wsplex.ErrPeerClosed) {
		t.Fatalf("write after a CodeOK reset and a RST: %v", err)
	}
	if _, err := aborted.Read(make([]byte, 1)); wsplex.CodeOf(err) != wsplex.CodeAborted {
		t.Fatalf("read after an aborted reset and a RST: %v", err)
	}
}

// A burst of opens never exceeds the accept backlog: the opener waits for
// ACKs, and the acceptor counts a stream accepted before its ACK leaves.
func TestBurstOfOpensIsNotRefused(t *testing.T) {
	client, server := plextest.SessionPair(t, nil)
	go func() {
		for {
			st, err := server.Accept(context.Background())
			if err != nil {
				return
			}
			st.Write([]byte{1})
			st.Close()
		}
	}()
	var streams []*mux.Stream
	for range 2000 {
		s, err := client.Open(t.Context())
		if err != nil {
			t.Fatal(err)
		}
		defer s.Close()
		streams = append(streams, s)
	}
	for i, s := range streams {
		if _, err := io.ReadFull(s, make([]byte, 1)); err != nil {
			t.Fatalf("stream %d of 2000: %v", i, err)
		}
	}
}

// Many small frames make a stream hold little more memory than data: a
// 1025-byte body does not take a 64 KiB chunk.
func TestSmallFramesHoldLittleMemory(t *testing.T) {
	peer, server := rawServer(t, nil)
	var before runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	body := make([]byte, 1025)
	sent := 0
	for id := uint32(1); id <= 2*32; id += 2 {
		frames := [][]byte{plextest.Frame(plextest.TypeWindow, plextest.FlagSYN, id, 0)}
		for range 255 { // just under the 256 KiB window
			frames = append(frames, plextest.Frame(plextest.TypeData, 0, id, uint32(len(body)), body...))
			sent += len(body)
		}
		if err := peer.Send(frames...); err != nil {
			t.Fatal(err)
		}
	}
	peer.Send(plextest.Frame(plextest.TypePing, plextest.FlagSYN, 0, 1))
	for {
		hdr, _, err := peer.ReadFrame()
		if err != nil {
			t.Fatal(err)
		}
		if hdr[1] == plextest.TypePing {
			break // everything before the ping was read
		}
	}
	var after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&after)
	grew := int64(after.HeapAlloc) - int64(before.HeapAlloc)
	if grew > 3*int64(sent) || server.Held() > 2*int64(sent) {
		t.Fatalf("%d bytes in 1025-byte frames: the heap grew by %d, the session holds %d", sent, grew, server.Held())
	}
}

// A peer that reads nothing while it makes the session queue answers (here
// refusals of streams beyond MaxStreams) ends its session, instead of
// growing the queue without bound.
func TestPeerThatReadsNothingCannotGrowTheQueue(t *testing.T) {
	srv, sessions := plextest.NewSessionServer(t, &mux.HandlerOptions{Options: mux.Options{MaxStreams: 1, CloseTimeout: 100 * time.Millisecond}}, 1)
	peer := plextest.DialRaw(t, srv.URL)
	server := <-sessions
	// Never read; send SYNs until the server gives up.
	id := uint32(1)
	for !isDone(server.Done()) {
		var frames [][]byte
		for range 1000 {
			frames = append(frames, plextest.Frame(plextest.TypeWindow, plextest.FlagSYN, id, 0))
			id += 2
		}
		if err := peer.Send(frames...); err != nil {
			break // the server closed the connection
		}
	}
	waitDone(t, server.Done(), "the session of a peer that reads nothing")
	if err := server.Err(); err == nil || !strings.Contains(err.Error(), "reads nothing") {
		t.Fatalf("session ended with %v", err)
	}
}

func isDone(ch <-chan struct{}) bool {
	select {
	case <-ch:
		return true
	default:
		return false
	}
}

// A write that fails because the connection failed reports the session's
// end (ErrSessionClosed, with the cause), even when the session has not
// noticed yet: here the peer reads nothing, so the write stalls until
// WriteTimeout, and the writer learns of it before the session does.
func TestWriteOnFailedConnectionReportsSessionClosed(t *testing.T) {
	for round := range 3 {
		peer, server := rawServer(t, &mux.HandlerOptions{Options: mux.Options{WriteTimeout: 200 * time.Millisecond}})
		f := plextest.Frame
		// Open a stream and grant it a send window far beyond what the
		// kernel buffers, then never read.
		if err := peer.Send(f(plextest.TypeWindow, plextest.FlagSYN, 1, 1<<30)); err != nil {
			t.Fatal(err)
		}
		st := accept(t, server)
		buf := make([]byte, 64<<10)
		var err error
		for err == nil {
			_, err = st.Write(buf)
		}
		if !errors.Is(err, mux.ErrSessionClosed) {
			t.Fatalf("round %d: write on a connection that failed: %v, want mux.ErrSessionClosed", round, err)
		}
	}
}

// A session that closes sends nothing its streams do after the close
// began: a handler woken by the end cannot slip a FIN or a reset in before
// the close frame (SPEC.md §10), so the peer's streams end with the
// session's error, not with a clean end of stream.
func TestCloseSendsNothingAfterIt(t *testing.T) {
	for round := range 20 {
		srv, sessions := plextest.NewSessionServer(t, nil, 1)
		client := srv.Dial(t, nil)
		server := <-sessions
		go plextest.Echo(server)
		st, err := client.Open(t.Context())
		if err != nil {
			t.Fatal(err)
		}
		writeErr := make(chan error, 1)
		go func() {
			buf := make([]byte, 16<<10)
			for {
				if _, err := st.Write(buf); err != nil {
					writeErr <- err
					return
				}
			}
		}()
		if _, err := io.ReadFull(st, make([]byte, 256<<10)); err != nil {
			t.Fatalf("reading the echo: %v", err)
		}
		server.Close()
		_, err = io.Copy(io.Discard, st)
		if !errors.Is(err, mux.ErrSessionClosed) {
			t.Fatalf("round %d: read after the peer closed the session: %v, want mux.ErrSessionClosed", round, err)
		}
		if err := <-writeErr; !errors.Is(err, mux.ErrSessionClosed) {
			t.Fatalf("round %d: write after the peer closed the session: %v, want mux.ErrSessionClosed", round, err)
		}
		st.Close()
		client.Close()
	}
}
