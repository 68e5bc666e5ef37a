// Package upstream is the gateway's side of the clients under test
// (cmd/wsplexclient, and cmd/wsplexgateway for the Node client): a
// gateway.Route that reaches the reference server a call names in its
// Header, a ClientCompatRequest that holds only the fields that say how to
// reach it (address, protocol, HTTP version, TLS, compression), in
// protobuf's binary encoding, base64 (see Key).
package upstream

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"errors"
	"fmt"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"

	"connectrpc.com/connect/v2"
	"connectrpc.com/connect/v2/connecthttp"
	"google.golang.org/protobuf/proto"

	conformancev1 "github.com/wsplex/wsplex/conformance/internal/gen/conformancev1"
	"github.com/wsplex/wsplex/conformance/internal/gen/conformancev1/conformancev1connect"
	"github.com/wsplex/wsplex/gateway"
)

// Header names a call's upstream; Route drops it.
const Header = "x-wsplex-conformance-upstream"

// Set holds one gateway.Transport per distinct upstream, keyed by the
// Header value that names it.
type Set struct {
	mu    sync.Mutex
	byKey map[string]*upstream
}

type upstream struct {
	transport *gateway.Transport
	http      *http.Transport
}

// NewSet returns an empty Set.
func NewSet() *Set { return &Set{byKey: make(map[string]*upstream)} }

// Route is the gateway's Route: the upstream the call's Header names.
func (s *Set) Route(_ context.Context, call *connect.CallInfo) (connect.Transport, error) {
	key := call.RequestHeader().Get(Header)
	call.RequestHeader().Delete(Header)
	s.mu.Lock()
	defer s.mu.Unlock()
	if up := s.byKey[key]; up != nil {
		return up.transport, nil
	}
	b, err := base64.StdEncoding.DecodeString(key)
	if err != nil {
		return nil, connect.Errorf(connect.CodeInvalidArgument, "header %s: %v", Header, err)
	}
	req := new(conformancev1.ClientCompatRequest)
	if err := proto.Unmarshal(b, req); err != nil {
		return nil, connect.Errorf(connect.CodeInvalidArgument, "header %s: %v", Header, err)
	}
	up, err := newUpstream(req)
	if err != nil {
		return nil, connect.Errorf(connect.CodeInvalidArgument, "header %s: %v", Header, err)
	}
	s.byKey[key] = up
	return up.transport, nil
}

// Key returns the Header value that names the reference server req
// reaches.
func Key(req *conformancev1.ClientCompatRequest) (string, error) {
	reach := &conformancev1.ClientCompatRequest{
		Host:           req.GetHost(),
		Port:           req.GetPort(),
		ServerTlsCert:  req.GetServerTlsCert(),
		ClientTlsCreds: req.GetClientTlsCreds(),
		HttpVersion:    req.GetHttpVersion(),
		Protocol:       req.GetProtocol(),
		Compression:    req.GetCompression(),
	}
	b, err := proto.MarshalOptions{Deterministic: true}.Marshal(reach)
	if err != nil {
		return "", err
	}
	return base64.StdEncoding.EncodeToString(b), nil
}

// Close closes the idle connections of every upstream.
func (s *Set) Close() {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, up := range s.byKey {
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
