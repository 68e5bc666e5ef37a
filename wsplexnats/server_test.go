package wsplexnats_test

import (
	"context"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/wsplex/wsplex/wsplexnats"
)

// runServer starts a NATS server with JetStream on loopback, storing in a
// temporary directory; it shuts down when t ends.
func runServer(t testing.TB) *server.Server {
	t.Helper()
	ns, err := server.NewServer(&server.Options{
		Host:      "127.0.0.1",
		Port:      -1,
		JetStream: true,
		StoreDir:  t.TempDir(),
		NoLog:     true,
		NoSigs:    true,
	})
	if err != nil {
		t.Fatal(err)
	}
	ns.Start()
	t.Cleanup(func() {
		ns.Shutdown()
		ns.WaitForShutdown()
	})
	if !ns.ReadyForConnections(10 * time.Second) {
		t.Fatal("nats server not ready")
	}
	return ns
}

// connect opens a connection of its own to ns; it closes when t ends.
func connect(t testing.TB, ns *server.Server) (*nats.Conn, jetstream.JetStream) {
	t.Helper()
	nc, err := nats.Connect(ns.ClientURL(), nats.NoReconnect())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	return nc, js
}

var streams atomic.Int64

// freshOptions returns Options naming a stream and subjects no other
// call used, so that tests on one server do not meet.
func freshOptions() *wsplexnats.Options {
	n := streams.Add(1)
	return &wsplexnats.Options{Stream: fmt.Sprintf("T%d", n), Subject: fmt.Sprintf("t%d.topics", n), MemoryStorage: n%2 == 0}
}

// newBroker returns a Broker on js, closed when t ends.
func newBroker(t testing.TB, js jetstream.JetStream, opts *wsplexnats.Options) *wsplexnats.Broker {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	b, err := wsplexnats.NewBroker(ctx, js, opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { b.Close() })
	return b
}
