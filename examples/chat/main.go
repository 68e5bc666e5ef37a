// Command chat runs a chat server and three clients in one process. Each
// client joins a room by opening "/chat/room/{room}" and sends a line; the
// server pushes every line of the room to every member over a stream it
// opens towards the client ("/chat/feed/{room}"), which each client serves
// with a Router of its own.
//
//	go run ./examples/chat
//
// With -listen, it serves the chat to browsers instead: a web page whose
// script is the TypeScript client (js/), speaking the same protocol as the
// Go clients. Open the printed address in two tabs.
//
//	go run ./examples/chat -listen 127.0.0.1:8080
package main

import (
	"context"
	"embed"
	"errors"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"log"
	"net"
	"net/http"
	"os"
	"os/signal"
	"slices"
	"sync"
	"time"

	"google.golang.org/protobuf/types/known/wrapperspb"

	"github.com/wsplex/wsplex"
	"github.com/wsplex/wsplex/mux"
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

//go:embed web
var webFiles embed.FS

// newWebHandler serves the web page and, at /wsplex, the chat. Close the
// returned mux.Handler when done.
func newWebHandler() (http.Handler, *mux.Handler, error) {
	chat, err := newChatHandler()
	if err != nil {
		return nil, nil, err
	}
	files, _ := fs.Sub(webFiles, "web")
	m := http.NewServeMux()
	m.Handle("/wsplex", chat)
	m.Handle("/", http.FileServerFS(files))
	return m, chat, nil
}

// serveWeb serves the chat to browsers on addr until interrupted.
func serveWeb(addr string) error {
	h, chat, err := newWebHandler()
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

// newChatHandler returns the chat server's mux.Handler: members open
// "/chat/room/{room}" with metadata "user".
func newChatHandler() (*mux.Handler, error) {
	srv := &server{rooms: map[string]*room{}}
	routes := stream.NewRouter(&stream.Options{
		// Members must say who they are.
		OnOpen: func(ctx context.Context, st *stream.Stream) (wsplex.Metadata, error) {
			if st.Metadata().Get("user") == "" {
				return nil, wsplex.Errorf(wsplex.CodeUnauthenticated, "metadata \"user\" is required")
			}
			return nil, nil
		},
	})
	routes.HandleFunc("/chat/room/{room}", srv.join)
	return mux.NewHandler(func(sess *mux.Session) { routes.Serve(sess) }, nil)
}

// room holds the push streams of its members.
type room struct {
	mu    sync.Mutex
	feeds map[*stream.Stream]bool
}

// broadcast sends line to every member. It sends outside the lock, so
// that a member slow to read holds up only its own feed.
func (r *room) broadcast(line string) {
	r.mu.Lock()
	feeds := make([]*stream.Stream, 0, len(r.feeds))
	for feed := range r.feeds {
		feeds = append(feeds, feed)
	}
	r.mu.Unlock()
	for _, feed := range feeds {
		if err := feed.Send(wrapperspb.String(line)); err != nil {
			r.mu.Lock()
			delete(r.feeds, feed) // that member is gone
			r.mu.Unlock()
			feed.Close()
		}
	}
}

type server struct {
	mu    sync.Mutex
	rooms map[string]*room
}

func (s *server) room(name string) *room {
	s.mu.Lock()
	defer s.mu.Unlock()
	r := s.rooms[name]
	if r == nil {
		r = &room{feeds: map[*stream.Stream]bool{}}
		s.rooms[name] = r
	}
	return r
}

// join serves "/chat/room/{room}": it pushes the room to the member over a
// stream the server opens, and broadcasts each line the member sends.
func (s *server) join(ctx context.Context, st *stream.Stream) error {
	user := st.Metadata().Get("user")
	r := s.room(st.PathValue("room"))
	feed, err := stream.Open(ctx, st.Session(), "/chat/feed/"+st.PathValue("room"), nil)
	if err != nil {
		return err
	}
	r.mu.Lock()
	r.feeds[feed] = true
	r.mu.Unlock()
	defer func() {
		r.mu.Lock()
		delete(r.feeds, feed)
		r.mu.Unlock()
		feed.Close()
	}()
	// Tell the member it is in: from now on it hears every line.
	if err := st.Send(wrapperspb.String("welcome, " + user)); err != nil {
		return err
	}
	for {
		var line wrapperspb.StringValue
		if err := st.Receive(&line); errors.Is(err, io.EOF) {
			return nil
		} else if err != nil {
			return err
		}
		r.broadcast(user + ": " + line.Value)
	}
}

func run(out io.Writer) error {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()

	handler, err := newChatHandler()
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

	users := []string{"alice", "bob", "carol"}
	var wg sync.WaitGroup
	results := make([][]string, len(users))
	errs := make(chan error, len(users))
	joined := make(chan struct{}, len(users))
	allJoined := make(chan struct{})
	for i, user := range users {
		wg.Add(1)
		go func() {
			defer wg.Done()
			lines, err := client(ctx, url, user, len(users), joined, allJoined)
			results[i] = lines
			errs <- err
		}()
	}
	for range users {
		<-joined
	}
	close(allJoined) // everyone listens before anyone speaks
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			return err
		}
	}
	for i, user := range users {
		slices.Sort(results[i])
		fmt.Fprintf(out, "%s heard: %q\n", user, results[i])
	}
	return nil
}

// client joins the lobby as user, says hello once everyone has joined, and
// returns the lines pushed to it until it has heard want of them.
func client(ctx context.Context, url, user string, want int, joined chan<- struct{}, allJoined <-chan struct{}) ([]string, error) {
	sess, err := mux.Dial(ctx, url, nil)
	if err != nil {
		return nil, err
	}

	heard := make(chan string, want)
	routes := stream.NewRouter(nil)
	routes.HandleFunc("/chat/feed/{room}", func(ctx context.Context, feed *stream.Stream) error {
		for {
			var line wrapperspb.StringValue
			if err := feed.Receive(&line); err != nil {
				return nil // the server or the session ended the feed
			}
			heard <- line.Value
		}
	})
	served := make(chan struct{})
	go func() {
		routes.Serve(sess)
		close(served)
	}()
	defer func() {
		sess.Close()
		<-served
	}()

	md := wsplex.Metadata{}
	md.Set("user", user)
	st, err := stream.Open(ctx, sess, "/chat/room/lobby", &stream.OpenOptions{Metadata: md})
	if err != nil {
		return nil, err
	}
	defer st.Close()
	var welcome wrapperspb.StringValue
	if err := st.Receive(&welcome); err != nil {
		return nil, err
	}
	joined <- struct{}{}
	<-allJoined
	if err := st.Send(wrapperspb.String("hello from " + user)); err != nil {
		return nil, err
	}
	var lines []string
	for len(lines) < want {
		select {
		case l := <-heard:
			lines = append(lines, l)
		case <-ctx.Done():
			return lines, ctx.Err()
		}
	}
	return lines, st.CloseWrite()
}
