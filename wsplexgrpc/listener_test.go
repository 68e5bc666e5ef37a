package wsplexgrpc_test

import (
	"context"
	"errors"
	"net"
	"testing"
	"time"

	"golang.org/x/net/nettest"

	"github.com/wsplex/wsplex"
	"github.com/wsplex/wsplex/internal/plextest"
	"github.com/wsplex/wsplex/mux"
	"github.com/wsplex/wsplex/stream"
	"github.com/wsplex/wsplex/wsplexgrpc"
)

// mount serves lis under DefaultName on a loopback server and returns a
// client session, and a channel closed when the server's Router has
// returned, and so every ServeStream. lis is closed when the test ends,
// before the server.
func mount(t testing.TB, lis *wsplexgrpc.Listener) (*mux.Session, <-chan struct{}) {
	t.Helper()
	routes := stream.NewRouter(nil)
	routes.Handle(wsplexgrpc.DefaultName, lis)
	served := make(chan struct{})
	srv := plextest.NewServer(t, func(s *mux.Session) {
		defer close(served)
		routes.Serve(s)
	}, nil)
	t.Cleanup(func() { lis.Close() })
	return srv.Dial(t, nil), served
}

// openWaiting opens a stream to lis and waits until the Router has
// answered it, and so is about to call ServeStream.
func openWaiting(t testing.TB, sess *mux.Session) *stream.Stream {
	t.Helper()
	s, err := stream.Open(t.Context(), sess, wsplexgrpc.DefaultName, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	if _, err := s.Response(t.Context()); err != nil {
		t.Fatal(err)
	}
	// Should a test fail, its read fails too rather than hang.
	s.SetReadDeadline(time.Now().Add(time.Minute))
	return s
}

func TestListenerClose(t *testing.T) {
	lis := wsplexgrpc.NewListener(nil)
	accepted := make(chan error, 1)
	go func() {
		_, err := lis.Accept()
		accepted <- err
	}()
	if err := lis.Close(); err != nil {
		t.Fatal(err)
	}
	if err := <-accepted; !errors.Is(err, net.ErrClosed) || !errors.Is(err, wsplexgrpc.ErrListenerClosed) {
		t.Errorf("pending Accept: got %v, want ErrListenerClosed matching net.ErrClosed", err)
	}
	if _, err := lis.Accept(); !errors.Is(err, net.ErrClosed) {
		t.Errorf("Accept after Close: got %v, want net.ErrClosed", err)
	}
	if err := lis.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
	if got := lis.Addr().Network(); got != "wsplex" {
		t.Errorf("Addr().Network() is %q", got)
	}
}

// A stream waiting for Accept is refused when the Listener closes.
func TestListenerCloseRefusesWaiting(t *testing.T) {
	lis := wsplexgrpc.NewListener(&wsplexgrpc.ListenerOptions{AcceptTimeout: time.Hour})
	sess, _ := mount(t, lis)
	s := openWaiting(t, sess)
	lis.Close()
	_, err := s.Read(make([]byte, 1))
	if wsplex.CodeOf(err) != wsplex.CodeUnavailable {
		t.Errorf("Read: got %v, want CodeUnavailable", err)
	}
}

// A stream that nobody accepts is refused after AcceptTimeout.
func TestAcceptTimeout(t *testing.T) {
	lis := wsplexgrpc.NewListener(&wsplexgrpc.ListenerOptions{AcceptTimeout: time.Millisecond})
	sess, _ := mount(t, lis)
	s := openWaiting(t, sess)
	_, err := s.Read(make([]byte, 1))
	var e *wsplex.Error
	if !errors.As(err, &e) || e.Code != wsplex.CodeUnavailable || e.Message != "no grpc server accepted the connection in time" {
		t.Errorf("Read: got %v, want CodeUnavailable: no grpc server accepted the connection in time", err)
	}
}

// A stream waiting for Accept stops waiting when its session ends.
func TestServeStreamSessionEnds(t *testing.T) {
	lis := wsplexgrpc.NewListener(&wsplexgrpc.ListenerOptions{AcceptTimeout: time.Hour})
	sess, served := mount(t, lis)
	openWaiting(t, sess)
	sess.Close()
	select {
	case <-served: // Router.Serve waits for its handlers
	case <-time.After(time.Minute):
		t.Fatal("ServeStream still waits after its session ended")
	}
}

// A connection that gRPC closes ends its stream; the peer reads the end.
func TestConnClose(t *testing.T) {
	lis := wsplexgrpc.NewListener(nil)
	sess, _ := mount(t, lis)
	c, err := wsplexgrpc.Dialer(sess, nil)(t.Context(), "wsplex")
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	a, err := lis.Accept()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := a.Write([]byte("x")); err != nil {
		t.Fatal(err)
	}
	a.Close()
	c.SetReadDeadline(time.Now().Add(time.Minute))
	buf := make([]byte, 2)
	if n, err := c.Read(buf); n != 1 || err != nil {
		t.Fatalf("Read: %d, %v", n, err)
	}
	if n, err := c.Read(buf); n != 0 || err == nil {
		t.Errorf("Read after the peer closed: %d, %v; want an error", n, err)
	}
}

// A Dialer's connection and the Listener's are net.Conns by the book.
func TestConnConformance(t *testing.T) {
	lis := wsplexgrpc.NewListener(nil)
	sess, _ := mount(t, lis)
	dial := wsplexgrpc.Dialer(sess, nil)
	nettest.TestConn(t, func() (c1, c2 net.Conn, stop func(), err error) {
		c1, err = dial(context.Background(), "wsplex")
		if err != nil {
			return nil, nil, nil, err
		}
		c2, err = lis.Accept()
		if err != nil {
			c1.Close()
			return nil, nil, nil, err
		}
		return c1, c2, func() { c1.Close(); c2.Close() }, nil
	})
}
