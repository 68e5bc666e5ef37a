package main

import (
	"bytes"
	"net/http/httptest"
	"strings"
	"testing"

	"connectrpc.com/connect/v2"
	"go.uber.org/goleak"

	chatv1 "github.com/wsplex/wsplex/examples/chat/gen/chat/v1"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// TestChat runs the demo: two Go clients call ChatService in all its call
// shapes, and the server calls alice's PageService before it clears.
func TestChat(t *testing.T) {
	var out bytes.Buffer
	if err := run(&out); err != nil {
		t.Fatal(err)
	}
	want := `alice sees: bob joined
alice sees: alice: hello from alice
bob sees: alice: hello from alice
alice sees: bob: hello from bob
bob sees: bob: hello from bob
ListRooms: lobby, 2 members
History: ["alice: hello from alice" "bob: hello from bob"]
alice sees: alice cleared the history
alice's page was asked "Clear the history of lobby for everyone?" and said yes
bob sees: alice cleared the history
History: []
alice sees: bob left
`
	if out.String() != want {
		t.Errorf("got\n%s\nwant\n%s", out.String(), want)
	}
}

// startChat serves the chat on a loopback httptest server and returns its
// WebSocket URL.
func startChat(t *testing.T) string {
	t.Helper()
	handler, err := newChatHandler()
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(handler)
	t.Cleanup(func() {
		handler.Close()
		srv.Close()
	})
	return "ws" + strings.TrimPrefix(srv.URL, "http")
}

// newTestClient dials a client whose page answers yes or no; the test
// closes it.
func newTestClient(t *testing.T, url, user string, yes bool) *client {
	t.Helper()
	c, err := dialClient(t.Context(), url, user, yes)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.close)
	return c
}

// TestJoinNeedsNames: a Join whose first request lacks the room or the
// user fails with invalid_argument.
func TestJoinNeedsNames(t *testing.T) {
	url := startChat(t)
	c := newTestClient(t, url, "", true)
	for _, req := range []*chatv1.JoinRequest{{Room: "lobby"}, {User: "ann"}} {
		s, err := c.chat.Join(t.Context())
		if err != nil {
			t.Fatal(err)
		}
		if err := s.Send(req); err != nil {
			t.Fatal(err)
		}
		_, err = s.Receive()
		if connect.CodeOf(err) != connect.CodeInvalidArgument {
			t.Errorf("Join(%v): %v, want invalid_argument", req, err)
		}
		s.Close()
	}
}

// TestClearDeclined: when the page says no, nothing is cleared and the
// room hears nothing of it.
func TestClearDeclined(t *testing.T) {
	ctx := t.Context()
	url := startChat(t)
	ann := newTestClient(t, url, "ann", false)
	if err := ann.join(ctx, "attic"); err != nil {
		t.Fatal(err)
	}
	for _, text := range []string{"one", "/clear", "two"} {
		if err := ann.say(text); err != nil {
			t.Fatal(err)
		}
	}
	var out bytes.Buffer
	if err := ann.see(&out, 2); err != nil {
		t.Fatal(err)
	}
	if want := "ann sees: ann: one\nann sees: ann: two\n"; out.String() != want {
		t.Errorf("ann saw\n%s, want\n%s", out.String(), want)
	}
	if q := <-ann.asked; !strings.Contains(q, "attic") {
		t.Errorf("asked %q", q)
	}
	var hist bytes.Buffer
	if err := printHistory(ctx, &hist, ann.chat, "attic"); err != nil {
		t.Fatal(err)
	}
	if want := "History: [\"ann: one\" \"ann: two\"]\n"; hist.String() != want {
		t.Errorf("history %q, want %q", hist.String(), want)
	}
	if err := ann.leave(); err != nil {
		t.Fatal(err)
	}
	rooms, err := ann.chat.ListRooms(ctx, &chatv1.ListRoomsRequest{})
	if err != nil {
		t.Fatal(err)
	}
	if got := rooms.GetRooms(); len(got) != 1 || got[0].GetName() != "attic" || got[0].GetMembers() != 0 {
		t.Errorf("rooms %v, want attic with no members", got)
	}
}
