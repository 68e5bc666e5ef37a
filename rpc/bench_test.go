package rpc_test

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

	pingv1 "github.com/wsplex/wsplex/internal/gen/ping/v1"
	"github.com/wsplex/wsplex/internal/gen/ping/v1/pingv1connect"
	"github.com/wsplex/wsplex/internal/plextest"
	"github.com/wsplex/wsplex/mux"
	"github.com/wsplex/wsplex/rpc"
	"github.com/wsplex/wsplex/stream"
)

// The benchmarks serve PingService in one process over loopback, through
// wsplex and, for comparison, through connect-go's own HTTP transport over
// HTTP/1.1 and h2c (HTTP/2 without TLS).

type benchTransport struct {
	name string
	make func(b *testing.B) pingv1connect.PingServiceClient
}

var benchTransports = []benchTransport{
	{"wsplex", wsplexClient},
	{"connecthttp-h1", func(b *testing.B) pingv1connect.PingServiceClient { return connectHTTPClient(b, false) }},
	{"connecthttp-h2c", func(b *testing.B) pingv1connect.PingServiceClient { return connectHTTPClient(b, true) }},
}

func benchServer() *connect.Server {
	server := connect.NewServer()
	pingv1connect.RegisterPingServiceHandler(server, newPingServer())
	return server
}

func wsplexClient(b *testing.B) pingv1connect.PingServiceClient {
	routes := stream.NewRouter(nil)
	rpc.Mount(routes, benchServer(), nil)
	srv := plextest.NewServer(b, func(s *mux.Session) { routes.Serve(s) }, nil)
	return pingv1connect.NewPingServiceClient(connect.NewClient(rpc.NewTransport(srv.Dial(b, nil), nil)))
}

func connectHTTPClient(b *testing.B, h2c bool) pingv1connect.PingServiceClient {
	mux := http.NewServeMux()
	connecthttp.Mount(mux, benchServer())
	protocols := new(http.Protocols)
	protocols.SetHTTP1(true)
	protocols.SetUnencryptedHTTP2(true)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	srv := &http.Server{Handler: mux, Protocols: protocols, ReadHeaderTimeout: 10 * time.Second}
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
	return pingv1connect.NewPingServiceClient(connect.NewClient(
		connecthttp.NewTransport(&http.Client{Transport: tr}, "http://"+ln.Addr().String())))
}

// BenchmarkUnary measures one small unary call at a time.
func BenchmarkUnary(b *testing.B) {
	for _, tr := range benchTransports {
		b.Run(tr.name, func(b *testing.B) {
			client := tr.make(b)
			req := &pingv1.PingRequest{Number: 42, Text: "ping"}
			ctx := context.Background()
			b.ReportAllocs()
			for b.Loop() {
				if _, err := client.Ping(ctx, req); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkBidi measures a round trip of small messages on an open bidi
// call.
func BenchmarkBidi(b *testing.B) {
	for _, tr := range benchTransports {
		if tr.name == "connecthttp-h1" {
			continue // HTTP/1.1 cannot carry bidi calls
		}
		b.Run(tr.name, func(b *testing.B) {
			client := tr.make(b)
			cum, err := client.CumSum(context.Background())
			if err != nil {
				b.Fatal(err)
			}
			defer cum.Close()
			req := &pingv1.CumSumRequest{Number: 1}
			b.ReportAllocs()
			for b.Loop() {
				if err := cum.Send(req); err != nil {
					b.Fatal(err)
				}
				if _, err := cum.Receive(); err != nil {
					b.Fatal(err)
				}
			}
			cum.CloseSend()
			if _, err := cum.Receive(); !errors.Is(err, io.EOF) {
				b.Fatal(err)
			}
		})
	}
}

// BenchmarkServerStream measures a server stream of 1 KiB messages; an op
// is one message.
func BenchmarkServerStream(b *testing.B) {
	for _, tr := range benchTransports {
		b.Run(tr.name, func(b *testing.B) {
			client := tr.make(b)
			b.ReportAllocs()
			b.SetBytes(1 << 10)
			b.ResetTimer()
			up, err := client.CountUp(context.Background(), &pingv1.CountUpRequest{Number: int64(b.N), PayloadSize: 1 << 10})
			if err != nil {
				b.Fatal(err)
			}
			n := 0
			for {
				_, err := up.Receive()
				if errors.Is(err, io.EOF) {
					break
				} else if err != nil {
					b.Fatal(err)
				}
				n++
			}
			if n != b.N {
				b.Fatalf("%d messages, want %d", n, b.N)
			}
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "msgs/s")
		})
	}
}
