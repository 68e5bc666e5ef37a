package mux_test

import (
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/wsplex/wsplex/internal/plextest"
	"github.com/wsplex/wsplex/mux"
)

// TestServeHTTPReturnsWhileServing checks that the request's goroutine
// goes back to the http.Server once the session started, with what the
// server holds for the request, while the serve func goes on.
func TestServeHTTPReturnsWhileServing(t *testing.T) {
	release := make(chan struct{})
	h, err := mux.NewHandler(func(s *mux.Session) {
		<-release
		plextest.Echo(s)
	}, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer h.Close()
	returned := make(chan struct{}, 1)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h.ServeHTTP(w, r)
		returned <- struct{}{}
	}))
	defer srv.Close()

	sess, err := mux.Dial(t.Context(), plextest.WebSocketURL(srv.URL), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer sess.Close()
	select {
	case <-returned:
	case <-time.After(10 * time.Second): // a bound, not a wait: this is the failure
		close(release)
		t.Fatal("ServeHTTP did not return while its session was served")
	}
	close(release)
	plextest.CheckEcho(t, sess, "after ServeHTTP returned")
}

func TestServePanicEndsOnlyItsSession(t *testing.T) {
	var logs plextest.LogBuffer
	srv := plextest.NewServer(t, func(s *mux.Session) {
		if mux.AuthInfo(s.Context()) == "panic" {
			panic("serve func failed")
		}
		plextest.Echo(s)
	}, &mux.HandlerOptions{
		Options: mux.Options{Logger: slog.New(slog.NewTextHandler(&logs, nil))},
		Authenticate: func(r *http.Request) (any, error) {
			return r.URL.Query().Get("mode"), nil
		},
	})
	good, err := mux.Dial(t.Context(), srv.URL+"?mode=echo", nil)
	if err != nil {
		t.Fatal(err)
	}
	defer good.Close()
	bad, err := mux.Dial(t.Context(), srv.URL+"?mode=panic", nil)
	if err != nil {
		t.Fatal(err)
	}
	defer bad.Close()

	<-bad.Done() // the panic closed it
	plextest.CheckEcho(t, good, "beside a panicking session")
	if l := logs.String(); !strings.Contains(l, "level=ERROR") || !strings.Contains(l, "serve func failed") {
		t.Fatalf("the panic was not logged at Error:\n%s", l)
	}
}
