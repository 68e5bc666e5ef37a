// Command rpc serves a connect-go service over wsplex on loopback and calls
// it in every call shape with its generated client; the client serves a
// service of its own, which the server calls back on the same session.
//
//	go run ./examples/rpc
//
// The code in gen/ is generated from proto/ by protoc-gen-go and
// protoc-gen-connect-go (bash .ci/generate).
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
	"strings"
	"time"

	"connectrpc.com/connect/v2"

	greetv1 "github.com/wsplex/wsplex/examples/rpc/gen/greet/v1"
	"github.com/wsplex/wsplex/examples/rpc/gen/greet/v1/greetv1connect"
	"github.com/wsplex/wsplex/mux"
	"github.com/wsplex/wsplex/rpc"
	"github.com/wsplex/wsplex/stream"
)

func main() {
	if err := run(os.Stdout); err != nil {
		log.Fatal(err)
	}
}

// greeter is GreetService, served by the server.
type greeter struct {
	greetv1connect.UnimplementedGreetServiceHandler
}

func (greeter) Greet(ctx context.Context, req *greetv1.GreetRequest) (*greetv1.GreetResponse, error) {
	if req.GetName() == "" {
		return nil, connect.NewError(connect.CodeInvalidArgument, "name is empty")
	}
	// Ask the caller's agent, on the session the call came on.
	agent := greetv1connect.NewAgentServiceClient(connect.NewClient(rpc.NewTransport(rpc.Session(ctx), nil)))
	res, err := agent.Confirm(ctx, &greetv1.ConfirmRequest{Question: "may I call you " + req.GetName() + "?"})
	if err != nil {
		return nil, err
	}
	if !res.GetYes() {
		return &greetv1.GreetResponse{Greeting: "Hello!"}, nil
	}
	return &greetv1.GreetResponse{Greeting: "Hello, " + req.GetName() + "!"}, nil
}

func (greeter) GreetAll(ctx context.Context, s greetv1connect.GreetServiceGreetAllServerStream) (*greetv1.GreetResponse, error) {
	var names []string
	for {
		req, err := s.Receive()
		if errors.Is(err, io.EOF) {
			return &greetv1.GreetResponse{Greeting: "Hello, " + strings.Join(names, ", ") + "!"}, nil
		} else if err != nil {
			return nil, err
		}
		names = append(names, req.GetName())
	}
}

func (greeter) Countdown(ctx context.Context, req *greetv1.CountdownRequest, s greetv1connect.GreetServiceCountdownServerStream) error {
	for n := req.GetFrom(); n > 0; n-- {
		if err := s.Send(&greetv1.CountdownResponse{Count: n}); err != nil {
			return err
		}
	}
	return nil
}

func (greeter) Chat(ctx context.Context, s greetv1connect.GreetServiceChatServerStream) error {
	for {
		req, err := s.Receive()
		if errors.Is(err, io.EOF) {
			return nil
		} else if err != nil {
			return err
		}
		if err := s.Send(&greetv1.GreetResponse{Greeting: "Hi, " + req.GetName()}); err != nil {
			return err
		}
	}
}

// agent is AgentService, served by the client.
type agent struct {
	greetv1connect.UnimplementedAgentServiceHandler
	out io.Writer
}

func (a agent) Confirm(ctx context.Context, req *greetv1.ConfirmRequest) (*greetv1.ConfirmResponse, error) {
	fmt.Fprintf(a.out, "agent: the server asks %q: yes\n", req.GetQuestion())
	return &greetv1.ConfirmResponse{Yes: true}, nil
}

func run(out io.Writer) error {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()

	// Server: GreetService on a stream.Router, mounted as an http.Handler.
	services := connect.NewServer()
	greetv1connect.RegisterGreetServiceHandler(services, greeter{})
	routes := stream.NewRouter(nil)
	rpc.Mount(routes, services, nil)
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
		handler.Shutdown(ctx)
		srv.Shutdown(ctx)
	}()

	// Client: one session; it serves AgentService for the server to call.
	sess, err := mux.Dial(ctx, "ws://"+ln.Addr().String(), nil)
	if err != nil {
		return err
	}
	defer sess.Close()
	agentServices := connect.NewServer()
	greetv1connect.RegisterAgentServiceHandler(agentServices, agent{out: out})
	agentRoutes := stream.NewRouter(nil)
	rpc.Mount(agentRoutes, agentServices, nil)
	go agentRoutes.Serve(sess)

	client := greetv1connect.NewGreetServiceClient(connect.NewClient(rpc.NewTransport(sess, nil)))

	// Unary, with a call back from the server to the client.
	res, err := client.Greet(ctx, &greetv1.GreetRequest{Name: "Ann"})
	if err != nil {
		return err
	}
	fmt.Fprintln(out, "Greet:", res.GetGreeting())
	_, err = client.Greet(ctx, &greetv1.GreetRequest{})
	fmt.Fprintln(out, "Greet with no name:", connect.CodeOf(err), err)

	// Client streaming.
	all, err := client.GreetAll(ctx)
	if err != nil {
		return err
	}
	for _, name := range []string{"Ann", "Bob", "Cy"} {
		if err := all.Send(&greetv1.GreetRequest{Name: name}); err != nil {
			return err
		}
	}
	res, err = all.CloseAndReceive()
	if err != nil {
		return err
	}
	fmt.Fprintln(out, "GreetAll:", res.GetGreeting())

	// Server streaming.
	down, err := client.Countdown(ctx, &greetv1.CountdownRequest{From: 3})
	if err != nil {
		return err
	}
	var counts []string
	for {
		msg, err := down.Receive()
		if errors.Is(err, io.EOF) {
			break
		} else if err != nil {
			return err
		}
		counts = append(counts, fmt.Sprint(msg.GetCount()))
	}
	fmt.Fprintln(out, "Countdown:", strings.Join(counts, " "))

	// Bidi streaming: each reply arrives before the next request leaves.
	chat, err := client.Chat(ctx)
	if err != nil {
		return err
	}
	defer chat.Close()
	for _, name := range []string{"Dee", "Eve"} {
		if err := chat.Send(&greetv1.GreetRequest{Name: name}); err != nil {
			return err
		}
		msg, err := chat.Receive()
		if err != nil {
			return err
		}
		fmt.Fprintln(out, "Chat:", msg.GetGreeting())
	}
	if err := chat.CloseSend(); err != nil {
		return err
	}
	if _, err := chat.Receive(); !errors.Is(err, io.EOF) {
		return fmt.Errorf("chat did not end cleanly: %v", err)
	}
	return nil
}
