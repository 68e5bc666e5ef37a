// Package jsinterop is the Go side of the TypeScript client's tests: a
// wsplex server with the routes the Node and browser tests exercise, the
// test service PingService for its connect-es transport (package rpc),
// topic hubs (package topic), the same PingService over HTTP and a plain
// WebSocket endpoint to compare speed with. Its tests build the client in js/ and run those tests against
// it.
package jsinterop

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"sync"
	"sync/atomic"

	"connectrpc.com/connect/v2"
	"connectrpc.com/connect/v2/connecthttp"
	"github.com/gorilla/websocket"
	"google.golang.org/protobuf/types/known/anypb"
	"google.golang.org/protobuf/types/known/wrapperspb"

	"github.com/wsplex/wsplex"
	"github.com/wsplex/wsplex/internal/gen/ping/v1/pingv1connect"
	"github.com/wsplex/wsplex/mux"
	"github.com/wsplex/wsplex/rpc"
	"github.com/wsplex/wsplex/stream"
)

// MaxMessageSize is the message limit of the test routes, raised so that
// the clients can send messages of several MiB.
const MaxMessageSize = 16 << 20

// Server serves the test routes.
type Server struct {
	Handler *mux.Handler // the wsplex endpoint
	mux     *http.ServeMux

	mu       sync.Mutex
	progress map[*mux.Session]*atomic.Int64 // bytes /flood sent, per session
	canceled chan string                    // how each /hang stream ended
	closed   chan string                    // what each /closed stream saw
	hubs     map[string]*watchedHub         // the topic hubs, by name (topics.go)
}

// NewServer returns a Server whose wsplex endpoint is /wsplex, whose plain
// WebSocket endpoint is /ws-plain, which serves PingService over HTTP with
// connect's own handler at /wsplex.ping.v1.PingService/ (for connect-web's
// fetch transport in the same page, so without CORS), and which serves
// files at other paths.
func NewServer(files http.Handler) (*Server, error) {
	s := &Server{progress: map[*mux.Session]*atomic.Int64{}, canceled: make(chan string, 16), closed: make(chan string, 16)}
	routes := stream.NewRouter(&stream.Options{MaxMessageSize: MaxMessageSize, OnOpen: authorizeTopic})
	routes.HandleFunc("/echo", echo)
	routes.HandleFunc("/raw", func(ctx context.Context, st *stream.Stream) error {
		_, err := io.Copy(st, st)
		return err
	})
	routes.HandleFunc("/push/{n}", push)
	routes.HandleFunc("/count", count)
	routes.HandleFunc("/fail", func(ctx context.Context, st *stream.Stream) error {
		if err := st.Send(wrapperspb.String("about to fail")); err != nil {
			return err
		}
		return wsplex.NewError(wsplex.CodePermissionDenied, "no entry")
	})
	routes.HandleFunc("/hang", func(ctx context.Context, st *stream.Stream) error {
		<-ctx.Done()
		s.canceled <- fmt.Sprint(context.Cause(ctx))
		return nil
	})
	routes.HandleFunc("/last-cancel", func(ctx context.Context, st *stream.Stream) error {
		select {
		case why := <-s.canceled:
			return st.Send(wrapperspb.String(why))
		case <-ctx.Done():
			return ctx.Err()
		}
	})
	routes.HandleFunc("/status", status)
	routes.HandleFunc("/closed", s.closedByPeer)
	routes.HandleFunc("/last-closed", func(ctx context.Context, st *stream.Stream) error {
		select {
		case what := <-s.closed:
			return st.Send(wrapperspb.String(what))
		case <-ctx.Done():
			return ctx.Err()
		}
	})
	routes.HandleFunc("/flood/{mib}", s.flood)
	routes.HandleFunc("/progress", s.reportProgress)
	routes.HandleFunc("/sink", sink)
	// /kill ends the caller's session, as a server that goes away does.
	routes.HandleFunc("/kill", func(ctx context.Context, st *stream.Stream) error {
		return st.Session().Close()
	})
	// /call-page/{what} calls the PingService the page serves on its session.
	routes.HandleFunc("/call-page/{what}", callPage)
	// Topics (SPEC.md §14), and /topic-control to publish to them.
	s.hubs = mountTopics(routes)
	routes.HandleFunc("/topic-control", s.topicControl)
	services := connect.NewServer()
	pingv1connect.RegisterPingServiceHandler(services, newPingService())
	rpc.Mount(routes, services, nil)

	h, err := mux.NewHandler(func(sess *mux.Session) {
		routes.Serve(sess)
		s.mu.Lock()
		delete(s.progress, sess)
		s.mu.Unlock()
	}, &mux.HandlerOptions{OriginPatterns: []string{"*"}})
	if err != nil {
		return nil, err
	}
	s.Handler = h
	s.mux = http.NewServeMux()
	s.mux.Handle("/wsplex", h)
	s.mux.HandleFunc("/ws-plain", plainSink)
	connecthttp.Mount(s.mux, services)
	if files != nil {
		s.mux.Handle("/", files)
	}
	return s, nil
}

func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) { s.mux.ServeHTTP(w, r) }

// echo sends back every message it receives.
func echo(ctx context.Context, st *stream.Stream) error {
	for {
		var m wrapperspb.BytesValue
		if err := st.Receive(&m); errors.Is(err, io.EOF) {
			return nil
		} else if err != nil {
			return err
		}
		if err := st.Send(&m); err != nil {
			return err
		}
	}
}

// status sends one message, then ends the stream with a status that has
// details and trailers.
func status(ctx context.Context, st *stream.Stream) error {
	if err := st.Send(wrapperspb.String("partial")); err != nil {
		return err
	}
	detail, err := anypb.New(wrapperspb.String("retry later"))
	if err != nil {
		return err
	}
	return &wsplex.Error{
		Code:     wsplex.CodeAborted,
		Message:  "conflict",
		Details:  []*anypb.Any{detail},
		Trailers: wsplex.Metadata{"x-revision": {"7", "8"}},
	}
}

// closedByPeer is for a client that sends a message, half-closes and
// closes the stream (a CODE_OK reset): it reads the message and the end,
// then sends until the peer's close fails its Send, and reports what it
// saw, and whether its context still lives, to /last-closed.
func (s *Server) closedByPeer(ctx context.Context, st *stream.Stream) error {
	var m wrapperspb.StringValue
	if err := st.Receive(&m); err != nil {
		return err
	}
	end := st.Receive(new(wrapperspb.StringValue))
	filler := wrapperspb.Bytes(make([]byte, 1024))
	var sendErr error
	for sendErr == nil {
		sendErr = st.Send(filler) // fails once the peer's reset arrives
	}
	s.closed <- fmt.Sprintf("got %q, then %v; Send: %v; context: %v", m.Value, end, sendErr, ctx.Err())
	return nil
}

// push opens n streams to the client, "/notify/0" and so on, sends one
// message on each and waits for the client to end it, then reports.
func push(ctx context.Context, st *stream.Stream) error {
	n, err := strconv.Atoi(st.PathValue("n"))
	if err != nil || n < 0 || n > 1000 {
		return wsplex.Errorf(wsplex.CodeInvalidArgument, "bad count %q", st.PathValue("n"))
	}
	var wg sync.WaitGroup
	errs := make(chan error, n)
	for i := range n {
		wg.Go(func() {
			ps, err := stream.Open(ctx, st.Session(), fmt.Sprintf("/notify/%d", i), nil)
			if err != nil {
				errs <- err
				return
			}
			defer ps.Close()
			if err := ps.Send(wrapperspb.String(fmt.Sprintf("notify %d", i))); err != nil {
				errs <- err
				return
			}
			ps.CloseWrite()
			var ack wrapperspb.StringValue
			if err := ps.Receive(&ack); err != nil {
				errs <- fmt.Errorf("push %d: %w", i, err)
				return
			}
			if ack.Value != fmt.Sprintf("ack %d", i) {
				errs <- fmt.Errorf("push %d: client answered %q", i, ack.Value)
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		return wsplex.Errorf(wsplex.CodeInternal, "%v", err)
	}
	return st.Send(wrapperspb.String(fmt.Sprintf("pushed %d", n)))
}

// count counts the messages until the client half-closes, then says how
// many there were: it checks that the client's closeWrite arrives.
func count(ctx context.Context, st *stream.Stream) error {
	n := 0
	for {
		var m wrapperspb.BytesValue
		if err := st.Receive(&m); errors.Is(err, io.EOF) {
			break
		} else if err != nil {
			return err
		}
		n++
	}
	return st.Send(wrapperspb.String(fmt.Sprint(n)))
}

// flood sends mib MiB in 64 KiB messages, counting what it sent, for the
// flow-control test: a client that does not read must stop it.
func (s *Server) flood(ctx context.Context, st *stream.Stream) error {
	mib, err := strconv.Atoi(st.PathValue("mib"))
	if err != nil || mib < 0 || mib > 256 {
		return wsplex.Errorf(wsplex.CodeInvalidArgument, "bad size %q", st.PathValue("mib"))
	}
	sent := s.counter(st.Session())
	msg := wrapperspb.Bytes(make([]byte, 64<<10))
	for range mib * 16 {
		if err := st.Send(msg); err != nil {
			return err
		}
		sent.Add(int64(len(msg.Value)))
	}
	return nil
}

func (s *Server) counter(sess *mux.Session) *atomic.Int64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	c := s.progress[sess]
	if c == nil {
		c = new(atomic.Int64)
		s.progress[sess] = c
	}
	return c
}

// reportProgress answers every message with how many bytes /flood has sent
// on this session.
func (s *Server) reportProgress(ctx context.Context, st *stream.Stream) error {
	sent := s.counter(st.Session())
	for {
		var m wrapperspb.StringValue
		if err := st.Receive(&m); errors.Is(err, io.EOF) {
			return nil
		} else if err != nil {
			return err
		}
		if err := st.Send(wrapperspb.String(strconv.FormatInt(sent.Load(), 10))); err != nil {
			return err
		}
	}
}

// sink counts the bytes of the messages it receives until the client
// half-closes, then reports the total: the throughput benchmark's server.
func sink(ctx context.Context, st *stream.Stream) error {
	total := 0
	for {
		var m wrapperspb.BytesValue
		if err := st.Receive(&m); errors.Is(err, io.EOF) {
			break
		} else if err != nil {
			return err
		}
		total += len(m.Value)
	}
	return st.Send(wrapperspb.String(strconv.Itoa(total)))
}

var upgrader = websocket.Upgrader{CheckOrigin: func(*http.Request) bool { return true }, ReadBufferSize: 64 << 10}

// plainSink is sink over plain WebSocket messages: it counts the bytes of
// binary messages until a text message, then answers with the total. The
// end is marked by a text message, not an empty binary one: Chromium now and
// then never sends an empty message queued behind megabytes of others.
func plainSink(w http.ResponseWriter, r *http.Request) {
	ws, err := upgrader.Upgrade(w, r, nil)
	if err != nil {
		return
	}
	defer ws.Close()
	ws.SetReadLimit(MaxMessageSize)
	total := 0
	for {
		typ, p, err := ws.ReadMessage()
		if err != nil {
			return
		}
		if typ == websocket.TextMessage {
			ws.WriteMessage(websocket.TextMessage, []byte(strconv.Itoa(total)))
			total = 0
			continue
		}
		total += len(p)
	}
}
