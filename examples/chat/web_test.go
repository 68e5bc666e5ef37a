package main

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"slices"
	"sync"
	"testing"

	"github.com/wsplex/wsplex/examples/chat/chatserver"
	"github.com/wsplex/wsplex/internal/jsinterop"
	"github.com/wsplex/wsplex/mux"
	"github.com/wsplex/wsplex/topic"
)

// restartable serves chatserver.NewWeb, and at POST /restart closes its
// sessions and serves a new one, with none of the old one's rooms: to the
// pages, the server restarted. With ?keep=1 the new one shares the old
// one's broker, so the rooms and their history stay, as when a page's
// server dies in a cluster and the page reconnects to another.
type restartable struct {
	mu     sync.Mutex
	h      http.Handler
	chat   *mux.Handler
	broker topic.Broker
}

func (r *restartable) restart(keep bool) error {
	if !keep || r.broker == nil {
		r.broker = topic.NewMemoryBroker(nil)
	}
	h, chat, err := chatserver.NewWeb(&chatserver.Options{Broker: r.broker})
	if err != nil {
		return err
	}
	r.mu.Lock()
	old := r.chat
	r.h, r.chat = h, chat
	r.mu.Unlock()
	if old != nil {
		return old.Close()
	}
	return nil
}

func (r *restartable) ServeHTTP(w http.ResponseWriter, req *http.Request) {
	if req.URL.Path == "/restart" && req.Method == http.MethodPost {
		if err := r.restart(req.URL.Query().Get("keep") == "1"); err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
		}
		return
	}
	r.mu.Lock()
	h := r.h
	r.mu.Unlock()
	h.ServeHTTP(w, req)
}

// TestWebChat runs the web page in headless Chromium: two members chat
// through connect-es over the TypeScript client (ListRooms, History and
// Join), the server calls a page to confirm a clear, and after a restart
// of the server both pages reconnect and chat again.
func TestWebChat(t *testing.T) {
	jsinterop.Build(t)
	chromium := jsinterop.NeedChromium(t)
	r := &restartable{}
	if err := r.restart(false); err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(r)
	defer srv.Close()
	defer func() {
		r.mu.Lock()
		defer r.mu.Unlock()
		r.chat.Close()
	}()

	out := jsinterop.Node(t, []string{"CHROMIUM=" + chromium}, "dist/e2e/chat.js", srv.URL)
	var got struct {
		Seen     map[string][]string
		Rooms    string
		Question string
		Resumed  map[string][]string
		After    map[string][]string
		Errors   []string
	}
	if err := json.Unmarshal(out, &got); err != nil {
		t.Fatalf("output %q: %v", out, err)
	}
	want := map[string][]string{
		"alice": {"alice joined", "alice: hello from alice", "bob joined", "bob: hello from bob"},
		"bob":   {"alice joined", "alice: hello from alice", "bob joined", "bob: hello from bob"},
	}
	for user, lines := range want {
		if !slices.Equal(got.Seen[user], lines) {
			t.Errorf("%s's page showed %q, want %q", user, got.Seen[user], lines)
		}
	}
	if got.Rooms != "rooms: lobby (2)" {
		t.Errorf("rooms %q", got.Rooms)
	}
	if got.Question != "Clear the history of lobby for everyone?" {
		t.Errorf("the page was asked %q", got.Question)
	}
	for _, user := range []string{"alice", "bob"} {
		// Resumed after the drop: each line once, the leaves and joins the
		// page missed meanwhile shown.
		for _, l := range []string{"bob: before the drop", "alice: after the drop", "alice left", "bob left"} {
			if n := count(got.Resumed[user], l); n != 1 {
				t.Errorf("%s's page after the drop showed %q %d times: %q", user, l, n, got.Resumed[user])
			}
		}
		if !slices.Contains(got.After[user], "alice: back again") {
			t.Errorf("%s's page after the restart showed %q", user, got.After[user])
		}
	}
	if len(got.Errors) != 0 {
		t.Errorf("page errors %q", got.Errors)
	}
}

func count(lines []string, l string) int {
	n := 0
	for _, x := range lines {
		if x == l {
			n++
		}
	}
	return n
}
