package wsplexgrpc_test

import (
	"context"
	"fmt"
	"io"
	"net"
	"testing"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/wsplex/wsplex/internal/plextest"
	"github.com/wsplex/wsplex/mux"
	"github.com/wsplex/wsplex/stream"
	"github.com/wsplex/wsplex/wsplexgrpc"
	"github.com/wsplex/wsplex/wsplexgrpc/internal/testpb"
)

// service implements testpb.TestService. By default Unary and Bidi echo,
// ServerStream sends Count copies of its request, and ClientStream
// answers with the count and the concatenated texts; a test may replace
// Unary and Bidi.
type service struct {
	testpb.UnimplementedTestServiceServer
	unary func(ctx context.Context, m *testpb.Message) (*testpb.Message, error)
	bidi  func(s grpc.BidiStreamingServer[testpb.Message, testpb.Message]) error
}

func (svc *service) Unary(ctx context.Context, m *testpb.Message) (*testpb.Message, error) {
	if svc.unary != nil {
		return svc.unary(ctx, m)
	}
	return m, nil
}

func (svc *service) ServerStream(m *testpb.Message, s grpc.ServerStreamingServer[testpb.Message]) error {
	for i := range m.Count {
		if err := s.Send(&testpb.Message{Text: fmt.Sprintf("%s %d", m.Text, i), Payload: m.Payload}); err != nil {
			return err
		}
	}
	return nil
}

func (svc *service) ClientStream(s grpc.ClientStreamingServer[testpb.Message, testpb.Message]) error {
	var sum testpb.Message
	for {
		m, err := s.Recv()
		if err == io.EOF {
			return s.SendAndClose(&sum)
		}
		if err != nil {
			return err
		}
		sum.Count++
		sum.Text += m.Text
	}
}

func (svc *service) Bidi(s grpc.BidiStreamingServer[testpb.Message, testpb.Message]) error {
	if svc.bidi != nil {
		return svc.bidi(s)
	}
	for {
		m, err := s.Recv()
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return err
		}
		if err := s.Send(m); err != nil {
			return err
		}
	}
}

// serveGRPC starts a grpc.Server serving svc on a new Listener, and
// returns the Listener. The server stops when the test ends.
func serveGRPC(t testing.TB, svc testpb.TestServiceServer) *wsplexgrpc.Listener {
	t.Helper()
	lis := wsplexgrpc.NewListener(nil)
	gs := grpc.NewServer()
	testpb.RegisterTestServiceServer(gs, svc)
	served := make(chan error, 1)
	go func() { served <- gs.Serve(lis) }()
	t.Cleanup(func() {
		gs.Stop()
		if err := <-served; err != nil {
			t.Errorf("Serve: %v", err)
		}
	})
	return lis
}

// server is a wsplex server on loopback whose Router routes DefaultName to
// a grpc.Server serving svc.
type server struct {
	*plextest.Server
	sessions <-chan *mux.Session // each session, as it starts
}

func newServer(t testing.TB, svc testpb.TestServiceServer, opts *mux.HandlerOptions) *server {
	t.Helper()
	routes := stream.NewRouter(nil)
	routes.Handle(wsplexgrpc.DefaultName, serveGRPC(t, svc))
	sessions := make(chan *mux.Session, 16)
	srv := plextest.NewServer(t, func(sess *mux.Session) {
		sessions <- sess
		routes.Serve(sess)
	}, opts)
	return &server{Server: srv, sessions: sessions}
}

// dial returns a gRPC client whose connections are streams on sess. It is
// closed when the test ends.
func dial(t testing.TB, d func(context.Context, string) (net.Conn, error)) testpb.TestServiceClient {
	t.Helper()
	cc := newClientConn(t, d)
	return testpb.NewTestServiceClient(cc)
}

func newClientConn(t testing.TB, d func(context.Context, string) (net.Conn, error)) *grpc.ClientConn {
	t.Helper()
	cc, err := grpc.NewClient("passthrough:///wsplex",
		grpc.WithContextDialer(d),
		grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatalf("grpc.NewClient: %v", err)
	}
	t.Cleanup(func() { cc.Close() })
	return cc
}

// setup serves svc and returns a client of it over one session.
func setup(t testing.TB, svc testpb.TestServiceServer) testpb.TestServiceClient {
	t.Helper()
	srv := newServer(t, svc, nil)
	return dial(t, wsplexgrpc.Dialer(srv.Dial(t, nil), nil))
}
