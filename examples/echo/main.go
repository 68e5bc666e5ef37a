// Command echo starts a wsplex server on loopback, dials it, opens a named
// stream and echoes a few protobuf messages through it, then shuts down.
//
//	go run ./examples/echo
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"os"
	"time"

	"google.golang.org/protobuf/types/known/wrapperspb"

	"github.com/wsplex/wsplex"
	"github.com/wsplex/wsplex/mux"
	"github.com/wsplex/wsplex/stream"
)

func main() {
	if err := run(os.Stdout); err != nil {
		log.Fatal(err)
	}
}

func run(out io.Writer) error {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()

	// Server: a router with one handler, mounted as an http.Handler.
	routes := stream.NewRouter(nil)
	routes.HandleFunc("/echo.v1.Echo/Say", func(ctx context.Context, s *stream.Stream) error {
		for {
			var msg wrapperspb.StringValue
			if err := s.Receive(&msg); errors.Is(err, io.EOF) {
				return nil
			} else if err != nil {
				return err
			}
			if err := s.Send(wrapperspb.String("echo: " + msg.Value)); err != nil {
				return err
			}
		}
	})
	handler, err := mux.NewHandler(func(sess *mux.Session) { routes.Serve(sess) }, nil)
	if err != nil {
		return err
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	srv := &http.Server{Handler: handler, ReadHeaderTimeout: 10 * time.Second}
	go srv.Serve(ln)
	defer func() {
		handler.Shutdown(ctx) // upgraded connections are ours to close
		srv.Shutdown(ctx)
	}()
	url := "ws://" + ln.Addr().String()
	fmt.Fprintln(out, "server listening on", url)

	// Client: dial once, then open as many streams as needed.
	sess, err := mux.Dial(ctx, url, nil)
	if err != nil {
		return err
	}
	defer sess.Close()

	s, err := stream.Open(ctx, sess, "/echo.v1.Echo/Say", nil)
	if err != nil {
		return err
	}
	defer s.Close()
	for _, text := range []string{"hello", "wsplex", "bye"} {
		if err := s.Send(wrapperspb.String(text)); err != nil {
			return err
		}
		var reply wrapperspb.StringValue
		if err := s.Receive(&reply); err != nil {
			return err
		}
		fmt.Fprintln(out, reply.Value)
	}
	if err := s.CloseWrite(); err != nil {
		return err
	}
	if err := s.Receive(new(wrapperspb.StringValue)); !errors.Is(err, io.EOF) {
		return fmt.Errorf("expected the end of the stream, got %v", err)
	}

	// Opening a name nobody serves fails with a clear error.
	bad, err := stream.Open(ctx, sess, "/no/such/stream", nil)
	if err != nil {
		return err
	}
	defer bad.Close()
	if _, err := bad.Response(ctx); wsplex.CodeOf(err) == wsplex.CodeNotFound {
		fmt.Fprintln(out, "as expected:", err)
	} else {
		return fmt.Errorf("expected CodeNotFound, got %v", err)
	}
	return nil
}
