package stream_test

import (
	"context"
	"fmt"
	"io"
	"net/http/httptest"
	"strings"

	"google.golang.org/protobuf/types/known/wrapperspb"

	"github.com/wsplex/wsplex"
	"github.com/wsplex/wsplex/mux"
	"github.com/wsplex/wsplex/stream"
)

// A server routes named streams to handlers; a client opens one and
// exchanges messages.
func Example() {
	routes := stream.NewRouter(nil)
	routes.HandleFunc("/greet/{name}", func(ctx context.Context, s *stream.Stream) error {
		return s.Send(wrapperspb.String("hello, " + s.PathValue("name")))
	})
	handler, _ := mux.NewHandler(func(sess *mux.Session) { routes.Serve(sess) }, nil)
	srv := httptest.NewServer(handler)
	defer srv.Close()
	defer handler.Close()

	ctx := context.Background()
	sess, err := mux.Dial(ctx, "ws"+strings.TrimPrefix(srv.URL, "http"), nil)
	if err != nil {
		fmt.Println(err)
		return
	}
	defer sess.Close()

	s, err := stream.Open(ctx, sess, "/greet/gopher", nil)
	if err != nil {
		fmt.Println(err)
		return
	}
	defer s.Close()
	var reply wrapperspb.StringValue
	if err := s.Receive(&reply); err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(reply.Value)
	fmt.Println(s.Receive(&reply) == io.EOF)

	unknown, _ := stream.Open(ctx, sess, "/nobody/home", nil)
	defer unknown.Close()
	_, err = unknown.Response(ctx)
	fmt.Println(wsplex.CodeOf(err) == wsplex.CodeNotFound)
	// Output:
	// hello, gopher
	// true
	// true
}

// A handler's error becomes the status the other side reads, after the
// messages sent before it.
func Example_handlerError() {
	routes := stream.NewRouter(nil)
	routes.HandleFunc("/countdown", func(ctx context.Context, s *stream.Stream) error {
		s.Send(wrapperspb.Int32(2))
		s.Send(wrapperspb.Int32(1))
		return wsplex.NewError(wsplex.CodeResourceExhausted, "out of numbers")
	})
	handler, _ := mux.NewHandler(func(sess *mux.Session) { routes.Serve(sess) }, nil)
	srv := httptest.NewServer(handler)
	defer srv.Close()
	defer handler.Close()
	sess, err := mux.Dial(context.Background(), "ws"+strings.TrimPrefix(srv.URL, "http"), nil)
	if err != nil {
		fmt.Println(err)
		return
	}
	defer sess.Close()

	s, _ := stream.Open(context.Background(), sess, "/countdown", nil)
	defer s.Close()
	for {
		var n wrapperspb.Int32Value
		if err := s.Receive(&n); err != nil {
			fmt.Println(err)
			fmt.Println(wsplex.CodeOf(err) == wsplex.CodeResourceExhausted)
			return
		}
		fmt.Println(n.Value)
	}
	// Output:
	// 2
	// 1
	// wsplex: resource_exhausted: out of numbers
	// true
}
