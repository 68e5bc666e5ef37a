// Command wsplexgateway is the Go side of the Node client under test
// (js/conformance/client.ts): a wsplex server on loopback whose routes
// mount gateway.NewHandler, which forwards each call with connecthttp to
// the reference server the call's upstream.Header names.
//
//	createWsplexTransport ─wsplex─▶ gateway ─HTTP─▶ reference server
//
// It prints its WebSocket URL on a line of its own on stdout, then serves
// until its standard input closes (the Node client that started it ended)
// or it gets SIGTERM.
package main

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/wsplex/wsplex/conformance/internal/upstream"
	"github.com/wsplex/wsplex/gateway"
	"github.com/wsplex/wsplex/mux"
	"github.com/wsplex/wsplex/stream"
)

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "wsplexgateway:", err)
		os.Exit(1)
	}
}

func run() error {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, os.Interrupt)
	defer stop()

	ups := upstream.NewSet()
	defer ups.Close()
	routes := stream.NewRouter(nil)
	routes.Handle("/", gateway.NewHandler(ups.Route, nil))
	h, err := mux.NewHandler(func(s *mux.Session) { routes.Serve(s) }, nil)
	if err != nil {
		return err
	}
	defer h.Close()
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	srv := &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second}
	served := make(chan error, 1)
	go func() { served <- srv.Serve(lis) }()
	defer srv.Close()

	fmt.Printf("ws://%s/\n", lis.Addr())
	stdin := make(chan struct{})
	go func() {
		io.Copy(io.Discard, os.Stdin)
		close(stdin)
	}()
	select {
	case <-ctx.Done():
	case <-stdin:
	case err := <-served:
		return err
	}
	return nil
}
