package main

import (
	"context"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"

	"connectrpc.com/connect/v2"
	"connectrpc.com/connect/v2/connecthttp"

	conformancev1 "github.com/wsplex/wsplex/conformance/internal/gen/conformancev1"
	"github.com/wsplex/wsplex/conformance/internal/gen/conformancev1/conformancev1connect"
	"github.com/wsplex/wsplex/gateway"
)

// upstreams are the reference servers the gateway forwards to, one
// gateway.Transport per distinct way of reaching one, named by a key that
// calls carry in headerUpstream.
type upstreams struct {
	mu   sync.Mutex
	byID map[string]*upstream
}

type upstream struct {
	transport *gateway.Transport
	http      *http.Transport
}

func newUpstreams() *upstreams { return &upstreams{byID: make(map[string]*upstream)} }

// register makes sure the upstream req asks for exists and returns its key.
func (u *upstreams) register(req *conformancev1.ClientCompatRequest) (string, error) {
	h := sha256.New()
	fmt.Fprintf(h, "%d %d %d %s %d %d\n", req.GetProtocol(), req.GetHttpVersion(), req.GetCompression(),
		req.GetHost(), req.GetPort(), len(req.GetServerTlsCert()))
	h.Write(req.GetServerTlsCert())
	h.Write(req.GetClientTlsCreds().GetCert())
	h.Write(req.GetClientTlsCreds().GetKey())
	id := fmt.Sprintf("%x", h.Sum(nil)[:12])
	u.mu.Lock()
	defer u.mu.Unlock()
	if u.byID[id] != nil {
		return id, nil
	}
	up, err := newUpstream(req)
	if err != nil {
		return "", err
	}
	u.byID[id] = up
	return id, nil
}

// route is the gateway's Route: the upstream the call's header names.
func (u *upstreams) route(_ context.Context, call *connect.CallInfo) (connect.Transport, error) {
	id := call.RequestHeader().Get(headerUpstream)
	call.RequestHeader().Delete(headerUpstream)
	u.mu.Lock()
	up := u.byID[id]
	u.mu.Unlock()
	if up == nil {
		return nil, connect.Errorf(connect.CodeInvalidArgument, "no upstream %q", id)
	}
	return up.transport, nil
}

func (u *upstreams) close() {
	u.mu.Lock()
	defer u.mu.Unlock()
	for _, up := range u.byID {
		up.http.CloseIdleConnections()
	}
}

// newUpstream builds the transport to the reference server req names:
// its address, HTTP version, TLS (h2c for HTTP/2 without it), protocol
// and compression.
func newUpstream(req *conformancev1.ClientCompatRequest) (*upstream, error) {
	tr := &http.Transport{Protocols: new(http.Protocols), ForceAttemptHTTP2: true}
	scheme := "http"
	if pem := req.GetServerTlsCert(); len(pem) > 0 {
		scheme = "https"
		roots := x509.NewCertPool()
		if !roots.AppendCertsFromPEM(pem) {
			return nil, errors.New("server certificate: no certificate in PEM")
		}
		tr.TLSClientConfig = &tls.Config{RootCAs: roots, MinVersion: tls.VersionTLS12}
		if creds := req.GetClientTlsCreds(); creds != nil {
			cert, err := tls.X509KeyPair(creds.GetCert(), creds.GetKey())
			if err != nil {
				return nil, fmt.Errorf("client certificate: %w", err)
			}
			tr.TLSClientConfig.Certificates = []tls.Certificate{cert}
		}
	}
	switch req.GetHttpVersion() {
	case conformancev1.HTTPVersion_HTTP_VERSION_1:
		tr.Protocols.SetHTTP1(true)
	case conformancev1.HTTPVersion_HTTP_VERSION_2:
		if scheme == "https" {
			tr.Protocols.SetHTTP2(true)
		} else {
			tr.Protocols.SetUnencryptedHTTP2(true)
		}
	default:
		return nil, fmt.Errorf("HTTP version %v not supported", req.GetHttpVersion())
	}
	var opts []connecthttp.Option
	switch req.GetProtocol() {
	case conformancev1.Protocol_PROTOCOL_CONNECT:
	case conformancev1.Protocol_PROTOCOL_GRPC:
		opts = append(opts, connecthttp.WithGRPC())
	case conformancev1.Protocol_PROTOCOL_GRPC_WEB:
		opts = append(opts, connecthttp.WithGRPCWeb())
	default:
		return nil, fmt.Errorf("protocol %v not supported", req.GetProtocol())
	}
	switch req.GetCompression() {
	case conformancev1.Compression_COMPRESSION_IDENTITY, conformancev1.Compression_COMPRESSION_UNSPECIFIED:
	case conformancev1.Compression_COMPRESSION_GZIP:
		opts = append(opts, connecthttp.WithSendGzip())
	default:
		return nil, fmt.Errorf("compression %v not supported", req.GetCompression())
	}
	url := scheme + "://" + net.JoinHostPort(req.GetHost(), strconv.Itoa(int(req.GetPort())))
	return &upstream{transport: gateway.NewTransport(halfDuplexHTTP1{&http.Client{Transport: tr}}, url, opts...), http: tr}, nil
}

// halfDuplexHTTP1 passes the response of a BidiStream call over HTTP/1.1
// off as HTTP/2, as the suite's reference client does: connect-go fails
// bidi calls whose response comes over HTTP/1.1, and the suite's cases of
// them are half duplex, which HTTP/1.1 carries.
type halfDuplexHTTP1 struct {
	client *http.Client
}

func (c halfDuplexHTTP1) Do(req *http.Request) (*http.Response, error) {
	res, err := c.client.Do(req)
	if err == nil && res.ProtoMajor == 1 && strings.HasSuffix(req.URL.Path, conformancev1connect.ConformanceServiceBidiStreamProcedure) {
		res.ProtoMajor, res.ProtoMinor = 2, 0
	}
	return res, err
}
