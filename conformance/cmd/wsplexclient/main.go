// Command wsplexclient is the conformance suite's client under test: it
// makes each test case's calls with connect-go v2 generated clients over
// rpc.NewTransport, through a wsplex session to a gateway, which forwards
// them to the reference server of that test case.
//
//	generated client ─rpc transport─▶ wsplex session (loopback WebSocket)
//	  ─▶ stream.Router, gateway.NewHandler ─HTTP─▶ reference server
//
// The gateway chooses each call's upstream (address, protocol, HTTP
// version, TLS, compression) from a request header that the client sets
// and the gateway's Route drops. It reads ClientCompatRequests on stdin and
// writes a ClientCompatResponse on stdout for each
// (docs/testing_clients.md of connectrpc.com/conformance).
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"sync"
	"syscall"

	"connectrpc.com/connect/v2"

	"github.com/wsplex/wsplex/conformance/internal/compat"
	conformancev1 "github.com/wsplex/wsplex/conformance/internal/gen/conformancev1"
	"github.com/wsplex/wsplex/conformance/internal/tunnel"
	"github.com/wsplex/wsplex/conformance/internal/upstream"
	"github.com/wsplex/wsplex/gateway"
	"github.com/wsplex/wsplex/stream"
)

// parallel is how many test cases run at once.
const parallel = 32

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "wsplexclient:", err)
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
	tun, err := tunnel.Start(ctx, routes)
	if err != nil {
		return err
	}
	defer tun.Close()

	out := compat.NewWriter(os.Stdout)
	var wg sync.WaitGroup
	defer wg.Wait()
	slots := make(chan struct{}, parallel)
	for {
		req := new(conformancev1.ClientCompatRequest)
		if err := compat.Read(os.Stdin, req); errors.Is(err, io.EOF) {
			return nil
		} else if err != nil {
			return fmt.Errorf("read request: %w", err)
		}
		select {
		case slots <- struct{}{}:
		case <-ctx.Done():
			return ctx.Err()
		}
		wg.Go(func() {
			defer func() { <-slots }()
			res := &conformancev1.ClientCompatResponse{TestName: req.GetTestName()}
			result, err := invoke(ctx, tun, req)
			if err != nil {
				res.Result = &conformancev1.ClientCompatResponse_Error{Error: &conformancev1.ClientErrorResult{Message: err.Error()}}
			} else {
				res.Result = &conformancev1.ClientCompatResponse_Response{Response: result}
			}
			if err := out.Write(res); err != nil {
				fmt.Fprintln(os.Stderr, "wsplexclient: write result:", err)
			}
		})
	}
}

// errorOf describes a call's error for the runner.
func errorOf(err error) *conformancev1.Error {
	ce, ok := errors.AsType[*connect.Error](err)
	if !ok {
		msg := err.Error()
		return &conformancev1.Error{Code: conformancev1.Code_CODE_UNKNOWN, Message: &msg}
	}
	msg := ce.Message()
	e := &conformancev1.Error{Code: conformancev1.Code(ce.Code()), Message: &msg}
	for _, d := range ce.Details() {
		e.Details = append(e.Details, anyOf(d))
	}
	return e
}
