// Command chat serves chat.v1.ChatService (proto/chat/v1/chat.proto), a
// connect service, over wsplex: ListRooms (unary), History (server
// streaming) and Join (bidi streaming, one call per member of a room). The
// server also calls the caller: a member who says "/clear" is asked to
// confirm by chat.v1.PageService, which each client serves on its own
// session.
//
//	go run ./examples/chat
//
// runs the server and two Go clients, alice and bob, in one process, with
// the connect-go generated clients over rpc.NewTransport.
//
// With -listen, it serves the chat to browsers instead: a web page whose
// script (js/examples/chat.ts, bundled into chatserver/web/app.js) calls the same
// service with connect-es through the TypeScript client, and serves
// PageService for the server to call. Open the printed address in two tabs.
//
//	go run ./examples/chat -listen 127.0.0.1:8080
//
// The code in gen/ is generated from proto/ by protoc-gen-go and
// protoc-gen-connect-go, and the page's by protoc-gen-es (bash .ci/generate).
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"os"
	"os/signal"
	"time"

	"connectrpc.com/connect/v2"

	"github.com/wsplex/wsplex/examples/chat/chatserver"
	chatv1 "github.com/wsplex/wsplex/examples/chat/gen/chat/v1"
	"github.com/wsplex/wsplex/examples/chat/gen/chat/v1/chatv1connect"
	"github.com/wsplex/wsplex/mux"
	"github.com/wsplex/wsplex/rpc"
	"github.com/wsplex/wsplex/stream"
)

func main() {
	listen := flag.String("listen", "", "serve the chat to browsers on this address instead of running the demo")
	flag.Parse()
	var err error
	if *listen != "" {
		err = serveWeb(*listen)
	} else {
		err = run(os.Stdout)
	}
	if err != nil {
		log.Fatal(err)
	}
}

// serveWeb serves the chat to browsers on addr until interrupted.
func serveWeb(addr string) error {
	h, chat, err := chatserver.NewWeb(nil)
	if err != nil {
		return err
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return err
	}
	srv := &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second}
	fmt.Printf("chat: open http://%s/ in two browser tabs\n", ln.Addr())
	go srv.Serve(ln)
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	<-ctx.Done()
	shutdown, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	srv.Shutdown(shutdown)
	return chat.Shutdown(shutdown)
}

// run serves the chat on loopback and has alice and bob chat in the lobby,
// printing what each sees.
func run(out io.Writer) error {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()

	handler, err := chatserver.New(nil)
	if err != nil {
		return err
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	httpSrv := &http.Server{Handler: handler, ReadHeaderTimeout: 10 * time.Second}
	go httpSrv.Serve(ln)
	defer func() {
		handler.Shutdown(ctx)
		httpSrv.Shutdown(ctx)
	}()
	url := "ws://" + ln.Addr().String()

	alice, err := dialClient(ctx, url, "alice", true)
	if err != nil {
		return err
	}
	defer alice.close()
	bob, err := dialClient(ctx, url, "bob", false)
	if err != nil {
		return err
	}
	defer bob.close()

	// Each member's first event is its own join, so once both have seen
	// it, both hear everything after.
	if err := alice.join(ctx, "lobby"); err != nil {
		return err
	}
	if err := bob.join(ctx, "lobby"); err != nil {
		return err
	}
	if err := alice.see(out, 1); err != nil { // bob joined
		return err
	}
	for _, c := range []*client{alice, bob} {
		if err := c.say("hello from " + c.user); err != nil {
			return err
		}
		if err := alice.see(out, 1); err != nil {
			return err
		}
		if err := bob.see(out, 1); err != nil {
			return err
		}
	}

	rooms, err := alice.chat.ListRooms(ctx, &chatv1.ListRoomsRequest{})
	if err != nil {
		return err
	}
	for _, r := range rooms.GetRooms() {
		fmt.Fprintf(out, "ListRooms: %s, %d members\n", r.GetName(), r.GetMembers())
	}
	if err := printHistory(ctx, out, bob.chat, "lobby"); err != nil {
		return err
	}

	// "/clear" makes the server ask alice's PageService first.
	if err := alice.say("/clear"); err != nil {
		return err
	}
	if err := alice.see(out, 1); err != nil {
		return err
	}
	fmt.Fprintf(out, "alice's page was asked %q and said yes\n", <-alice.asked)
	if err := bob.see(out, 1); err != nil {
		return err
	}
	if err := printHistory(ctx, out, bob.chat, "lobby"); err != nil {
		return err
	}

	if err := bob.leave(); err != nil {
		return err
	}
	return alice.see(out, 1) // bob left
}

// printHistory prints the lines History sends for room.
func printHistory(ctx context.Context, out io.Writer, chat chatv1connect.ChatServiceClient, room string) error {
	h, err := chat.History(ctx, &chatv1.HistoryRequest{Room: room})
	if err != nil {
		return err
	}
	defer h.Close()
	var lines []string
	for {
		l, err := h.Receive()
		if errors.Is(err, io.EOF) {
			break
		} else if err != nil {
			return err
		}
		lines = append(lines, l.GetUser()+": "+l.GetText())
	}
	fmt.Fprintf(out, "History: %q\n", lines)
	return nil
}

// client is one member: a session, the ChatService client on it, and the
// PageService it serves for the server to call.
type client struct {
	user   string
	sess   *mux.Session
	served chan struct{}
	chat   chatv1connect.ChatServiceClient
	asked  chan string // the questions its page was asked
	room   chatv1connect.ChatServiceJoinClientStream
	joined bool
}

// dialClient connects user's session and serves its PageService, which
// answers every question with yes, or with no.
func dialClient(ctx context.Context, url, user string, yes bool) (*client, error) {
	sess, err := mux.Dial(ctx, url, nil)
	if err != nil {
		return nil, err
	}
	c := &client{user: user, sess: sess, served: make(chan struct{}), asked: make(chan string, 1)}
	pages := connect.NewServer()
	chatv1connect.RegisterPageServiceHandler(pages, &page{asked: c.asked, yes: yes})
	routes := stream.NewRouter(nil)
	rpc.Mount(routes, pages, nil)
	go func() {
		routes.Serve(sess)
		close(c.served)
	}()
	c.chat = chatv1connect.NewChatServiceClient(connect.NewClient(rpc.NewTransport(sess, nil)))
	return c, nil
}

// join calls Join for room and prints nothing of the room's history,
// which ends with its own join.
func (c *client) join(ctx context.Context, room string) error {
	s, err := c.chat.Join(ctx)
	if err != nil {
		return err
	}
	c.room, c.joined = s, true
	if err := s.Send(&chatv1.JoinRequest{Room: room, User: c.user}); err != nil {
		return err
	}
	for {
		ev, err := s.Receive()
		if err != nil {
			return err
		}
		if ev.GetJoined() == c.user {
			return nil
		}
	}
}

func (c *client) say(text string) error {
	return c.room.Send(&chatv1.JoinRequest{Text: text})
}

// see prints the next n events of the room as c sees them.
func (c *client) see(out io.Writer, n int) error {
	for range n {
		ev, err := c.room.Receive()
		if err != nil {
			return fmt.Errorf("%s: %w", c.user, err)
		}
		fmt.Fprintf(out, "%s sees: %s\n", c.user, describe(ev))
	}
	return nil
}

// describe says what ev is, as the web page shows it.
func describe(ev *chatv1.ChatEvent) string {
	switch e := ev.GetEvent().(type) {
	case *chatv1.ChatEvent_Line:
		return e.Line.GetUser() + ": " + e.Line.GetText()
	case *chatv1.ChatEvent_Joined:
		return e.Joined + " joined"
	case *chatv1.ChatEvent_Left:
		return e.Left + " left"
	case *chatv1.ChatEvent_Cleared:
		return e.Cleared + " cleared the history"
	case *chatv1.ChatEvent_Missed:
		return "(events were missed)"
	}
	return "?"
}

// leave half-closes the Join call and reads to its clean end.
func (c *client) leave() error {
	if err := c.room.CloseSend(); err != nil {
		return err
	}
	for {
		if _, err := c.room.Receive(); errors.Is(err, io.EOF) {
			c.joined = false
			return c.room.Close()
		} else if err != nil {
			return err
		}
	}
}

func (c *client) close() {
	if c.joined {
		c.room.Close()
	}
	c.sess.Close()
	<-c.served
}

// page is PageService as a Go client serves it: it answers every question
// with yes, or with no, and reports the question on asked.
type page struct {
	chatv1connect.UnimplementedPageServiceHandler
	asked chan<- string
	yes   bool
}

func (p *page) Confirm(ctx context.Context, req *chatv1.ConfirmRequest) (*chatv1.ConfirmResponse, error) {
	select {
	case p.asked <- req.GetQuestion():
	default:
	}
	return &chatv1.ConfirmResponse{Yes: p.yes}, nil
}
