package wsplexnats_test

import (
	"context"
	"fmt"
	"net/http/httptest"
	"os"
	"strings"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"google.golang.org/protobuf/types/known/wrapperspb"

	"github.com/wsplex/wsplex/mux"
	"github.com/wsplex/wsplex/stream"
	"github.com/wsplex/wsplex/topic"
	"github.com/wsplex/wsplex/wsplexnats"
)

// A wsplex server whose topics live in NATS JetStream: a client that
// comes back after a message resumes from the position it had.
func Example() {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()

	// A NATS server with JetStream, here in process.
	dir, err := os.MkdirTemp("", "wsplexnats-example")
	if err != nil {
		panic(err)
	}
	defer os.RemoveAll(dir)
	ns, err := server.NewServer(&server.Options{Host: "127.0.0.1", Port: -1, JetStream: true, StoreDir: dir, NoLog: true, NoSigs: true})
	if err != nil {
		panic(err)
	}
	ns.Start()
	defer ns.WaitForShutdown()
	defer ns.Shutdown()
	if !ns.ReadyForConnections(10 * time.Second) {
		panic("nats server not ready")
	}

	// The wsplex server: a Hub on a Broker on its own NATS connection.
	nc, err := nats.Connect(ns.ClientURL())
	if err != nil {
		panic(err)
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		panic(err)
	}
	broker, err := wsplexnats.NewBroker(ctx, js, nil)
	if err != nil {
		panic(err)
	}
	defer broker.Close()
	hub := topic.NewHub(&topic.Options{Broker: broker})
	routes := stream.NewRouter(nil)
	routes.Handle("/chat/{room}", hub)
	h, err := mux.NewHandler(func(s *mux.Session) { routes.Serve(s) }, nil)
	if err != nil {
		panic(err)
	}
	srv := httptest.NewServer(h)
	defer srv.Close()
	defer h.Close()

	// The client saw "hello" before it went; "how are you?" came since.
	seen, err := hub.Publish(ctx, "/chat/42", wrapperspb.String("hello"))
	if err != nil {
		panic(err)
	}
	if _, err := hub.Publish(ctx, "/chat/42", wrapperspb.String("how are you?")); err != nil {
		panic(err)
	}

	sess, err := mux.Dial(ctx, "ws"+strings.TrimPrefix(srv.URL, "http"), nil)
	if err != nil {
		panic(err)
	}
	defer sess.Close()
	for ev, err := range topic.Subscribe(ctx, topic.OneSession(sess), "/chat/42", &topic.SubscribeOptions{Since: &seen}) {
		if err != nil {
			panic(err)
		}
		var text wrapperspb.StringValue
		if err := ev.Unmarshal(&text); err != nil {
			panic(err)
		}
		fmt.Printf("message %d, after %d: %s\n", ev.Position.Offset, ev.Prev, text.GetValue())
		break
	}
	// Output: message 2, after 1: how are you?
}
