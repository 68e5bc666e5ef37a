package mux

import (
	"context"
	"crypto/tls"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/gorilla/websocket"

	"github.com/wsplex/wsplex/internal/wsconn"
)

// DialOptions configure Dial. A nil *DialOptions means all defaults.
type DialOptions struct {
	Options

	// Header holds extra request headers for the handshake, such as
	// Authorization.
	Header http.Header

	// TLSConfig configures wss:// connections. Nil means a default
	// tls.Config that verifies the server against the system roots.
	TLSConfig *tls.Config

	// Subprotocols lists WebSocket subprotocols to offer after wsplex.v1,
	// which the server ignores; TokenProtocol makes one that carries a
	// bearer token, the way browsers must send one.
	Subprotocols []string

	// HandshakeTimeout bounds the whole handshake: TCP, proxy tunnel, TLS
	// and the WebSocket upgrade. Default 10 s; ctx may end it sooner.
	HandshakeTimeout time.Duration

	// Proxy returns the proxy for a request, as http.Transport.Proxy does;
	// the request's URL has scheme http for ws:// and https for wss://.
	// Nil means the environment (HTTPS_PROXY, HTTP_PROXY, NO_PROXY,
	// lowercase too), read on every Dial, with net/http's rules: localhost
	// and loopback addresses are never proxied. http.ProxyURL(u) sets a
	// fixed proxy.
	//
	// http:// and https:// proxies are asked for a CONNECT tunnel, with the
	// proxy URL's user and password, if any, as Basic authentication (they
	// take precedence over a Proxy-Authorization in ProxyConnectHeader, as
	// in net/http); a refusal is a *ProxyError. socks5:// and socks5h://
	// proxies are spoken to with SOCKS5, user and password included.
	Proxy func(*http.Request) (*url.URL, error)

	// ProxyTLSConfig configures the TLS connection to an https:// proxy.
	// Nil means default verification against the system roots.
	ProxyTLSConfig *tls.Config

	// ProxyConnectHeader holds extra headers for the proxy's CONNECT
	// request.
	ProxyConnectHeader http.Header

	// NetDialContext, if set, makes the TCP connection (to the server or
	// the proxy), as net.Dialer.DialContext does.
	NetDialContext func(ctx context.Context, network, addr string) (net.Conn, error)
}

// DefaultHandshakeTimeout bounds Dial's handshake when
// DialOptions.HandshakeTimeout is zero, and a Handler's writing of the
// upgrade response.
const DefaultHandshakeTimeout = 10 * time.Second

// Dial opens a WebSocket connection to rawURL (ws:// or wss://), negotiates
// the wsplex subprotocol and returns the client side of a session. ctx bounds
// the handshake only; cancelling it later does not affect the session. The
// session starts goroutines and must be closed.
func Dial(ctx context.Context, rawURL string, opts *DialOptions) (*Session, error) {
	var do DialOptions
	if opts != nil {
		do = *opts
	}
	o, err := do.Options.withDefaults()
	if err != nil {
		return nil, err
	}
	endpoint, shown, err := parseEndpoint(rawURL)
	if err != nil {
		return nil, err
	}
	pd := newProxyDialer(&do, endpoint)
	d := websocket.Dialer{
		TLSClientConfig:   do.TLSConfig,
		Subprotocols:      append([]string{Subprotocol}, do.Subprotocols...),
		ReadBufferSize:    readBufferSize,
		WriteBufferSize:   writeBufferSize,
		WriteBufferPool:   writeBufferPool,
		EnableCompression: o.Compression,
		NetDialContext:    pd.DialContext,
	}
	timeout := do.HandshakeTimeout
	if timeout <= 0 {
		timeout = DefaultHandshakeTimeout
	}
	hctx, cancel := context.WithTimeoutCause(ctx, timeout, ErrHandshakeTimeout)
	defer cancel()
	ws, resp, err := d.DialContext(hctx, rawURL, do.Header)
	if !pd.release() && err == nil {
		// ctx ended as the handshake finished, and closed the connection.
		ws.Close()
		ws, err = nil, hctx.Err()
	}
	if err != nil {
		return nil, dialError(shown, resp, handshakeError(ctx, hctx, err))
	}
	if ws.Subprotocol() != Subprotocol {
		ws.Close()
		return nil, fmt.Errorf("wsplex/mux: dial %s: %w", shown, ErrSubprotocol)
	}
	conn, err := wsconn.New(ws, o.transport())
	if err != nil {
		ws.Close()
		return nil, err
	}
	return newSession(context.Background(), conn, true, o, nil), nil
}

// parseEndpoint returns the URL Dial connects to, with scheme http for
// ws:// and https for wss://, and the URL errors may show: without its
// query or user, which may hold credentials such as an access_token.
func parseEndpoint(rawURL string) (endpoint *url.URL, shown string, err error) {
	u, err := url.Parse(rawURL)
	if err != nil {
		// url.Error quotes the whole URL, which may hold a token.
		return nil, "", fmt.Errorf("wsplex/mux: dial: invalid URL: %w", errors.Unwrap(err))
	}
	endpoint = &url.URL{Scheme: u.Scheme, Host: u.Host, Path: u.Path}
	shown = endpoint.String()
	switch endpoint.Scheme {
	case "ws":
		endpoint.Scheme = "http"
	case "wss":
		endpoint.Scheme = "https"
	default:
		return nil, "", fmt.Errorf("wsplex/mux: dial %s: scheme must be ws or wss", shown)
	}
	return endpoint, shown, nil
}

// handshakeError says whose deadline or cancellation ended a handshake
// that hctx, derived from the caller's ctx, bounded.
func handshakeError(ctx, hctx context.Context, err error) error {
	var ne net.Error
	if dl, ok := hctx.Deadline(); ok && errors.As(err, &ne) && ne.Timeout() && !time.Now().Before(dl) {
		// gorilla turns the context's deadline into a socket deadline,
		// which may fire just before the context reports it.
		if pdl, ok := ctx.Deadline(); ok && !pdl.After(dl) {
			return context.DeadlineExceeded
		}
		return ErrHandshakeTimeout
	}
	if hctx.Err() == nil {
		return err
	}
	if cause := context.Cause(hctx); cause == ErrHandshakeTimeout {
		return cause
	}
	return hctx.Err()
}

// dialError explains a failed handshake. A refusal from the server is a
// *RefusedError quoting the response body.
func dialError(shown string, resp *http.Response, err error) error {
	if resp == nil || !errors.Is(err, websocket.ErrBadHandshake) {
		return fmt.Errorf("wsplex/mux: dial %s: %w", shown, err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
	re := &RefusedError{StatusCode: resp.StatusCode, Message: strings.TrimSpace(string(body))}
	return fmt.Errorf("wsplex/mux: dial %s: %w", shown, re)
}

// TokenProtocol returns a WebSocket subprotocol value that carries a bearer
// token, for DialOptions.Subprotocols and for browsers, which cannot set an
// Authorization header on a WebSocket. BearerToken finds it on the server.
func TokenProtocol(token string) string {
	return tokenProtocolPrefix + base64.RawURLEncoding.EncodeToString([]byte(token))
}

const tokenProtocolPrefix = "wsplex.bearer."
