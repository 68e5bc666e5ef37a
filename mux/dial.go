package mux

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/gorilla/websocket"

	"github.com/wsplex/wsplex/transport"
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

	// Proxy returns the HTTP proxy for a request, as http.Transport.Proxy
	// does. Nil means http.ProxyFromEnvironment (HTTPS_PROXY, HTTP_PROXY,
	// NO_PROXY).
	Proxy func(*http.Request) (*url.URL, error)

	// NetDialContext, if set, makes the TCP connection (to the server or
	// the proxy), as net.Dialer.DialContext does.
	NetDialContext func(ctx context.Context, network, addr string) (net.Conn, error)
}

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
	proxy := do.Proxy
	if proxy == nil {
		proxy = http.ProxyFromEnvironment
	}
	d := websocket.Dialer{
		Proxy:             proxy,
		TLSClientConfig:   do.TLSConfig,
		Subprotocols:      []string{Subprotocol},
		ReadBufferSize:    readBufferSize,
		WriteBufferSize:   writeBufferSize,
		WriteBufferPool:   writeBufferPool,
		EnableCompression: o.Compression,
		NetDialContext:    do.NetDialContext,
	}
	ws, resp, err := d.DialContext(ctx, rawURL, do.Header)
	if err != nil {
		var ne net.Error
		if dl, ok := ctx.Deadline(); ok && errors.As(err, &ne) && ne.Timeout() && !time.Now().Before(dl) {
			// gorilla turns the context's deadline into a socket deadline,
			// which may fire just before the context reports it.
			err = context.DeadlineExceeded
		} else if ctx.Err() != nil {
			err = ctx.Err()
		}
		return nil, dialError(rawURL, resp, err)
	}
	if ws.Subprotocol() != Subprotocol {
		ws.Close()
		return nil, fmt.Errorf("wsplex/mux: dial %s: %w", rawURL, ErrSubprotocol)
	}
	conn, err := transport.New(ws, o.transport())
	if err != nil {
		ws.Close()
		return nil, err
	}
	return newSession(conn, true, o), nil
}

// dialError explains a failed handshake, quoting the server's refusal.
func dialError(rawURL string, resp *http.Response, err error) error {
	if resp == nil || !errors.Is(err, websocket.ErrBadHandshake) {
		return fmt.Errorf("wsplex/mux: dial %s: %w", rawURL, err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
	msg := strings.TrimSpace(string(body))
	if msg == "" {
		return fmt.Errorf("wsplex/mux: dial %s: server refused the upgrade: %s", rawURL, resp.Status)
	}
	return fmt.Errorf("wsplex/mux: dial %s: server refused the upgrade: %s: %s", rawURL, resp.Status, msg)
}
