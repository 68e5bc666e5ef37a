package rpc_test

import (
	"context"
	"fmt"
	"io"
	"net/http/httptest"
	"strings"

	"connectrpc.com/connect/v2"

	pingv1 "github.com/wsplex/wsplex/internal/gen/ping/v1"
	"github.com/wsplex/wsplex/internal/gen/ping/v1/pingv1connect"
	"github.com/wsplex/wsplex/mux"
	"github.com/wsplex/wsplex/rpc"
	"github.com/wsplex/wsplex/stream"
)

// greeter answers Ping; the name tells the sides apart.
type greeter struct {
	pingv1connect.UnimplementedPingServiceHandler
	name string
}

func (g greeter) Ping(ctx context.Context, req *pingv1.PingRequest) (*pingv1.PingResponse, error) {
	return &pingv1.PingResponse{Text: g.name + " got " + req.GetText()}, nil
}

// A server serves a connect-go service on its sessions' streams; a client
// calls it with the generated client through its session, and serves the
// same service to the server, which calls it back over the same session.
func Example() {
	// The server: its service, and a route that calls the client back.
	services := connect.NewServer()
	pingv1connect.RegisterPingServiceHandler(services, greeter{name: "server"})
	routes := stream.NewRouter(nil)
	rpc.Mount(routes, services, nil)
	routes.HandleFunc("/call-back", func(ctx context.Context, s *stream.Stream) error {
		client := pingv1connect.NewPingServiceClient(connect.NewClient(rpc.NewTransport(s.Session(), nil)))
		res, err := client.Ping(ctx, &pingv1.PingRequest{Text: "a call from the server"})
		if err != nil {
			return err
		}
		fmt.Println(res.GetText())
		return nil
	})
	h, err := mux.NewHandler(func(s *mux.Session) { routes.Serve(s) }, nil)
	if err != nil {
		panic(err)
	}
	srv := httptest.NewServer(h)
	defer srv.Close()
	defer h.Close()

	// The client: it serves its own PingService on its session.
	ctx := context.Background()
	sess, err := mux.Dial(ctx, "ws"+strings.TrimPrefix(srv.URL, "http"), nil)
	if err != nil {
		panic(err)
	}
	defer sess.Close()
	mine := connect.NewServer()
	pingv1connect.RegisterPingServiceHandler(mine, greeter{name: "client"})
	own := stream.NewRouter(nil)
	rpc.Mount(own, mine, nil)
	go own.Serve(sess)

	client := pingv1connect.NewPingServiceClient(connect.NewClient(rpc.NewTransport(sess, nil)))
	res, err := client.Ping(ctx, &pingv1.PingRequest{Text: "a call from the client"})
	if err != nil {
		panic(err)
	}
	fmt.Println(res.GetText())

	back, err := stream.Open(ctx, sess, "/call-back", nil)
	if err != nil {
		panic(err)
	}
	defer back.Close()
	back.CloseWrite()
	// The stream ends when the server's handler returns.
	if err := back.Receive(new(pingv1.PingResponse)); err != io.EOF {
		panic(err)
	}
	// Output:
	// server got a call from the client
	// client got a call from the server
}
