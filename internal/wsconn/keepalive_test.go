package wsconn_test

import (
	"errors"
	"io"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/gorilla/websocket"

	"github.com/wsplex/wsplex/internal/wsconn"
	"github.com/wsplex/wsplex/internal/wstest"
)

// The keepalive tests run in a synctest bubble over net.Pipe: timers fire
// at exact fake times, and a busy machine cannot delay a reader past a
// timeout.

// mutePeer reads everything sent to ws and never answers a ping. It
// returns when the connection ends, and the times at which pings came.
func mutePeer(ws *websocket.Conn) <-chan []time.Duration {
	start := time.Now()
	var pings []time.Duration
	ws.SetPingHandler(func(string) error {
		pings = append(pings, time.Since(start))
		return nil
	})
	done := make(chan []time.Duration, 1)
	go func() {
		for {
			if _, _, err := ws.NextReader(); err != nil {
				done <- pings
				return
			}
		}
	}()
	return done
}

func TestKeepAliveTimesFromLastArrival(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		cws, sws := wstest.Pipe(t)
		start := time.Now()
		c := wrap(t, cws, wsconn.Options{}) // 15 s interval, 45 s timeout
		peer := mutePeer(sws)
		read := drain(c)

		// One message at 10 s, then silence: the ping is due at 25 s and
		// the end at 55 s, whenever the checks happen to run.
		time.Sleep(10 * time.Second)
		if err := sws.WriteMessage(websocket.BinaryMessage, []byte("hi")); err != nil {
			t.Fatal(err)
		}
		<-c.Done()
		if d := time.Since(start); d != 55*time.Second {
			t.Errorf("ended after %v, want 55s: 45 s after the last arrival", d)
		}
		if !errors.Is(c.Err(), wsconn.ErrKeepAliveTimeout) {
			t.Errorf("Err = %v, want ErrKeepAliveTimeout", c.Err())
		}
		if r := <-read; r.n != 2 || !errors.Is(r.err, wsconn.ErrKeepAliveTimeout) {
			t.Errorf("read %d bytes, then %v; want 2 and ErrKeepAliveTimeout", r.n, r.err)
		}
		pings := <-peer
		if len(pings) == 0 || pings[0] != 25*time.Second {
			t.Errorf("pings at %v, want the first at 25s: 15 s after the last arrival", pings)
		}
	})
}

func TestKeepAliveSparesBusyLink(t *testing.T) {
	// The peer sends data and never answers a ping: incoming data alone
	// must count as a sign of life, however its gaps fall between checks.
	for _, gap := range []time.Duration{time.Second, 10 * time.Second, 44 * time.Second} {
		t.Run(gap.String(), func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				cws, sws := wstest.Pipe(t)
				c := wrap(t, cws, wsconn.Options{})
				peer := mutePeer(sws)
				read := drain(c)
				var sent int64
				msg := make([]byte, 1000)
				for start := time.Now(); time.Since(start) < 10*time.Minute; {
					time.Sleep(gap)
					if err := sws.WriteMessage(websocket.BinaryMessage, msg); err != nil {
						t.Fatalf("peer write after %v: %v (Err = %v)", time.Since(start), err, c.Err())
					}
					sent += int64(len(msg))
				}
				sws.WriteMessage(websocket.CloseMessage, websocket.FormatCloseMessage(websocket.CloseNormalClosure, ""))
				if r := <-read; r.n != sent || r.err != io.EOF {
					t.Fatalf("read %d bytes, then %v; want %d and io.EOF", r.n, r.err, sent)
				}
				<-peer
			})
		})
	}
}

func TestKeepAliveKeepsAnsweringPeer(t *testing.T) {
	// Both ends run keepalive and exchange nothing: the pongs alone must
	// keep the connection up across many timeouts.
	synctest.Test(t, func(t *testing.T) {
		cws, sws := wstest.Pipe(t)
		a := wrap(t, cws, wsconn.Options{})
		b := wrap(t, sws, wsconn.Options{KeepAliveInterval: 7 * time.Second})
		readA, readB := drain(a), drain(b)
		time.Sleep(time.Hour)
		if a.Err() != nil || b.Err() != nil {
			t.Fatalf("after an hour: a %v, b %v", a.Err(), b.Err())
		}
		if err := a.WriteMessage([]byte("x")); err != nil {
			t.Fatal(err)
		}
		a.Close(websocket.CloseNormalClosure, "", time.Now().Add(time.Second))
		if r := <-readB; r.n != 1 || r.err != io.EOF {
			t.Fatalf("b read %d bytes, then %v; want 1 and io.EOF", r.n, r.err)
		}
		<-readA
	})
}

func TestKeepAliveWaitsForReader(t *testing.T) {
	// Nobody reads for an hour: the peer cannot be heard then, so its
	// silence does not count. Once reading resumes, it does.
	synctest.Test(t, func(t *testing.T) {
		cws, sws := wstest.Pipe(t)
		c := wrap(t, cws, wsconn.Options{})
		peer := mutePeer(sws)
		time.Sleep(time.Hour)
		if c.Err() != nil {
			t.Fatalf("after an hour without a Read: %v", c.Err())
		}
		start := time.Now()
		var wg sync.WaitGroup
		wg.Go(func() {
			time.Sleep(30 * time.Second)
			sws.WriteMessage(websocket.BinaryMessage, []byte("hi"))
		})
		read := drain(c)
		<-c.Done()
		if d := time.Since(start); d != 75*time.Second {
			t.Errorf("ended %v after reading began, want 75s: 45 s after the message at 30 s", d)
		}
		if r := <-read; r.n != 2 || !errors.Is(r.err, wsconn.ErrKeepAliveTimeout) {
			t.Errorf("read %d bytes, then %v; want 2 and ErrKeepAliveTimeout", r.n, r.err)
		}
		wg.Wait()
		<-peer
	})
}

func TestKeepAliveOff(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		cws, sws := wstest.Pipe(t)
		c := wrap(t, cws, wsconn.Options{KeepAliveInterval: -1})
		peer := mutePeer(sws)
		read := drain(c)
		time.Sleep(24 * time.Hour)
		if c.Err() != nil {
			t.Fatalf("keepalive off, yet after a day: %v", c.Err())
		}
		c.Close(websocket.CloseNormalClosure, "", time.Now().Add(time.Second))
		<-read
		if pings := <-peer; len(pings) != 0 {
			t.Fatalf("keepalive off, yet pings at %v", pings)
		}
	})
}
