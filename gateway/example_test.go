package gateway_test

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"

	"connectrpc.com/connect/v2"
	"connectrpc.com/connect/v2/connecthttp"

	"github.com/wsplex/wsplex/gateway"
	pingv1 "github.com/wsplex/wsplex/internal/gen/ping/v1"
	"github.com/wsplex/wsplex/internal/gen/ping/v1/pingv1connect"
	"github.com/wsplex/wsplex/mux"
	"github.com/wsplex/wsplex/rpc"
	"github.com/wsplex/wsplex/stream"
)

// echoPing is an existing service, served over HTTP by connect-go.
type echoPing struct {
	pingv1connect.UnimplementedPingServiceHandler
}

func (echoPing) Ping(ctx context.Context, req *pingv1.PingRequest) (*pingv1.PingResponse, error) {
	info, _ := connect.CallInfoForServerContext(ctx)
	return &pingv1.PingResponse{Text: req.GetText() + " via " + info.Protocol}, nil
}

// A wsplex server forwards every call to a gRPC service that it serves in
// process; a client calls it through its session.
func Example() {
	// The existing service: an http.Handler.
	server := connect.NewServer()
	pingv1connect.RegisterPingServiceHandler(server, echoPing{})
	backend := http.NewServeMux()
	connecthttp.Mount(backend, server)
	local := gateway.NewLocal(backend)
	defer local.Close()

	// The wsplex server forwards every call to it, with gRPC.
	routes := stream.NewRouter(nil)
	routes.Handle("/", gateway.NewHandler(gateway.To(local.Transport(connecthttp.WithGRPC())), nil))
	h, err := mux.NewHandler(func(s *mux.Session) { routes.Serve(s) }, nil)
	if err != nil {
		panic(err)
	}
	srv := httptest.NewServer(h)
	defer srv.Close()
	defer h.Close()

	// A client calls through its session with a generated client.
	sess, err := mux.Dial(context.Background(), "ws"+srv.URL[len("http"):], nil)
	if err != nil {
		panic(err)
	}
	defer sess.Close()
	client := pingv1connect.NewPingServiceClient(connect.NewClient(rpc.NewTransport(sess, nil)))
	res, err := client.Ping(context.Background(), &pingv1.PingRequest{Text: "hello"})
	if err != nil {
		panic(err)
	}
	fmt.Println(res.GetText())
	// Output: hello via grpc
}
