package wsconn_test

import (
	"errors"
	"net"
	"net/http"
	"net/http/httptest"
	"syscall"
	"testing"
	"testing/synctest"
	"time"

	"github.com/gorilla/websocket"

	"github.com/wsplex/wsplex/internal/plextest"
	"github.com/wsplex/wsplex/internal/wsconn"
	"github.com/wsplex/wsplex/internal/wstest"
)

// smallBufferPair returns a Conn on the server side of a loopback TCP
// WebSocket and the client's raw TCP connection, with socket buffers of a
// few KiB on both: a client that reads slowly then holds the server's
// writes back within milliseconds, as a slow link with megabytes of buffer
// would within seconds.
func smallBufferPair(t *testing.T, opts wsconn.Options) (*wsconn.Conn, net.Conn) {
	t.Helper()
	const bufSize = 4 << 10
	accepted := make(chan *websocket.Conn, 1)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ws, err := (&websocket.Upgrader{}).Upgrade(w, r, nil)
		if err != nil {
			close(accepted)
			return
		}
		accepted <- ws
	}))
	t.Cleanup(srv.Close)
	d := websocket.Dialer{NetDialContext: (&net.Dialer{Control: func(_, _ string, rc syscall.RawConn) error {
		var serr error
		err := rc.Control(func(fd uintptr) { serr = setReceiveBuffer(fd, bufSize) })
		return errors.Join(err, serr)
	}}).DialContext}
	cws, _, err := d.DialContext(t.Context(), plextest.WebSocketURL(srv.URL), nil)
	if err != nil {
		t.Fatal(err)
	}
	sws := <-accepted
	if sws == nil {
		t.Fatal("upgrade failed")
	}
	if err := sws.NetConn().(*net.TCPConn).SetWriteBuffer(bufSize); err != nil {
		t.Fatal(err)
	}
	c := wrap(t, sws, opts)
	t.Cleanup(func() { cws.Close() }) // first, so that c's Close need not wait
	return c, cws.NetConn()
}

func TestWriteTimeoutSparesSlowReader(t *testing.T) {
	if !wsconn.TracksTCPProgress {
		t.Skip("no TCP progress on this platform: a slow write is cut at WriteTimeout")
	}
	// One 64 KiB message takes the reader over a second, more than twice
	// the write timeout; but the reader never stops, so nor may the writes.
	const writeTimeout = 500 * time.Millisecond
	c, client := smallBufferPair(t, wsconn.Options{WriteTimeout: writeTimeout, KeepAliveInterval: -1})
	readerDone := make(chan struct{})
	defer close(readerDone)
	go func() {
		tick := time.NewTicker(20 * time.Millisecond)
		defer tick.Stop()
		buf := make([]byte, 1<<10) // 50 KB/s
		for {
			select {
			case <-tick.C:
				if _, err := client.Read(buf); err != nil {
					return
				}
			case <-readerDone:
				return
			}
		}
	}()
	msg := make([]byte, 64<<10)
	for i := range 2 {
		start := time.Now()
		if err := c.WriteMessage(msg); err != nil {
			t.Fatalf("message %d: write failed after %v: %v", i, time.Since(start), err)
		}
		t.Logf("message %d written in %v", i, time.Since(start))
	}
	if c.Err() != nil {
		t.Fatalf("Err = %v", c.Err())
	}
}

func TestWriteTimeoutCutsPeerThatDoesNotRead(t *testing.T) {
	const writeTimeout = 500 * time.Millisecond
	c, _ := smallBufferPair(t, wsconn.Options{WriteTimeout: writeTimeout, KeepAliveInterval: -1})
	msg := make([]byte, 64<<10)
	var err error
	start := time.Now()
	for err == nil {
		err = c.WriteMessage(msg)
	}
	if !errors.Is(err, wsconn.ErrWriteTimeout) || !errors.Is(c.Err(), wsconn.ErrWriteTimeout) {
		t.Fatalf("write error %v, Err %v; want ErrWriteTimeout", err, c.Err())
	}
	if d := time.Since(start); d < writeTimeout {
		t.Fatalf("cut after %v, before the write timeout of %v", d, writeTimeout)
	}
}

func TestWriteTimeoutFollowsProgressOverTCPAndTLS(t *testing.T) {
	if !wsconn.TracksTCPProgress {
		t.Skip("no TCP progress on this platform")
	}
	for _, tc := range []struct {
		name   string
		server func(http.Handler) *httptest.Server
	}{
		{"tcp", httptest.NewServer},
		{"tls", httptest.NewTLSServer},
	} {
		t.Run(tc.name, func(t *testing.T) {
			accepted := make(chan *websocket.Conn, 1)
			srv := tc.server(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				ws, err := (&websocket.Upgrader{}).Upgrade(w, r, nil)
				if err != nil {
					close(accepted)
					return
				}
				accepted <- ws
			}))
			t.Cleanup(srv.Close)
			d := websocket.Dialer{TLSClientConfig: srv.Client().Transport.(*http.Transport).TLSClientConfig}
			cws, _, err := d.DialContext(t.Context(), plextest.WebSocketURL(srv.URL), nil)
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { cws.Close() })
			sws := <-accepted
			if sws == nil {
				t.Fatal("upgrade failed")
			}
			c := wrap(t, sws, wsconn.Options{})
			if !wsconn.TracksProgress(c) {
				t.Fatal("writes bounded by a socket deadline, want by progress")
			}
		})
	}
}

func TestWriteTimeoutFallsBackToDeadline(t *testing.T) {
	// A pipe has no TCP_INFO: a write that takes WriteTimeout is cut.
	synctest.Test(t, func(t *testing.T) {
		cws, _ := wstest.Pipe(t) // the peer never reads
		c := wrap(t, cws, wsconn.Options{WriteTimeout: 10 * time.Second, KeepAliveInterval: -1})
		if wsconn.TracksProgress(c) {
			t.Fatal("writes over a pipe bounded by progress")
		}
		start := time.Now()
		err := c.WriteMessage([]byte("never read"))
		if !errors.Is(err, wsconn.ErrWriteTimeout) {
			t.Fatalf("write error %v, want ErrWriteTimeout", err)
		}
		if d := time.Since(start); d != 10*time.Second {
			t.Fatalf("cut after %v, want 10s", d)
		}
	})
}
