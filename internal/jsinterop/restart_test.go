package jsinterop_test

import (
	"net"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"

	"github.com/wsplex/wsplex/internal/jsinterop"
)

// restartable is a wsplex server that the Node tests can kill and start
// again on the same address, as a server process that restarts: every
// session ends with its connection, and the new server knows none of
// them.
type restartable struct {
	t    *testing.T
	addr string

	mu   sync.Mutex
	srv  *http.Server
	wsp  *jsinterop.Server
	done chan struct{}
}

func startRestartable(t *testing.T) *restartable {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	r := &restartable{t: t, addr: ln.Addr().String()}
	r.serve(ln)
	t.Cleanup(r.stop)
	return r
}

// serve starts a fresh server on ln.
func (r *restartable) serve(ln net.Listener) {
	wsp, err := jsinterop.NewServer(nil)
	if err != nil {
		r.t.Error(err)
		ln.Close()
		return
	}
	srv := &http.Server{Handler: wsp}
	done := make(chan struct{})
	go func() {
		defer close(done)
		srv.Serve(ln)
	}()
	r.srv, r.wsp, r.done = srv, wsp, done
}

// stop kills the server: its listener, its connections and sessions.
func (r *restartable) stop() {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.srv == nil {
		return
	}
	r.srv.Close()
	r.wsp.Handler.Close()
	<-r.done
	r.srv = nil
}

// restart kills the server and starts a new one on the same address.
func (r *restartable) restart() error {
	r.stop()
	ln, err := net.Listen("tcp", r.addr)
	if err != nil {
		return err
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	r.serve(ln)
	return nil
}

// control serves POST /restart, for the Node tests.
func (r *restartable) control(t *testing.T) *httptest.Server {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		if req.Method != http.MethodPost || req.URL.Path != "/restart" {
			http.NotFound(w, req)
			return
		}
		if err := r.restart(); err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
		}
	}))
	t.Cleanup(srv.Close)
	return srv
}
