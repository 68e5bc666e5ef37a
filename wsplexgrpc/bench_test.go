package wsplexgrpc_test

// grpc-go over bare TCP against grpc-go through wsplex (a loopback
// WebSocket session, one stream per gRPC connection), side by side in one
// run; benchstat puts the two transports in columns, with the ratio:
//
//	go test -run '^$' -bench . -count 6 ./wsplexgrpc | tee new.txt && benchstat -col /transport new.txt

import (
	"context"
	"net"
	"testing"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/wsplex/wsplex/wsplexgrpc/internal/testpb"
)

var transports = []struct {
	name  string
	setup func(b *testing.B) testpb.TestServiceClient
}{
	{"transport=tcp", tcpClient},
	{"transport=wsplex", func(b *testing.B) testpb.TestServiceClient { return setup(b, &service{}) }},
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

// BenchmarkUnary times one small unary call, on a connection made before.
func BenchmarkUnary(b *testing.B) {
	for _, tr := range transports {
		b.Run(tr.name, func(b *testing.B) {
			client := tr.setup(b)
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
// bidirectional stream.
func BenchmarkBidi(b *testing.B) {
	for _, tr := range transports {
		b.Run(tr.name, func(b *testing.B) {
			client := tr.setup(b)
			s, err := client.Bidi(context.Background())
			if err != nil {
				b.Fatal(err)
			}
			defer s.CloseSend()
			req := &testpb.Message{Text: "ping"}
			b.ReportAllocs()
			for b.Loop() {
				if err := s.Send(req); err != nil {
					b.Fatal(err)
				}
				if _, err := s.Recv(); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkServerStream times receiving one 1 KiB message of a server
// stream of b.N; it reports messages per second.
func BenchmarkServerStream(b *testing.B) {
	for _, tr := range transports {
		b.Run(tr.name, func(b *testing.B) {
			client := tr.setup(b)
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
				if _, err := s.Recv(); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "msgs/s")
		})
	}
}
