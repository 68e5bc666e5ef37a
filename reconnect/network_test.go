package reconnect_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"testing"

	"github.com/wsplex/wsplex/internal/netlab"
	"github.com/wsplex/wsplex/internal/plextest"
	"github.com/wsplex/wsplex/mux"
	"github.com/wsplex/wsplex/reconnect"
)

// TestProxyKilledMidTraffic kills the nginx in front of the server while a
// stream is moving data, as a crashed or replaced load balancer would: the
// stream fails with mux.ErrSessionClosed, and once nginx is back the client
// has a new session through it.
func TestProxyKilledMidTraffic(t *testing.T) {
	srv, _ := newEchoServer(t)
	conf, err := os.ReadFile("../docs/nginx/wsplex-proxy.conf")
	if err != nil {
		t.Fatal(err)
	}
	addr := netlab.FreeAddr(t)
	nginx := netlab.StartNginx(t, fmt.Sprintf(`
		map $http_upgrade $connection_upgrade { default upgrade; '' close; }
		server {
			listen %s;
			location / { proxy_pass http://%s; include wsplex-proxy.conf; }
		}`, addr, srv.HTTP.Listener.Addr()), false,
		netlab.File{Name: "wsplex-proxy.conf", Contents: string(conf)})

	rec := newRecorder()
	connected := make(chan *mux.Session, 16)
	newClient(t, "ws://"+addr+"/", &reconnect.Options{
		OnConnect: func(_ context.Context, s *mux.Session) error {
			send(connected, s)
			return nil
		},
		OnStateChange: rec.hook,
	})
	s1 := recv(t, connected, "first OnConnect")
	st, writeErr := trafficOn(t, s1)

	nginx.Kill()
	_, err = io.Copy(io.Discard, st)
	if !errors.Is(err, mux.ErrSessionClosed) {
		t.Errorf("Read after nginx died: %v, want mux.ErrSessionClosed", err)
	}
	if err := recv(t, writeErr, "Write error"); !errors.Is(err, mux.ErrSessionClosed) {
		t.Errorf("Write after nginx died: %v, want mux.ErrSessionClosed", err)
	}
	rec.wait(t, "a failed redial", atLeast(1, reconnect.Waiting))

	nginx.Start()
	s2 := recv(t, connected, "OnConnect through the restarted nginx")
	plextest.CheckEcho(t, s2, "through nginx again")
}
