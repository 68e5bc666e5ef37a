package mux

import (
	"bufio"
	"bytes"
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
	"sync"

	"golang.org/x/net/http/httpproxy"
	"golang.org/x/net/proxy"
)

// ProxyError says that an HTTP proxy refused to open a tunnel to the
// server: it answered the CONNECT request with a status other than 200.
// Dial returns it wrapped; find it with errors.As.
type ProxyError struct {
	Proxy      string // the proxy's scheme and address, without user or password
	Target     string // the host:port the tunnel was for
	StatusCode int    // such as 403, or 407 when the proxy wants credentials
	Status     string // the status line's text, such as "403 Forbidden"
	Body       string // the first line of a text/plain answer, if any
}

func (e *ProxyError) Error() string {
	msg := fmt.Sprintf("proxy %s refused CONNECT to %s: %s", e.Proxy, e.Target, e.Status)
	if e.Body != "" {
		msg += ": " + e.Body
	}
	return msg
}

// proxyFromEnvironment is the default DialOptions.Proxy. Unlike
// http.ProxyFromEnvironment, which reads the environment once per process,
// it reads it on every Dial; the rules are the same (HTTPS_PROXY for wss,
// HTTP_PROXY for ws, NO_PROXY, and never for localhost or loopback IPs).
func proxyFromEnvironment(req *http.Request) (*url.URL, error) {
	return httpproxy.FromEnvironment().ProxyFunc()(req.URL)
}

// proxyDialer makes the connection Dial speaks WebSocket over: straight to
// the server, through an HTTP proxy's CONNECT tunnel, or through a SOCKS5
// proxy. gorilla/websocket has its own proxy support, but it cannot speak
// TLS to an https:// proxy, and its errors do not say which proxy refused
// or why.
type proxyDialer struct {
	proxy    func(*http.Request) (*url.URL, error)
	tls      *tls.Config // for https:// proxies
	header   http.Header // extra CONNECT request headers
	dial     func(ctx context.Context, network, addr string) (net.Conn, error)
	endpoint *url.URL // the server's URL, with http or https as its scheme

	// gorilla/websocket bounds its handshake by ctx's deadline only, not
	// by its cancellation; so the connections made close when ctx ends,
	// until release.
	mu    sync.Mutex
	stops []func() bool
}

// newProxyDialer returns the dialer Dial hands gorilla, for endpoint.
func newProxyDialer(do *DialOptions, endpoint *url.URL) *proxyDialer {
	pd := &proxyDialer{
		proxy:    do.Proxy,
		tls:      do.ProxyTLSConfig,
		header:   do.ProxyConnectHeader,
		dial:     do.NetDialContext,
		endpoint: endpoint,
	}
	if pd.proxy == nil {
		pd.proxy = proxyFromEnvironment
	}
	if pd.dial == nil {
		pd.dial = (&net.Dialer{}).DialContext
	}
	return pd
}

func (d *proxyDialer) DialContext(ctx context.Context, network, addr string) (net.Conn, error) {
	proxyURL, err := d.proxy(&http.Request{Method: http.MethodGet, URL: d.endpoint, Host: d.endpoint.Host})
	if err != nil {
		return nil, fmt.Errorf("choosing a proxy: %w", err)
	}
	var conn net.Conn
	if proxyURL == nil {
		conn, err = d.dial(ctx, network, addr)
	} else {
		conn, err = d.connect(ctx, proxyURL, addr)
	}
	if err != nil {
		return nil, err
	}
	stop := context.AfterFunc(ctx, func() { conn.Close() })
	d.mu.Lock()
	d.stops = append(d.stops, stop)
	d.mu.Unlock()
	return conn, nil
}

// release stops closing the connections when ctx ends, once the handshake
// is over. It reports false if ctx closed one already.
func (d *proxyDialer) release() bool {
	d.mu.Lock()
	defer d.mu.Unlock()
	ok := true
	for _, stop := range d.stops {
		ok = stop() && ok
	}
	d.stops = nil
	return ok
}

// connect opens a tunnel to addr through the proxy at u.
func (d *proxyDialer) connect(ctx context.Context, u *url.URL, addr string) (net.Conn, error) {
	// Errors name the proxy without its user or password; proxies that
	// take a token as the user name are common.
	name := (&url.URL{Scheme: u.Scheme, Host: u.Host}).String()
	var conn net.Conn
	var err error
	switch u.Scheme {
	case "http", "", "https":
		conn, err = d.connectHTTP(ctx, u, addr)
	case "socks5", "socks5h":
		var socks proxy.Dialer
		if socks, err = proxy.FromURL(u, dialFunc(d.dial)); err == nil {
			conn, err = socks.(proxy.ContextDialer).DialContext(ctx, "tcp", addr)
		}
	default:
		err = fmt.Errorf("unsupported scheme %q (want http, https or socks5)", u.Scheme)
	}
	var pe *ProxyError
	if errors.As(err, &pe) {
		pe.Proxy = name
		return nil, err
	}
	if err != nil {
		return nil, fmt.Errorf("proxy %s: %w", name, err)
	}
	return conn, nil
}

// connectHTTP asks an http:// or https:// proxy for a CONNECT tunnel to
// addr. A refusal is a *ProxyError whose Proxy the caller fills in.
func (d *proxyDialer) connectHTTP(ctx context.Context, u *url.URL, addr string) (net.Conn, error) {
	port := u.Port()
	switch {
	case port != "":
	case u.Scheme == "https":
		port = "443"
	default:
		port = "80"
	}
	raw, err := d.dial(ctx, "tcp", net.JoinHostPort(u.Hostname(), port))
	if err != nil {
		return nil, err
	}
	// Until the tunnel is up, ctx bounds every read and write. Closing
	// the socket also ends a TLS session on it.
	stop := context.AfterFunc(ctx, func() { raw.Close() })
	defer stop()
	conn, err := d.tunnel(ctx, raw, u, addr)
	if err == nil && !stop() {
		conn.Close()
		err = ctx.Err()
	}
	if err != nil {
		raw.Close()
		if ctx.Err() != nil {
			var pe *ProxyError
			if !errors.As(err, &pe) {
				err = ctx.Err()
			}
		}
		return nil, err
	}
	return conn, nil
}

// tunnel speaks TLS (for https:// proxies) and CONNECT over raw.
func (d *proxyDialer) tunnel(ctx context.Context, raw net.Conn, u *url.URL, addr string) (net.Conn, error) {
	conn := raw
	if u.Scheme == "https" {
		cfg := d.tls.Clone()
		if cfg == nil {
			cfg = &tls.Config{}
		}
		if cfg.ServerName == "" {
			cfg.ServerName = u.Hostname()
		}
		cfg.NextProtos = nil // CONNECT is HTTP/1.1; an h2 proxy would not take it
		tc := tls.Client(raw, cfg)
		if err := tc.HandshakeContext(ctx); err != nil {
			return nil, err
		}
		conn = tc
	}
	req := &http.Request{
		Method: http.MethodConnect,
		URL:    &url.URL{Opaque: addr},
		Host:   addr,
		Header: d.header.Clone(),
	}
	if req.Header == nil {
		req.Header = http.Header{}
	}
	if u.User != nil { // as in net/http, the URL's credentials win
		pass, _ := u.User.Password()
		cred := base64.StdEncoding.EncodeToString([]byte(u.User.Username() + ":" + pass))
		req.Header.Set("Proxy-Authorization", "Basic "+cred)
	}
	if err := req.Write(conn); err != nil {
		return nil, err
	}
	br := bufio.NewReaderSize(conn, 1<<10)
	resp, err := http.ReadResponse(br, req)
	if err != nil {
		return nil, fmt.Errorf("reading the answer to CONNECT: %w", err)
	}
	if resp.StatusCode != http.StatusOK {
		var body []byte
		if strings.HasPrefix(resp.Header.Get("Content-Type"), "text/plain") {
			body, _ = io.ReadAll(io.LimitReader(resp.Body, 256))
		}
		return nil, &ProxyError{
			Target:     addr,
			StatusCode: resp.StatusCode,
			Status:     resp.Status,
			Body:       firstLine(string(body)),
		}
	}
	if n := br.Buffered(); n > 0 {
		// The server spoke first, through the tunnel; keep what was read.
		peeked, _ := br.Peek(n)
		return &prefixConn{Conn: conn, r: io.MultiReader(bytes.NewReader(bytes.Clone(peeked)), conn)}, nil
	}
	return conn, nil
}

// dialFunc is a dial function as a golang.org/x/net/proxy.Dialer.
type dialFunc func(ctx context.Context, network, addr string) (net.Conn, error)

func (f dialFunc) Dial(network, addr string) (net.Conn, error) {
	return f(context.Background(), network, addr)
}

func (f dialFunc) DialContext(ctx context.Context, network, addr string) (net.Conn, error) {
	return f(ctx, network, addr)
}

// firstLine trims a proxy's error page to something fit for an error.
func firstLine(s string) string {
	s = strings.TrimSpace(s)
	if i := strings.IndexAny(s, "\r\n"); i >= 0 {
		s = s[:i]
	}
	return s
}

// prefixConn is a net.Conn that reads what was buffered before its Conn.
type prefixConn struct {
	net.Conn
	r io.Reader
}

func (c *prefixConn) Read(p []byte) (int, error) { return c.r.Read(p) }
