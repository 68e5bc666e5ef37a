package wsplexgrpc_test

import (
	"context"
	"fmt"
	"net/http/httptest"
	"strings"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"

	"github.com/wsplex/wsplex/mux"
	"github.com/wsplex/wsplex/reconnect"
	"github.com/wsplex/wsplex/stream"
	"github.com/wsplex/wsplex/wsplexgrpc"
)

// A gRPC server serves its services on a Router's "/grpc" streams; a
// client calls them over its session.
func Example() {
	// The server: a grpc.Server on a Listener, mounted on the Router.
	lis := wsplexgrpc.NewListener(nil)
	grpcServer := grpc.NewServer()
	healthpb.RegisterHealthServer(grpcServer, health.NewServer())
	go grpcServer.Serve(lis)
	defer grpcServer.Stop()

	routes := stream.NewRouter(nil)
	routes.Handle(wsplexgrpc.DefaultName, lis)
	handler, _ := mux.NewHandler(func(sess *mux.Session) { routes.Serve(sess) }, nil)
	srv := httptest.NewServer(handler)
	defer srv.Close()
	defer handler.Close()

	// The client: gRPC dials streams on the session.
	ctx := context.Background()
	sess, err := mux.Dial(ctx, "ws"+strings.TrimPrefix(srv.URL, "http"), nil)
	if err != nil {
		fmt.Println(err)
		return
	}
	defer sess.Close()
	cc, err := grpc.NewClient("passthrough:///wsplex",
		grpc.WithContextDialer(wsplexgrpc.Dialer(sess, nil)),
		grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		fmt.Println(err)
		return
	}
	defer cc.Close()

	resp, err := healthpb.NewHealthClient(cc).Check(ctx, &healthpb.HealthCheckRequest{})
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(resp.Status)
	// Output: SERVING
}

// With a reconnect.Client, gRPC dials on whichever session is current:
// when a session is lost, calls under way fail with codes.Unavailable, and
// gRPC redials over the next session.
func ExampleReconnectDialer() {
	lis := wsplexgrpc.NewListener(nil)
	grpcServer := grpc.NewServer()
	healthpb.RegisterHealthServer(grpcServer, health.NewServer())
	go grpcServer.Serve(lis)
	defer grpcServer.Stop()
	routes := stream.NewRouter(nil)
	routes.Handle(wsplexgrpc.DefaultName, lis)
	handler, _ := mux.NewHandler(func(sess *mux.Session) { routes.Serve(sess) }, nil)
	srv := httptest.NewServer(handler)
	defer srv.Close()
	defer handler.Close()

	client, err := reconnect.New("ws"+strings.TrimPrefix(srv.URL, "http"), nil)
	if err != nil {
		fmt.Println(err)
		return
	}
	defer client.Close()
	cc, err := grpc.NewClient("passthrough:///wsplex",
		grpc.WithContextDialer(wsplexgrpc.ReconnectDialer(client, nil)),
		grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		fmt.Println(err)
		return
	}
	defer cc.Close()

	// WaitForReady: while there is no session, wait for one rather than
	// fail at once.
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	resp, err := healthpb.NewHealthClient(cc).Check(ctx, &healthpb.HealthCheckRequest{}, grpc.WaitForReady(true))
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(resp.Status)
	// Output: SERVING
}
