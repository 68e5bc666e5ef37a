package mux

import (
	"bytes"
	"context"
	"encoding/binary"
	"io"
	"net"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	"google.golang.org/protobuf/proto"

	"github.com/wsplex/wsplex/internal/wsconn"
	wsplexv1 "github.com/wsplex/wsplex/proto/wsplex/v1"
)

func frame(typ byte, flags uint16, id uint32, body []byte) []byte {
	var h header
	h[1] = typ
	binary.BigEndian.PutUint16(h[2:4], flags)
	binary.BigEndian.PutUint32(h[4:8], id)
	binary.BigEndian.PutUint32(h[8:12], uint32(len(body)))
	return append(h[:], body...)
}

// FuzzScan builds a valid inbound byte stream from the fuzz input (data
// frames, window updates and wsplex reset frames), feeds it to scan in
// arbitrary pieces, and checks that yamux would see exactly the non-reset
// frames and that every reset reached its stream with its status.
func FuzzScan(f *testing.F) {
	f.Add([]byte{0, 5, 1, 2, 3, 4, 5, 2, 3, 1, 0, 7, 9, 9}, []byte{3, 1, 12})
	f.Add([]byte{2, 0, 2, 1, 1}, []byte{1})
	f.Fuzz(func(t *testing.T, spec, cuts []byte) {
		fc := &frameConn{streams: make(map[uint32]*Stream)}
		var in, want bytes.Buffer
		resets := map[uint32]string{}
		for i := 0; i+1 < len(spec); i += 2 {
			id := uint32(spec[i]>>2) + 1
			n := int(spec[i+1])
			body := bytes.Repeat([]byte{spec[i+1]}, n)
			var fr []byte
			switch spec[i] & 3 {
			case 0:
				fr = frame(typeData, flagSYN, id, body)
			case 1:
				fr = frame(typeWindow, 0, id, nil)
				binary.BigEndian.PutUint32(fr[8:], uint32(n))
			default:
				if _, dup := resets[id]; dup {
					continue
				}
				msg := string(bytes.Repeat([]byte("r"), n)) // proto3 strings are UTF-8
				reason, _ := proto.Marshal(&wsplexv1.Status{Code: wsplexv1.Code_CODE_CANCELED, Message: msg})
				fc.streams[id] = &Stream{id: id}
				resets[id] = msg
				in.Write(frame(typeData, flagRST, id, reason))
				continue
			}
			in.Write(fr)
			want.Write(fr)
		}
		var got bytes.Buffer
		rest := in.Bytes()
		hold := []byte(nil)
		for len(rest) > 0 || len(hold) > 0 {
			k := len(rest)
			if len(cuts) > 0 {
				k = min(k, int(cuts[0])+1)
				cuts = cuts[1:]
			}
			// What Read does: held header bytes first, then new bytes.
			buf := append(append([]byte(nil), fc.hold[:fc.nhold]...), rest[:k]...)
			fc.nhold = 0
			rest = rest[k:]
			n, err := fc.scan(buf)
			if err != nil {
				t.Fatal(err)
			}
			got.Write(buf[:n])
			if k == 0 {
				break
			}
		}
		if fc.nhold != 0 {
			t.Fatalf("%d header bytes left over", fc.nhold)
		}
		if !bytes.Equal(got.Bytes(), want.Bytes()) {
			t.Fatalf("yamux would see %x, want %x", got.Bytes(), want.Bytes())
		}
		for id, msg := range resets {
			st := fc.streams[id]
			if st == nil || st.reset == nil || st.reset.Message != msg || st.reset.Code != wsplexv1.Code_CODE_CANCELED {
				t.Fatalf("stream %d: reset %+v, want message %q", id, st, msg)
			}
		}
	})
}

func TestScanRejectsOversizedReset(t *testing.T) {
	fc := &frameConn{streams: make(map[uint32]*Stream)}
	fr := frame(typeData, flagRST, 1, nil)
	binary.BigEndian.PutUint32(fr[8:], maxResetReason+1)
	if _, err := fc.scan(fr); err == nil {
		t.Fatal("oversized reset reason accepted")
	}
}

func TestScanPassesForeignBytesToYamux(t *testing.T) {
	fc := &frameConn{streams: make(map[uint32]*Stream)}
	in := []byte("GET / HTTP/1.1\r\n\r\n")
	n, err := fc.scan(in)
	if err != nil || n != len(in) {
		t.Fatalf("scan = %d, %v; want all bytes passed for yamux to reject", n, err)
	}
}

// pipeListener hands one net.Pipe end to an http.Server.
type pipeListener struct {
	conns chan net.Conn
	done  chan struct{}
	once  sync.Once
}

func (l *pipeListener) Accept() (net.Conn, error) {
	select {
	case c := <-l.conns:
		return c, nil
	case <-l.done:
		return nil, net.ErrClosed
	}
}

func (l *pipeListener) Close() error   { l.once.Do(func() { close(l.done) }); return nil }
func (l *pipeListener) Addr() net.Addr { return pipeAddr{} }

type pipeAddr struct{}

func (pipeAddr) Network() string { return "pipe" }
func (pipeAddr) String() string  { return "pipe" }

// pipeFrameConn returns a frameConn over a WebSocket whose TCP is
// replaced by net.Pipe, and the raw WebSocket at the other end. A pipe has
// no buffer: a write waits until the peer reads it, which makes the
// moments when frames are written, and so how they are batched, exact.
// A real http.Server and gorilla do the upgrade.
func pipeFrameConn(t *testing.T) (*frameConn, *websocket.Conn) {
	t.Helper()
	return pipeFrameConnWith(t, wsconn.Options{KeepAliveInterval: -1})
}

func pipeFrameConnWith(t *testing.T, opts wsconn.Options) (*frameConn, *websocket.Conn) {
	t.Helper()
	clientEnd, serverEnd := net.Pipe()
	ln := &pipeListener{conns: make(chan net.Conn, 1), done: make(chan struct{})}
	ln.conns <- serverEnd
	peers := make(chan *websocket.Conn, 1)
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ws, err := (&websocket.Upgrader{}).Upgrade(w, r, nil)
		if err != nil {
			t.Error(err)
			return
		}
		peers <- ws
	})}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
	d := websocket.Dialer{NetDialContext: func(context.Context, string, string) (net.Conn, error) { return clientEnd, nil }}
	ws, _, err := d.Dial("ws://pipe/", nil)
	if err != nil {
		t.Fatal(err)
	}
	peer := <-peers
	tc, err := wsconn.New(ws, opts)
	if err != nil {
		t.Fatal(err)
	}
	fc := newFrameConn(tc, tc.Options().MessageSize, tc.Options().CloseTimeout)
	t.Cleanup(func() { fc.Close() })
	t.Cleanup(func() { peer.Close() }) // first, so that fc.Close need not wait for it
	return fc, peer
}

// writeFrame writes a data frame as yamux does: header, then body.
func writeFrame(t *testing.T, fc *frameConn, id uint32, body []byte) {
	t.Helper()
	fr := frame(typeData, 0, id, body)
	if _, err := fc.Write(fr[:headerSize]); err != nil {
		t.Fatal(err)
	}
	if _, err := fc.Write(fr[headerSize:]); err != nil {
		t.Fatal(err)
	}
}

// readMessages reads binary messages until it has n bytes.
func readMessages(t *testing.T, ws *websocket.Conn, n int) (got []byte, messages int) {
	t.Helper()
	for len(got) < n {
		_, p, err := ws.ReadMessage()
		if err != nil {
			t.Fatalf("after %d of %d bytes: %v", len(got), n, err)
		}
		got = append(got, p...)
		messages++
	}
	return got, messages
}

// TestBurstSharesMessages writes 50 small frames while the peer reads
// nothing. None of the writes may wait for the peer (over a pipe, a write
// on yamux's goroutine would), and the frames must arrive intact in at most
// two messages: the first batch, on the wire while the rest gathered, and
// the rest.
func TestBurstSharesMessages(t *testing.T) {
	fc, peer := pipeFrameConn(t)
	var want []byte
	done := make(chan struct{})
	go func() {
		defer close(done)
		for i := range 50 {
			writeFrame(t, fc, 1, bytes.Repeat([]byte{byte(i)}, 100))
		}
	}()
	for i := range 50 {
		want = append(want, frame(typeData, 0, 1, bytes.Repeat([]byte{byte(i)}, 100))...)
	}
	// A guard, not a wait: the writes end at once, or never.
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("the writes waited for the peer to read")
	}
	got, messages := readMessages(t, peer, len(want))
	if !bytes.Equal(got, want) {
		t.Fatal("frames arrived changed")
	}
	if messages > 2 {
		t.Fatalf("50 frames took %d messages, want 1 or 2", messages)
	}
}

// TestReplyIsWrittenDirectly checks the other half of the rule: a frame
// written after one arrived is a reply, written at once on the caller's
// goroutine, not handed to a flusher.
func TestReplyIsWrittenDirectly(t *testing.T) {
	fc, peer := pipeFrameConn(t)
	request := frame(typeData, flagSYN, 2, []byte("request"))
	go peer.WriteMessage(websocket.BinaryMessage, request)
	buf := make([]byte, 4096)
	n, err := io.ReadAtLeast(fc, buf, len(request))
	if err != nil || !bytes.Equal(buf[:n], request) {
		t.Fatalf("read %x, %v", buf[:n], err)
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		writeFrame(t, fc, 2, []byte("reply"))
	}()
	got, _ := readMessages(t, peer, headerSize+len("reply"))
	<-done
	if want := frame(typeData, 0, 2, []byte("reply")); !bytes.Equal(got, want) {
		t.Fatalf("got %x, want %x", got, want)
	}
	fc.wmu.Lock()
	defer fc.wmu.Unlock()
	if fc.directs != 1 || fc.batches != 0 {
		t.Fatalf("the reply went out in %d direct writes and %d batches, want 1 and 0", fc.directs, fc.batches)
	}
}

// TestLargeFrameKeepsOrder writes small frames, a frame too large to
// batch, then small ones, while the peer reads nothing at first: the large
// frame must wait for the batch before it, and everything must arrive in
// the order written.
func TestLargeFrameKeepsOrder(t *testing.T) {
	fc, peer := pipeFrameConn(t)
	large := bytes.Repeat([]byte{7}, fc.limit+1)
	var want []byte
	done := make(chan struct{})
	go func() {
		defer close(done)
		for i, body := range [][]byte{[]byte("a"), []byte("b"), large, []byte("c")} {
			writeFrame(t, fc, uint32(2*i+1), body)
		}
	}()
	for i, body := range [][]byte{[]byte("a"), []byte("b"), large, []byte("c")} {
		want = append(want, frame(typeData, 0, uint32(2*i+1), body)...)
	}
	got, _ := readMessages(t, peer, len(want))
	<-done
	if !bytes.Equal(got, want) {
		t.Fatal("frames arrived out of order or changed")
	}
}

// TestWritesOf64KiBLeaveWhole writes frames carrying 64 KiB each, as
// yamux does for 64 KiB writes: with the default message size, each must
// leave in one message of its own, not in a full one and a 12-byte tail.
func TestWritesOf64KiBLeaveWhole(t *testing.T) {
	fc, peer := pipeFrameConn(t)
	var want []byte
	go func() {
		for i := range 3 {
			writeFrame(t, fc, 1, bytes.Repeat([]byte{byte(i)}, 64<<10))
		}
	}()
	for i := range 3 {
		want = append(want, frame(typeData, 0, 1, bytes.Repeat([]byte{byte(i)}, 64<<10))...)
	}
	got, messages := readMessages(t, peer, len(want))
	if !bytes.Equal(got, want) {
		t.Fatal("frames arrived changed")
	}
	if messages != 3 {
		t.Fatalf("3 frames of 64 KiB took %d messages, want 3", messages)
	}
}

// TestBatchBufferHoldsAMessage checks that a pooled batch buffer takes a
// default-sized message without growing: a smaller one would be copied
// into a new buffer whenever a batch filled up.
func TestBatchBufferHoldsAMessage(t *testing.T) {
	b := batchPool.Get().(*[]byte)
	defer putBatch(b)
	if cap(*b) < wsconn.DefaultMessageSize {
		t.Fatalf("batch buffers hold %d bytes, less than a %d-byte message", cap(*b), wsconn.DefaultMessageSize)
	}
}

// TestCloseFlushesBatches closes the conn while batched frames wait for a
// peer that has not read yet: Close must deliver them before the close
// message, as closing a TCP socket delivers what was written.
func TestCloseFlushesBatches(t *testing.T) {
	fc, peer := pipeFrameConn(t)
	var want []byte
	for i := range 20 {
		body := bytes.Repeat([]byte{byte(i)}, 1000)
		writeFrame(t, fc, 1, body)
		want = append(want, frame(typeData, 0, 1, body)...)
	}
	closed := make(chan error, 1)
	go func() { closed <- fc.Close() }()
	got, _ := readMessages(t, peer, len(want))
	if !bytes.Equal(got, want) {
		t.Fatal("frames arrived changed")
	}
	if _, _, err := peer.ReadMessage(); !websocket.IsCloseError(err, websocket.CloseNormalClosure) {
		t.Fatalf("after the frames: %v, want close 1000", err)
	}
	if err := <-closed; err != nil {
		t.Fatal(err)
	}
}

// TestWriteFailsAfterPeerVanishes: once a batch cannot be written, the
// next writes fail rather than queue frames forever.
func TestWriteFailsAfterPeerVanishes(t *testing.T) {
	fc, peer := pipeFrameConn(t)
	writeFrame(t, fc, 1, []byte("lost"))
	peer.NetConn().Close()
	fr := frame(typeData, 0, 1, []byte("x"))
	for range 1 << 20 {
		if _, err := fc.Write(fr[:headerSize]); err != nil {
			return
		}
		if _, err := fc.Write(fr[headerSize:]); err != nil {
			return
		}
	}
	t.Fatal("a million writes after the peer vanished, and none failed")
}

// TestBatchesDoNotSplitFrames writes a burst of 10 KB frames, which do not
// divide a 64 KiB message evenly: every message must still end where a
// frame ends.
func TestBatchesDoNotSplitFrames(t *testing.T) {
	fc, peer := pipeFrameConn(t)
	body := bytes.Repeat([]byte{1}, 10000)
	done := make(chan struct{})
	go func() {
		defer close(done)
		for range 40 {
			writeFrame(t, fc, 1, body)
		}
	}()
	size := headerSize + len(body)
	for got := 0; got < 40*size; {
		_, p, err := peer.ReadMessage()
		if err != nil {
			t.Fatal(err)
		}
		if len(p)%size != 0 {
			t.Fatalf("a message of %d bytes splits a %d-byte frame", len(p), size)
		}
		got += len(p)
	}
	<-done
}

// TestWriteAfterCloseFails: a frame written after Close must fail, not
// report success and vanish.
func TestWriteAfterCloseFails(t *testing.T) {
	fc, peer := pipeFrameConn(t)
	go func() {
		for {
			if _, _, err := peer.ReadMessage(); err != nil {
				return
			}
		}
	}()
	if err := fc.Close(); err != nil {
		t.Fatal(err)
	}
	fr := frame(typeData, 0, 1, []byte("late"))
	_, err1 := fc.Write(fr[:headerSize])
	_, err2 := fc.Write(fr[headerSize:])
	if err1 == nil && err2 == nil {
		t.Fatal("a frame written after Close was accepted")
	}
}

// TestCloseTimeoutBoundsFlushAndHandshake closes while batched frames wait
// for a peer that never reads: flushing them and the closing handshake
// share one close timeout, so Close must not take two.
func TestCloseTimeoutBoundsFlushAndHandshake(t *testing.T) {
	const timeout = 500 * time.Millisecond
	fc, _ := pipeFrameConnWith(t, wsconn.Options{KeepAliveInterval: -1, CloseTimeout: timeout})
	for range 3 {
		writeFrame(t, fc, 1, []byte("never read"))
	}
	start := time.Now()
	fc.Close()
	// A bound on correctness, not speed: two timeouts would be 1 s.
	if d := time.Since(start); d > timeout+300*time.Millisecond {
		t.Fatalf("Close took %v with a close timeout of %v", d, timeout)
	}
}
