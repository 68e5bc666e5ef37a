package wsplexnats_test

import (
	"net/http/httptest"
	"strings"
	"testing"

	connectrpc "connectrpc.com/connect/v2"

	"github.com/wsplex/wsplex/examples/chat/chatserver"
	chatv1 "github.com/wsplex/wsplex/examples/chat/gen/chat/v1"
	"github.com/wsplex/wsplex/examples/chat/gen/chat/v1/chatv1connect"
	"github.com/wsplex/wsplex/mux"
	"github.com/wsplex/wsplex/rpc"
)

// TestChatOnNATS runs examples/chat's server twice on one NATS server, as
// wsplexnats/examples/chat does: a member on each server, one room; then
// one member's call breaks and it joins on the other server after its last
// event, and gets what it missed, once.
func TestChatOnNATS(t *testing.T) {
	ns := runServer(t)
	start := func() string {
		_, js := connect(t, ns)
		h, err := chatserver.New(&chatserver.Options{Broker: newBroker(t, js, nil)})
		if err != nil {
			t.Fatal(err)
		}
		srv := httptest.NewServer(h)
		t.Cleanup(func() { h.Close(); srv.Close() })
		return "ws" + strings.TrimPrefix(srv.URL, "http")
	}
	a, b := start(), start()
	ctx := t.Context()
	client := func(url string) chatv1connect.ChatServiceClient {
		sess, err := mux.Dial(ctx, url, nil)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { sess.Close() })
		return chatv1connect.NewChatServiceClient(connectrpc.NewClient(rpc.NewTransport(sess, nil)))
	}
	// join joins room as user and reads up to its own join.
	join := func(c chatv1connect.ChatServiceClient, user string, since *chatv1.Position) chatv1connect.ChatServiceJoinClientStream {
		s, err := c.Join(ctx)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { s.Close() })
		s.Send(&chatv1.JoinRequest{Room: "hall", User: user, Since: since})
		return s
	}
	next := func(s chatv1connect.ChatServiceJoinClientStream) *chatv1.ChatEvent {
		ev, err := s.Receive()
		if err != nil {
			t.Fatal(err)
		}
		return ev
	}
	alice := join(client(a), "alice", nil)
	if ev := next(alice); ev.GetJoined() != "alice" {
		t.Fatalf("alice's first event %v", ev)
	}
	bob := join(client(b), "bob", nil)
	for ev := next(bob); ev.GetJoined() != "bob"; ev = next(bob) {
	}
	if ev := next(alice); ev.GetJoined() != "bob" {
		t.Fatalf("alice saw %v, want bob's join on the other server", ev)
	}
	bob.Send(&chatv1.JoinRequest{Text: "one"})
	last := next(alice)
	if last.GetLine().GetText() != "one" {
		t.Fatalf("alice saw %v", last)
	}
	if ev := next(bob); ev.GetLine().GetText() != "one" {
		t.Fatalf("bob saw %v", ev)
	}

	alice.Close() // her call breaks; the room goes on
	bob.Send(&chatv1.JoinRequest{Text: "two"})
	var missed []string
	for len(missed) < 2 {
		switch ev := next(bob); {
		case ev.GetLine() != nil:
			missed = append(missed, ev.GetLine().GetText())
		case ev.GetLeft() == "alice":
			missed = append(missed, "alice left")
		}
	}
	again := join(client(b), "alice", last.GetPosition())
	var got []string
	for len(got) < 3 {
		switch ev := next(again); {
		case ev.GetMissed():
			t.Fatal("alice was told she missed events")
		case ev.GetLine() != nil:
			got = append(got, ev.GetLine().GetText())
		case ev.GetLeft() != "":
			got = append(got, ev.GetLeft()+" left")
		case ev.GetJoined() != "":
			got = append(got, ev.GetJoined()+" joined")
		}
	}
	if want := append(missed, "alice joined"); strings.Join(got, ",") != strings.Join(want, ",") {
		t.Fatalf("alice resumed with %q, want %q", got, want)
	}
}
