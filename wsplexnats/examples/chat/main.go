// Command chat is one server of examples/chat's cluster: the chat of
// package chatserver, with its rooms on NATS JetStream (wsplexnats), so
// that any number of these behind a load balancer serve the same rooms,
// and a page whose server dies reconnects to another and resumes its rooms
// where it was.
//
//	bash wsplexnats/examples/chat/cluster.sh
//
// runs a NATS server, three of these and nginx in front of them, round
// robin, from the repository's root; open http://127.0.0.1:8080/ in two
// tabs, then stop a server to watch its pages move. One alone:
//
//	go run ./wsplexnats/examples/chat -listen 127.0.0.1:8081 -nats nats://127.0.0.1:4222
package main

import (
	"context"
	"flag"
	"fmt"
	"log"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/wsplex/wsplex/examples/chat/chatserver"
	"github.com/wsplex/wsplex/wsplexnats"
)

func main() {
	listen := flag.String("listen", "127.0.0.1:8081", "address to serve the page and the chat on")
	natsURL := flag.String("nats", nats.DefaultURL, "NATS server URL (JetStream enabled)")
	flag.Parse()
	if err := run(*listen, *natsURL); err != nil {
		log.Fatal(err)
	}
}

func run(listen, natsURL string) error {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	logger := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	nc, err := nats.Connect(natsURL, nats.MaxReconnects(-1))
	if err != nil {
		return err
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		return err
	}
	broker, err := wsplexnats.NewBroker(ctx, js, &wsplexnats.Options{Logger: logger})
	if err != nil {
		return err
	}
	defer broker.Close()
	h, chat, err := chatserver.NewWeb(&chatserver.Options{Broker: broker, Logger: logger})
	if err != nil {
		return err
	}
	ln, err := net.Listen("tcp", listen)
	if err != nil {
		return err
	}
	srv := &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second}
	go srv.Serve(ln)
	fmt.Printf("chat: serving on http://%s/, rooms on %s\n", ln.Addr(), natsURL)
	<-ctx.Done()
	shutdown, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	srv.Shutdown(shutdown)
	return chat.Shutdown(shutdown)
}
