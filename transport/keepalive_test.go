package transport_test

import (
	"errors"
	"io"
	"testing"
	"testing/synctest"
	"time"

	"github.com/gorilla/websocket"

	"github.com/wsplex/wsplex/internal/plextest"
	"github.com/wsplex/wsplex/internal/wstest"
	"github.com/wsplex/wsplex/transport"
)

// The keepalive tests run in a synctest bubble over net.Pipe: timers fire
// at exact fake times, and a busy machine cannot delay a reader past a
// timeout.

// mutePeer reads everything sent to ws and never answers a ping. The
// returned channel is closed when the connection ends.
func mutePeer(ws *websocket.Conn) <-chan struct{} {
	ws.SetPingHandler(func(string) error { return nil })
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			if _, _, err := ws.NextReader(); err != nil {
				return
			}
		}
	}()
	return done
}

func TestKeepAliveClosesSilentPeer(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		cws, sws := wstest.Pipe(t)
		start := time.Now()
		c := plextest.Wrap(t, cws, nil) // 15 s interval, 45 s timeout
		peer := mutePeer(sws)
		<-c.Done()
		if d := time.Since(start); d != 45*time.Second {
			t.Errorf("ended after %v, want 45s", d)
		}
		if !errors.Is(c.Err(), transport.ErrKeepAliveTimeout) {
			t.Fatalf("Err = %v, want ErrKeepAliveTimeout", c.Err())
		}
		if _, err := c.Read(make([]byte, 1)); !errors.Is(err, transport.ErrKeepAliveTimeout) {
			t.Fatalf("Read = %v, want ErrKeepAliveTimeout", err)
		}
		<-peer
	})
}

func TestKeepAliveKeepsAnsweringPeer(t *testing.T) {
	// Both ends run keepalive and exchange nothing: the pongs alone must
	// keep the connection up across many timeouts.
	synctest.Test(t, func(t *testing.T) {
		cws, sws := wstest.Pipe(t)
		a := plextest.Wrap(t, cws, nil)
		b := plextest.Wrap(t, sws, &transport.Options{KeepAliveInterval: 7 * time.Second})
		time.Sleep(time.Hour)
		if a.Err() != nil || b.Err() != nil {
			t.Fatalf("after an hour: a %v, b %v", a.Err(), b.Err())
		}
		if _, err := a.Write([]byte("x")); err != nil {
			t.Fatal(err)
		}
		if _, err := io.ReadFull(b, make([]byte, 1)); err != nil {
			t.Fatal(err)
		}
	})
}

func TestKeepAliveSparesBusyLink(t *testing.T) {
	// The peer sends data and never answers a ping: incoming data alone
	// must count as a sign of life.
	synctest.Test(t, func(t *testing.T) {
		cws, sws := wstest.Pipe(t)
		c := plextest.Wrap(t, cws, nil)
		peer := mutePeer(sws)
		sent := make(chan int64, 1)
		go func() {
			var total int64
			msg := make([]byte, 32<<10)
			for start := time.Now(); time.Since(start) < 10*time.Minute; {
				time.Sleep(10 * time.Second)
				if err := sws.WriteMessage(websocket.BinaryMessage, msg); err != nil {
					t.Errorf("peer write: %v", err)
					break
				}
				total += int64(len(msg))
			}
			sent <- total
			sws.WriteMessage(websocket.CloseMessage, websocket.FormatCloseMessage(websocket.CloseNormalClosure, ""))
		}()
		received, err := io.Copy(io.Discard, c) // until the peer's normal close
		if err != nil {
			t.Fatalf("read after %d bytes: %v", received, err)
		}
		if total := <-sent; received != total {
			t.Fatalf("received %d bytes, sent %d", received, total)
		}
		<-peer
	})
}

func TestKeepAliveSparesSlowConsumer(t *testing.T) {
	// The peer sends more than the read goroutine can hand over, then
	// falls silent, and nobody calls Read for an hour: the read goroutine
	// waits for a Read meanwhile, so the peer is not heard and its silence
	// does not count. Once everything is read, it does.
	synctest.Test(t, func(t *testing.T) {
		cws, sws := wstest.Pipe(t)
		c := plextest.Wrap(t, cws, nil)
		peer := mutePeer(sws)
		const n, size = 4, 1000
		go func() {
			for range n {
				if err := sws.WriteMessage(websocket.BinaryMessage, make([]byte, size)); err != nil {
					t.Errorf("peer write: %v", err)
				}
			}
		}()
		time.Sleep(time.Hour)
		if c.Err() != nil {
			t.Fatalf("after an hour without a Read: %v", c.Err())
		}
		if _, err := io.ReadFull(c, make([]byte, n*size)); err != nil {
			t.Fatal(err)
		}
		start := time.Now()
		<-c.Done()
		if d := time.Since(start); d != 45*time.Second {
			t.Errorf("ended %v after the last Read, want 45s", d)
		}
		if !errors.Is(c.Err(), transport.ErrKeepAliveTimeout) {
			t.Fatalf("Err = %v, want ErrKeepAliveTimeout", c.Err())
		}
		<-peer
	})
}
