package wsconn_test

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	"go.uber.org/goleak"

	"github.com/wsplex/wsplex/internal/plextest"
	"github.com/wsplex/wsplex/internal/wsconn"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// wrap makes a Conn of ws that is closed when the test ends, within
// 100 ms: a raw gorilla peer that is not reading never answers the close.
func wrap(t testing.TB, ws *websocket.Conn, opts wsconn.Options) *wsconn.Conn {
	t.Helper()
	c, err := wsconn.New(ws, opts)
	if err != nil {
		t.Fatalf("wsconn.New: %v", err)
	}
	t.Cleanup(func() { c.Close(websocket.CloseNormalClosure, "", time.Now().Add(100*time.Millisecond)) })
	return c
}

// pair returns two Conns over a loopback WebSocket.
func pair(t testing.TB, opts wsconn.Options) (client, server *wsconn.Conn) {
	t.Helper()
	cws, sws := plextest.RawPair(t)
	return wrap(t, cws, opts), wrap(t, sws, opts)
}

// drain reads c until it fails, as a framing layer above does, and
// returns what it read and why it stopped.
func drain(c *wsconn.Conn) <-chan readResult {
	done := make(chan readResult, 1)
	go func() {
		var r readResult
		buf := make([]byte, 32<<10)
		for {
			n, err := c.Read(buf)
			r.n += int64(n)
			if err != nil {
				r.err = err
				done <- r
				return
			}
		}
	}()
	return done
}

type readResult struct {
	n   int64
	err error
}

func TestBytesSurviveMessageBoundaries(t *testing.T) {
	cws, sws := plextest.RawPair(t)
	c := wrap(t, cws, wsconn.Options{})

	rng := rand.New(rand.NewPCG(1, 2))
	var want bytes.Buffer
	go func() {
		sizes := []int{0, 1, 7, 4096, 65536, 3, 100000, 0, 12, 70000}
		for _, n := range sizes {
			b := make([]byte, n)
			for i := range b {
				b[i] = byte(rng.IntN(256))
			}
			want.Write(b)
			if err := sws.WriteMessage(websocket.BinaryMessage, b); err != nil {
				t.Errorf("peer write: %v", err)
			}
		}
		sws.WriteMessage(websocket.CloseMessage, websocket.FormatCloseMessage(websocket.CloseNormalClosure, ""))
	}()

	// Odd read sizes so that reads straddle message boundaries.
	var got bytes.Buffer
	buf := make([]byte, 777)
	for {
		n, err := c.Read(buf)
		got.Write(buf[:n])
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatalf("read: %v", err)
		}
	}
	if !bytes.Equal(got.Bytes(), want.Bytes()) {
		t.Fatalf("got %d bytes, want %d, or contents differ", got.Len(), want.Len())
	}
	if n, err := c.Read(buf); n != 0 || err != io.EOF {
		t.Fatalf("Read after the end = %d, %v; want io.EOF again", n, err)
	}
}

func TestWriteMessageSplitsIntoBoundedMessages(t *testing.T) {
	cws, sws := plextest.RawPair(t)
	const limit = 16 << 10
	c := wrap(t, cws, wsconn.Options{MessageSize: limit})
	want := bytes.Repeat([]byte("0123456789abcdef"), 200<<10/16+3)
	go func() {
		if err := c.WriteMessage(want[:10], want[10:20000], nil, want[20000:]); err != nil {
			t.Errorf("write: %v", err)
		}
	}()
	var got []byte
	for len(got) < len(want) {
		typ, msg, err := sws.ReadMessage()
		if err != nil {
			t.Fatalf("peer read: %v", err)
		}
		if typ != websocket.BinaryMessage {
			t.Fatalf("message type %d, want binary", typ)
		}
		if len(msg) > limit {
			t.Fatalf("message of %d bytes exceeds MessageSize %d", len(msg), limit)
		}
		if len(got)+len(msg) < len(want) && len(msg) != limit {
			t.Fatalf("message of %d bytes before the last, want %d", len(msg), limit)
		}
		got = append(got, msg...)
	}
	if !bytes.Equal(got, want) {
		t.Fatal("contents differ")
	}
}

func TestConcurrentWriteMessagesStayWhole(t *testing.T) {
	cws, sws := plextest.RawPair(t)
	c := wrap(t, cws, wsconn.Options{})
	const writers, each, size = 8, 50, 3000
	var wg sync.WaitGroup
	for w := range writers {
		wg.Go(func() {
			p := bytes.Repeat([]byte{byte('a' + w)}, size)
			for range each {
				if err := c.WriteMessage(p[:100], p[100:]); err != nil {
					t.Errorf("write: %v", err)
					return
				}
			}
		})
	}
	counts := map[byte]int{}
	for range writers * each {
		_, msg, err := sws.ReadMessage()
		if err != nil {
			t.Fatalf("peer read: %v", err)
		}
		if len(msg) != size || !bytes.Equal(msg, bytes.Repeat(msg[:1], size)) {
			t.Fatalf("messages interleaved: %d bytes, %q...", len(msg), msg[:40])
		}
		counts[msg[0]]++
	}
	wg.Wait()
	for w := range writers {
		if counts[byte('a'+w)] != each {
			t.Errorf("writer %d: got %d messages, want %d", w, counts[byte('a'+w)], each)
		}
	}
}

func TestCloseSendsCloseFrame(t *testing.T) {
	cws, sws := plextest.RawPair(t)
	c := wrap(t, cws, wsconn.Options{})
	if err := c.WriteMessage([]byte("last words")); err != nil {
		t.Fatal(err)
	}
	peerDone := make(chan error, 1)
	go func() {
		_, msg, err := sws.ReadMessage()
		if err != nil || string(msg) != "last words" {
			peerDone <- fmt.Errorf("data before the close frame: %q, %v", msg, err)
			return
		}
		_, _, err = sws.ReadMessage() // gorilla answers the close frame
		peerDone <- err
	}()

	// Concurrent Close calls all return nil, and unblock a pending Read.
	readErr := make(chan error, 1)
	go func() {
		_, err := c.Read(make([]byte, 1))
		readErr <- err
	}()
	var wg sync.WaitGroup
	for range 4 {
		wg.Go(func() {
			if err := c.Close(4000, "going home", time.Now().Add(time.Minute)); err != nil {
				t.Errorf("Close: %v", err)
			}
		})
	}
	wg.Wait()

	err := <-peerDone
	if !websocket.IsCloseError(err, 4000) || err.(*websocket.CloseError).Text != "going home" {
		t.Fatalf("peer saw %v, want close 4000 going home", err)
	}
	if err := <-readErr; !errors.Is(err, net.ErrClosed) {
		t.Fatalf("pending Read: %v, want net.ErrClosed", err)
	}
	if err := c.WriteMessage([]byte("x")); !errors.Is(err, net.ErrClosed) {
		t.Fatalf("WriteMessage after Close: %v, want net.ErrClosed", err)
	}
	if _, err := c.Read(make([]byte, 1)); !errors.Is(err, net.ErrClosed) {
		t.Fatalf("Read after Close: %v, want net.ErrClosed", err)
	}
	if !errors.Is(c.Err(), net.ErrClosed) {
		t.Fatalf("Err after Close: %v", c.Err())
	}
}

func TestCloseNeedsNoReader(t *testing.T) {
	// Nobody reads a, so Close must read the peer's close frame itself: with
	// a one-minute deadline, waiting for it would fail the test by its
	// timeout.
	a, b := pair(t, wsconn.Options{})
	peer := drain(b)
	if err := a.Close(websocket.CloseNormalClosure, "", time.Now().Add(time.Minute)); err != nil {
		t.Fatal(err)
	}
	if r := <-peer; r.err != io.EOF {
		t.Fatalf("peer read %v, want io.EOF", r.err)
	}
	if !errors.Is(b.Err(), wsconn.ErrPeerClosed) {
		t.Fatalf("peer Err = %v, want ErrPeerClosed", b.Err())
	}
}

func TestCloseIsBoundedWhenPeerIsSilent(t *testing.T) {
	cws, _ := plextest.RawPair(t) // the peer never reads, so never answers the close
	c := wrap(t, cws, wsconn.Options{})
	c.Close(websocket.CloseNormalClosure, "", time.Now().Add(50*time.Millisecond)) // a hang fails the test by its timeout
	select {
	case <-c.Done():
	default:
		t.Fatal("Done still open after Close")
	}
}

func TestPeerClosure(t *testing.T) {
	for _, tc := range []struct {
		name    string
		close   func(ws *websocket.Conn)
		check   func(t *testing.T, err error)
		wantErr error // of Err
	}{
		{"normal", func(ws *websocket.Conn) {
			ws.WriteMessage(websocket.CloseMessage, websocket.FormatCloseMessage(websocket.CloseNormalClosure, "bye"))
		}, func(t *testing.T, err error) {
			if err != io.EOF {
				t.Fatalf("err = %v, want io.EOF", err)
			}
		}, wsconn.ErrPeerClosed},
		{"going-away", func(ws *websocket.Conn) {
			ws.WriteMessage(websocket.CloseMessage, websocket.FormatCloseMessage(websocket.CloseGoingAway, ""))
		}, func(t *testing.T, err error) {
			if err != io.EOF {
				t.Fatalf("err = %v, want io.EOF", err)
			}
		}, wsconn.ErrPeerClosed},
		{"error-code", func(ws *websocket.Conn) {
			ws.WriteMessage(websocket.CloseMessage, websocket.FormatCloseMessage(websocket.CloseInternalServerErr, "boom"))
		}, func(t *testing.T, err error) {
			var ce *wsconn.CloseError
			if !errors.As(err, &ce) || ce.Code != 1011 || ce.Reason != "boom" {
				t.Fatalf("err = %v, want CloseError 1011 boom", err)
			}
		}, nil},
		{"tcp-cut", func(ws *websocket.Conn) {
			ws.NetConn().Close()
		}, func(t *testing.T, err error) {
			var ce *wsconn.CloseError
			if !errors.As(err, &ce) || ce.Code != 1006 {
				t.Fatalf("err = %v, want CloseError 1006", err)
			}
		}, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cws, sws := plextest.RawPair(t)
			c := wrap(t, cws, wsconn.Options{})
			if err := sws.WriteMessage(websocket.BinaryMessage, []byte("data first")); err != nil {
				t.Fatal(err)
			}
			tc.close(sws)
			got, err := io.ReadAll(c)
			if string(got) != "data first" {
				t.Fatalf("read %q before the end, want %q", got, "data first")
			}
			if err == nil {
				err = io.EOF // ReadAll swallows io.EOF
			}
			tc.check(t, err)
			<-c.Done()
			if tc.wantErr != nil && !errors.Is(c.Err(), tc.wantErr) {
				t.Fatalf("Err = %v, want %v", c.Err(), tc.wantErr)
			}
			if err := c.WriteMessage([]byte("x")); err == nil {
				t.Fatal("WriteMessage after peer closure succeeded")
			}
		})
	}
}

func TestProtocolViolationsCloseWithCode(t *testing.T) {
	for _, tc := range []struct {
		name     string
		send     func(ws *websocket.Conn) error
		wantErr  error
		wantCode int
	}{
		{"text-message", func(ws *websocket.Conn) error {
			return ws.WriteMessage(websocket.TextMessage, []byte("hello"))
		}, wsconn.ErrTextMessage, websocket.CloseUnsupportedData},
		{"over-read-limit", func(ws *websocket.Conn) error {
			return ws.WriteMessage(websocket.BinaryMessage, make([]byte, 2048))
		}, wsconn.ErrMessageTooBig, websocket.CloseMessageTooBig},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cws, sws := plextest.RawPair(t)
			// The peer reads the close code only after ReadAll, so the answer
			// that the conn waits for after a violation never comes.
			c := wrap(t, cws, wsconn.Options{ReadLimit: 1024, CloseTimeout: 100 * time.Millisecond})
			if err := sws.WriteMessage(websocket.BinaryMessage, []byte("ok")); err != nil {
				t.Fatal(err)
			}
			if err := tc.send(sws); err != nil {
				t.Fatal(err)
			}
			got, err := io.ReadAll(c)
			if string(got) != "ok" {
				t.Fatalf("data before the violation: %q", got)
			}
			if !errors.Is(err, tc.wantErr) {
				t.Fatalf("read err = %v, want %v", err, tc.wantErr)
			}
			if !errors.Is(c.Err(), tc.wantErr) {
				t.Fatalf("Err = %v, want %v", c.Err(), tc.wantErr)
			}
			_, _, err = sws.ReadMessage()
			if !websocket.IsCloseError(err, tc.wantCode) {
				t.Fatalf("peer saw %v, want close code %d", err, tc.wantCode)
			}
		})
	}
}

func TestAddrsAndSubprotocol(t *testing.T) {
	cws, _ := plextest.RawPair(t)
	c := wrap(t, cws, wsconn.Options{})
	if c.LocalAddr().String() != cws.NetConn().LocalAddr().String() ||
		c.RemoteAddr().String() != cws.NetConn().RemoteAddr().String() {
		t.Fatalf("addrs %v %v, want %v %v", c.LocalAddr(), c.RemoteAddr(),
			cws.NetConn().LocalAddr(), cws.NetConn().RemoteAddr())
	}
	if c.Subprotocol() != "" {
		t.Fatalf("subprotocol %q, want none", c.Subprotocol())
	}
}

func TestOptionsWithDefaults(t *testing.T) {
	for _, tc := range []struct {
		name string
		in   wsconn.Options
		ok   bool
		want func(o wsconn.Options) bool
	}{
		{"zero", wsconn.Options{}, true, func(o wsconn.Options) bool {
			return o.MessageSize == wsconn.DefaultMessageSize && o.ReadLimit == 1<<20 &&
				o.KeepAliveInterval == 15*time.Second && o.KeepAliveTimeout == 45*time.Second &&
				o.WriteTimeout == 10*time.Second && o.CloseTimeout == 5*time.Second && o.Logger != nil
		}},
		{"keepalive-off", wsconn.Options{KeepAliveInterval: -1}, true, func(o wsconn.Options) bool {
			return o.KeepAliveInterval < 0 && o.KeepAliveTimeout == 0
		}},
		{"timeout-from-interval", wsconn.Options{KeepAliveInterval: time.Second}, true, func(o wsconn.Options) bool {
			return o.KeepAliveTimeout == 3*time.Second
		}},
		{"negative-message-size", wsconn.Options{MessageSize: -1}, false, nil},
		{"negative-read-limit", wsconn.Options{ReadLimit: -1}, false, nil},
		{"negative-write-timeout", wsconn.Options{WriteTimeout: -1}, false, nil},
		{"negative-keepalive-timeout", wsconn.Options{KeepAliveTimeout: -1}, false, nil},
		{"negative-close-timeout", wsconn.Options{CloseTimeout: -1}, false, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			o, err := tc.in.WithDefaults()
			if (err == nil) != tc.ok {
				t.Fatalf("err = %v, want ok = %v", err, tc.ok)
			}
			if tc.ok && !tc.want(o) {
				t.Fatalf("WithDefaults = %+v", o)
			}
		})
	}
}
