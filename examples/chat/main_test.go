package main

import (
	"bytes"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"

	"connectrpc.com/connect/v2"
	"go.uber.org/goleak"

	"github.com/wsplex/wsplex/examples/chat/chatserver"
	chatv1 "github.com/wsplex/wsplex/examples/chat/gen/chat/v1"
	"github.com/wsplex/wsplex/topic"
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
	handler, err := chatserver.New(nil)
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
	if got := rooms.GetRooms(); len(got) != 0 {
		t.Errorf("rooms %v, want none: attic has no members left", got)
	}
}

// startChatOn serves a chat whose rooms live in broker, as one server of
// a cluster, and returns its WebSocket URL.
func startChatOn(t *testing.T, broker topic.Broker) string {
	t.Helper()
	handler, err := chatserver.New(&chatserver.Options{Broker: broker})
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

// TestRoomsSpanServers runs two chat servers on one broker: members on
// either are in one room, and a member whose call breaks resumes on the
// other server after its last event, missing nothing and seeing nothing
// twice.
func TestRoomsSpanServers(t *testing.T) {
	ctx := t.Context()
	broker := topic.NewMemoryBroker(nil)
	a, b := startChatOn(t, broker), startChatOn(t, broker)
	alice := newTestClient(t, a, "alice", true)
	bob := newTestClient(t, b, "bob", true)
	if err := alice.join(ctx, "hall"); err != nil {
		t.Fatal(err)
	}
	if err := bob.join(ctx, "hall"); err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	if err := alice.see(&out, 1); err != nil { // bob joined, on the other server
		t.Fatal(err)
	}
	bob.say("one")
	if err := bob.see(&out, 1); err != nil {
		t.Fatal(err)
	}
	last, err := alice.room.Receive()
	if err != nil || last.GetLine().GetText() != "one" {
		t.Fatalf("alice got %v, %v", last, err)
	}

	// alice's call breaks; bob goes on talking; alice joins on server b
	// after the last event she had.
	alice.room.Close()
	alice.joined = false
	bob.say("two")
	bob.say("three")
	out.Reset()
	if err := bob.see(&out, 3); err != nil { // alice left, two, three, in the room's order
		t.Fatal(err)
	}
	want := strings.Split(strings.ReplaceAll(strings.TrimSpace(out.String()), "bob sees: ", ""), "\n")
	want = append(want, "alice joined")
	alice2 := newTestClient(t, b, "alice", true)
	s, err := alice2.chat.Join(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	s.Send(&chatv1.JoinRequest{Room: "hall", User: "alice", Since: last.GetPosition()})
	var got []string
	for len(got) < 4 {
		ev, err := s.Receive()
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, describe(ev))
	}
	if !slices.Equal(got, want) {
		t.Fatalf("alice resumed with %q, want %q", got, want)
	}
}
