package main

import (
	"encoding/json"
	"net/http/httptest"
	"slices"
	"testing"

	"go.uber.org/goleak"

	"github.com/wsplex/wsplex/internal/jsinterop"
)

// TestWebChat runs the web page in headless Chromium: two members join
// through the TypeScript client, and each sees both lines.
func TestWebChat(t *testing.T) {
	defer goleak.VerifyNone(t)
	jsinterop.Build(t)
	chromium := jsinterop.NeedChromium(t)
	h, chat, err := newWebHandler()
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(h)
	defer srv.Close()
	defer chat.Close()

	out := jsinterop.Node(t, []string{"CHROMIUM=" + chromium}, "dist/e2e/chat.js", srv.URL)
	var got struct {
		Seen    map[string][]string
		Refused string
		Errors  []string
	}
	if err := json.Unmarshal(out, &got); err != nil {
		t.Fatalf("output %q: %v", out, err)
	}
	for _, user := range []string{"alice", "bob"} {
		lines := got.Seen[user]
		if !slices.Contains(lines, "welcome, "+user) || !slices.Contains(lines, "alice: hello from alice") ||
			!slices.Contains(lines, "bob: hello from bob") {
			t.Errorf("%s's page showed %q", user, lines)
		}
	}
	if got.Refused != `refused: unauthenticated: metadata "user" is required` || len(got.Errors) != 0 {
		t.Errorf("refused %q, page errors %q", got.Refused, got.Errors)
	}
}
