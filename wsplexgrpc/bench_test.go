package wsplexgrpc_test

// Every RPC stack a wsplex user might pick, side by side in one run, each
// serving TestService in this process over loopback:
//
//	stack=grpc-tcp        grpc-go over bare TCP
//	stack=grpc-wsplex     grpc-go through wsplex (one stream per gRPC connection)
//	stack=connect-h1      connect-go over connecthttp, HTTP/1.1
//	stack=connect-h2c     connect-go over connecthttp, HTTP/2 without TLS
//	stack=connect-wsplex  connect-go over package rpc (one stream per call)
//
// benchstat puts the stacks in columns:
//
//	go test -run '^$' -bench . -count 6 -benchmem ./wsplexgrpc | tee stacks.txt && benchstat -col /stack stacks.txt

import (
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"testing"
	"time"

	"connectrpc.com/connect/v2"
	"connectrpc.com/connect/v2/connecthttp"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/wsplex/wsplex/internal/plextest"
	"github.com/wsplex/wsplex/mux"
	"github.com/wsplex/wsplex/rpc"
	"github.com/wsplex/wsplex/stream"
	"github.com/wsplex/wsplex/wsplexgrpc/internal/testpb"
	"github.com/wsplex/wsplex/wsplexgrpc/internal/testpb/testpbconnect"
)

// benchClient is what the benchmarks call: the call shapes they time, as
// both grpc-go's and connect-go's generated clients offer them.
type benchClient interface {
	Unary(ctx context.Context, m *testpb.Message) (*testpb.Message, error)
	Bidi(ctx context.Context) (benchBidi, error)
	ServerStream(ctx context.Context, m *testpb.Message) (benchReceiver, error)
}

// benchBidi is an open bidirectional call.
type benchBidi interface {
	Send(m *testpb.Message) error
	benchReceiver
	CloseSend() error
}

// benchReceiver is the receiving side of a call; Receive returns io.EOF
// after the last message.
type benchReceiver interface {
	Receive() (*testpb.Message, error)
}

var stacks = []struct {
	name  string
	setup func(b *testing.B) benchClient
	bidi  bool // whether it carries bidirectional calls
}{
	{"stack=grpc-tcp", func(b *testing.B) benchClient { return grpcClient{tcpClient(b)} }, true},
	{"stack=grpc-wsplex", func(b *testing.B) benchClient { return grpcClient{setup(b, &service{})} }, true},
	// connecthttp refuses bidi calls over HTTP/1.1.
	{"stack=connect-h1", func(b *testing.B) benchClient { return connectHTTPClient(b, false) }, false},
	{"stack=connect-h2c", func(b *testing.B) benchClient { return connectHTTPClient(b, true) }, true},
	{"stack=connect-wsplex", connectWsplexClient, true},
}

// tcpClient serves the test service on loopback TCP and returns a client
// of it.
func tcpClient(b *testing.B) testpb.TestServiceClient {
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	gs := grpc.NewServer()
	testpb.RegisterTestServiceServer(gs, &service{})
	go gs.Serve(lis)
	b.Cleanup(gs.Stop)
	cc, err := grpc.NewClient("passthrough:///"+lis.Addr().String(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { cc.Close() })
	return testpb.NewTestServiceClient(cc)
}

// connectServer returns a connect.Server serving connectService.
func connectServer() *connect.Server {
	server := connect.NewServer()
	testpbconnect.RegisterTestServiceHandler(server, connectService{})
	return server
}

// connectHTTPClient serves the test service with connecthttp on loopback
// TCP and returns a client of it that speaks HTTP/1.1, or h2c if h2c is
// set.
func connectHTTPClient(b *testing.B, h2c bool) benchClient {
	routes := http.NewServeMux()
	connecthttp.Mount(routes, connectServer())
	protocols := new(http.Protocols)
	protocols.SetHTTP1(true)
	protocols.SetUnencryptedHTTP2(true)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	srv := &http.Server{Handler: routes, Protocols: protocols, ReadHeaderTimeout: 10 * time.Second}
	go srv.Serve(ln)
	tr := &http.Transport{Protocols: new(http.Protocols), MaxIdleConnsPerHost: 64}
	if h2c {
		tr.Protocols.SetUnencryptedHTTP2(true)
	} else {
		tr.Protocols.SetHTTP1(true)
	}
	b.Cleanup(func() {
		tr.CloseIdleConnections()
		srv.Close()
	})
	return connectClient{testpbconnect.NewTestServiceClient(connect.NewClient(
		connecthttp.NewTransport(&http.Client{Transport: tr}, "http://"+ln.Addr().String())))}
}

// connectWsplexClient serves the test service with rpc.Mount on a wsplex
// server on loopback and returns a client of it over one session.
func connectWsplexClient(b *testing.B) benchClient {
	routes := stream.NewRouter(nil)
	rpc.Mount(routes, connectServer(), nil)
	srv := plextest.NewServer(b, func(sess *mux.Session) { routes.Serve(sess) }, nil)
	return connectClient{testpbconnect.NewTestServiceClient(connect.NewClient(rpc.NewTransport(srv.Dial(b, nil), nil)))}
}

// grpcClient adapts grpc-go's client to benchClient.
type grpcClient struct{ c testpb.TestServiceClient }

func (c grpcClient) Unary(ctx context.Context, m *testpb.Message) (*testpb.Message, error) {
	return c.c.Unary(ctx, m)
}

func (c grpcClient) Bidi(ctx context.Context) (benchBidi, error) {
	s, err := c.c.Bidi(ctx)
	if err != nil {
		return nil, err
	}
	return grpcBidi{s}, nil
}

func (c grpcClient) ServerStream(ctx context.Context, m *testpb.Message) (benchReceiver, error) {
	s, err := c.c.ServerStream(ctx, m)
	if err != nil {
		return nil, err
	}
	return grpcReceiver{s}, nil
}

type grpcBidi struct {
	grpc.BidiStreamingClient[testpb.Message, testpb.Message]
}

func (s grpcBidi) Receive() (*testpb.Message, error) { return s.Recv() }

type grpcReceiver struct {
	grpc.ServerStreamingClient[testpb.Message]
}

func (r grpcReceiver) Receive() (*testpb.Message, error) { return r.Recv() }

// connectClient adapts connect-go's client to benchClient.
type connectClient struct {
	c testpbconnect.TestServiceClient
}

func (c connectClient) Unary(ctx context.Context, m *testpb.Message) (*testpb.Message, error) {
	return c.c.Unary(ctx, m)
}

func (c connectClient) Bidi(ctx context.Context) (benchBidi, error) {
	return c.c.Bidi(ctx)
}

func (c connectClient) ServerStream(ctx context.Context, m *testpb.Message) (benchReceiver, error) {
	return c.c.ServerStream(ctx, m)
}

// BenchmarkUnary times one small unary call, on a connection or session
// made before.
func BenchmarkUnary(b *testing.B) {
	for _, st := range stacks {
		b.Run(st.name, func(b *testing.B) {
			client := st.setup(b)
			ctx := context.Background()
			req := &testpb.Message{Text: "ping"}
			if _, err := client.Unary(ctx, req); err != nil { // connect
				b.Fatal(err)
			}
			b.ReportAllocs()
			for b.Loop() {
				if _, err := client.Unary(ctx, req); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkBidi times one round trip of a small message on an open
// bidirectional call.
func BenchmarkBidi(b *testing.B) {
	for _, st := range stacks {
		if !st.bidi {
			continue
		}
		b.Run(st.name, func(b *testing.B) {
			client := st.setup(b)
			s, err := client.Bidi(context.Background())
			if err != nil {
				b.Fatal(err)
			}
			req := &testpb.Message{Text: "ping"}
			roundTrip := func() {
				if err := s.Send(req); err != nil {
					b.Fatal(err)
				}
				if _, err := s.Receive(); err != nil {
					b.Fatal(err)
				}
			}
			roundTrip() // open the call
			b.ReportAllocs()
			for b.Loop() {
				roundTrip()
			}
			if err := s.CloseSend(); err != nil {
				b.Fatal(err)
			}
			if _, err := s.Receive(); !errors.Is(err, io.EOF) {
				b.Fatalf("Receive after CloseSend: %v, want io.EOF", err)
			}
		})
	}
}

// BenchmarkServerStream times receiving one 1 KiB message of a server
// stream of b.N; it reports messages per second.
func BenchmarkServerStream(b *testing.B) {
	for _, st := range stacks {
		b.Run(st.name, func(b *testing.B) {
			client := st.setup(b)
			ctx := context.Background()
			if _, err := client.Unary(ctx, &testpb.Message{}); err != nil { // connect
				b.Fatal(err)
			}
			b.SetBytes(1 << 10)
			b.ReportAllocs()
			b.ResetTimer()
			s, err := client.ServerStream(ctx, &testpb.Message{Count: int64(b.N), Payload: make([]byte, 1<<10)})
			if err != nil {
				b.Fatal(err)
			}
			for range b.N {
				if _, err := s.Receive(); err != nil {
					b.Fatal(err)
				}
			}
			b.StopTimer()
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "msgs/s")
			if _, err := s.Receive(); !errors.Is(err, io.EOF) {
				b.Fatalf("Receive after %d messages: %v, want io.EOF", b.N, err)
			}
		})
	}
}
