// Command topicnode is one wsplex server of the multi-process test
// (cluster_test.go): a topic.Hub on /t/{name}, where clients may subscribe
// and publish, on a wsplexnats.Broker, so that several of them behind a
// load balancer serve the same topics. It prints "topicnode: listening"
// once it serves, and stops on SIGTERM.
package main

import (
	"context"
	"flag"
	"fmt"
	"log"
	"net"
	"net/http"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/wsplex/wsplex/mux"
	"github.com/wsplex/wsplex/stream"
	"github.com/wsplex/wsplex/topic"
	"github.com/wsplex/wsplex/wsplexnats"
)

func main() {
	listen := flag.String("listen", "127.0.0.1:0", "address to serve on")
	natsURL := flag.String("nats", nats.DefaultURL, "NATS server URL")
	history := flag.Int("history", 10000, "messages kept per topic")
	flag.Parse()
	if err := run(*listen, *natsURL, *history); err != nil {
		log.Fatal(err)
	}
}

func run(listen, natsURL string, history int) error {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	nc, err := nats.Connect(natsURL, nats.MaxReconnects(-1))
	if err != nil {
		return err
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		return err
	}
	broker, err := wsplexnats.NewBroker(ctx, js, &wsplexnats.Options{HistorySize: history})
	if err != nil {
		return err
	}
	defer broker.Close()
	hub := topic.NewHub(&topic.Options{
		Broker:       broker,
		AllowPublish: func(context.Context, *stream.Stream) error { return nil },
	})
	routes := stream.NewRouter(nil)
	routes.Handle("/t/{name}", hub)
	handler, err := mux.NewHandler(func(s *mux.Session) { routes.Serve(s) }, nil)
	if err != nil {
		return err
	}
	ln, err := net.Listen("tcp", listen)
	if err != nil {
		return err
	}
	srv := &http.Server{Handler: handler, ReadHeaderTimeout: 10 * time.Second}
	go srv.Serve(ln)
	fmt.Printf("topicnode: listening on %s\n", ln.Addr())
	<-ctx.Done()
	shutdown, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	srv.Shutdown(shutdown)
	return handler.Shutdown(shutdown)
}
