// Command wsplexserver is the conformance suite's server under test: the
// ConformanceService, written with connect-go v2 and served by rpc.Mount on
// a wsplex session, reached over HTTP through a bridge.
//
//	reference client ─HTTP─▶ bridge (connecthttp.Mount of gateway.Forward)
//	  ─wsplex session (loopback WebSocket)─▶ stream.Router, rpc.Mount ─▶ service
//
// It reads a ServerCompatRequest on stdin, starts serving, writes a
// ServerCompatResponse on stdout, and serves until it gets SIGTERM (docs/testing_servers.md of connectrpc.com/conformance).
package main

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"connectrpc.com/connect/v2"
	"connectrpc.com/connect/v2/connecthttp"

	"github.com/wsplex/wsplex/conformance/internal/compat"
	conformancev1 "github.com/wsplex/wsplex/conformance/internal/gen/conformancev1"
	"github.com/wsplex/wsplex/conformance/internal/gen/conformancev1/conformancev1connect"
	"github.com/wsplex/wsplex/conformance/internal/service"
	"github.com/wsplex/wsplex/conformance/internal/tunnel"
	"github.com/wsplex/wsplex/gateway"
	"github.com/wsplex/wsplex/rpc"
	"github.com/wsplex/wsplex/stream"
)

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "wsplexserver:", err)
		os.Exit(1)
	}
}

func run() error {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, os.Interrupt)
	defer stop()
	var req conformancev1.ServerCompatRequest
	if err := compat.Read(os.Stdin, &req); err != nil {
		return fmt.Errorf("read request: %w", err)
	}

	// The service, on the far side of a wsplex session.
	server := connect.NewServer()
	conformancev1connect.RegisterConformanceServiceHandler(server, service.Service{})
	routes := stream.NewRouter(nil)
	rpc.Mount(routes, server, nil)
	tun, err := tunnel.Start(ctx, routes)
	if err != nil {
		return err
	}
	defer tun.Close()

	// The bridge: each HTTP call is forwarded as a wsplex call, in its
	// codec, messages as bytes.
	transports := make(map[string]connect.Transport)
	for _, c := range gateway.Codecs() {
		transports[c.Name()] = rpc.NewTransport(tun.Session, &rpc.Options{Codecs: []connect.Codec{c}})
	}
	forward := gateway.Forward(func(_ context.Context, call *connect.CallInfo) (connect.Transport, error) {
		if t := transports[call.Codec]; t != nil {
			return t, nil
		}
		return nil, connect.Errorf(connect.CodeUnimplemented, "codec %q not supported", call.Codec)
	})
	bridge := connect.NewServer()
	for spec := range server.Specs() {
		bridge.Register(connect.Method{Spec: spec, Handler: forward})
	}
	// A message receive limit is the bridge's: a wsplex Router's limit
	// bounds what it sends as well (SPEC.md §7), and the service's
	// responses echo its requests.
	routesHTTP := http.NewServeMux()
	options := []connecthttp.Option{connecthttp.WithCodecs(gateway.Codecs()...)}
	if limit := req.GetMessageReceiveLimit(); limit > 0 {
		options = append(options, connecthttp.WithReadMaxBytes(int(limit)))
	}
	connecthttp.Mount(routesHTTP, bridge, options...)

	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	protocols := new(http.Protocols)
	protocols.SetHTTP1(true)
	srv := &http.Server{Handler: halfDuplexHTTP1(routesHTTP), Protocols: protocols, ReadHeaderTimeout: 10 * time.Second}
	res := &conformancev1.ServerCompatResponse{Host: "127.0.0.1", Port: uint32(lis.Addr().(*net.TCPAddr).Port)}
	if req.GetUseTls() {
		protocols.SetHTTP2(true)
		cfg, err := serverTLS(&req)
		if err != nil {
			return err
		}
		srv.TLSConfig = cfg
		lis = tls.NewListener(lis, cfg)
		res.PemCert = req.GetServerCreds().GetCert()
	} else {
		protocols.SetUnencryptedHTTP2(true)
	}
	served := make(chan error, 1)
	go func() { served <- srv.Serve(lis) }()
	if err := compat.NewWriter(os.Stdout).Write(res); err != nil {
		return fmt.Errorf("write response: %w", err)
	}

	// Serve until a signal comes.
	select {
	case <-ctx.Done():
	case err := <-served:
		return err
	}
	srv.Close()
	if err := <-served; !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}

// halfDuplexHTTP1 passes a BidiStream call over HTTP/1.1 off as HTTP/2 to
// h, as the suite's reference server does: connect-go answers bidi calls
// over HTTP/1.1 with 505, and the suite's cases of them are half duplex,
// which HTTP/1.1 carries.
func halfDuplexHTTP1(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.ProtoMajor == 1 && strings.HasSuffix(r.URL.Path, conformancev1connect.ConformanceServiceBidiStreamProcedure) {
			r.ProtoMajor, r.ProtoMinor = 2, 0
		}
		h.ServeHTTP(w, r)
	})
}

// serverTLS is the TLS configuration the request asks for: its server
// certificate, and client certificates required if it names one.
func serverTLS(req *conformancev1.ServerCompatRequest) (*tls.Config, error) {
	cert, err := tls.X509KeyPair(req.GetServerCreds().GetCert(), req.GetServerCreds().GetKey())
	if err != nil {
		return nil, fmt.Errorf("server certificate: %w", err)
	}
	cfg := &tls.Config{Certificates: []tls.Certificate{cert}, NextProtos: []string{"h2", "http/1.1"}, MinVersion: tls.VersionTLS12}
	if pem := req.GetClientTlsCert(); len(pem) > 0 {
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, errors.New("client certificate: no certificate in PEM")
		}
		cfg.ClientCAs = pool
		cfg.ClientAuth = tls.RequireAndVerifyClientCert
	}
	return cfg, nil
}
