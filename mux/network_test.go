package mux_test

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/wsplex/wsplex/internal/netlab"
	"github.com/wsplex/wsplex/internal/plextest"
	"github.com/wsplex/wsplex/mux"
)

// tlsEchoServer serves plextest.Echo over TLS with cfg, and returns its
// wss:// URL.
func tlsEchoServer(t *testing.T, cfg *tls.Config, opts *mux.HandlerOptions) string {
	t.Helper()
	return tlsServer(t, plextest.Echo, cfg, opts)
}

// tlsServer serves serve over TLS with cfg, and returns its wss:// URL.
func tlsServer(t *testing.T, serve func(*mux.Session), cfg *tls.Config, opts *mux.HandlerOptions) string {
	t.Helper()
	h, err := mux.NewHandler(serve, opts)
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewUnstartedServer(h)
	srv.Config.ErrorLog = log.New(io.Discard, "", 0) // refused handshakes are expected
	srv.TLS = cfg
	srv.StartTLS()
	t.Cleanup(func() {
		h.Close()
		srv.Close()
	})
	return "wss://" + srv.Listener.Addr().String()
}

func TestTLS(t *testing.T) {
	ca := netlab.NewCA(t, "wsplex test CA")
	url := tlsEchoServer(t, &tls.Config{Certificates: []tls.Certificate{ca.Issue(t, "wsplex.test")}}, nil)

	t.Run("custom-roots-and-server-name", func(t *testing.T) {
		sess, err := mux.Dial(t.Context(), url, &mux.DialOptions{
			TLSConfig: &tls.Config{RootCAs: ca.Pool, ServerName: "wsplex.test"},
		})
		if err != nil {
			t.Fatal(err)
		}
		defer sess.Close()
		plextest.CheckEcho(t, sess, "over TLS")
	})
	t.Run("unknown-authority", func(t *testing.T) {
		_, err := mux.Dial(t.Context(), url, &mux.DialOptions{TLSConfig: &tls.Config{ServerName: "wsplex.test"}})
		var unknown x509.UnknownAuthorityError
		if !errors.As(err, &unknown) || !strings.Contains(err.Error(), url) {
			t.Fatalf("dial: %v, want an x509.UnknownAuthorityError naming %s", err, url)
		}
	})
	t.Run("wrong-name", func(t *testing.T) {
		_, err := mux.Dial(t.Context(), url, &mux.DialOptions{TLSConfig: &tls.Config{RootCAs: ca.Pool}})
		var wrong x509.HostnameError
		if !errors.As(err, &wrong) {
			t.Fatalf("dial: %v, want an x509.HostnameError", err)
		}
	})
}

func TestTLSClientCertificates(t *testing.T) {
	ca := netlab.NewCA(t, "wsplex test CA")
	url := tlsServer(t, whoAmI, &tls.Config{
		Certificates: []tls.Certificate{ca.Issue(t, "127.0.0.1")},
		ClientAuth:   tls.RequireAndVerifyClientCert,
		ClientCAs:    ca.Pool,
	}, &mux.HandlerOptions{
		Authenticate: func(r *http.Request) (any, error) {
			return r.TLS.PeerCertificates[0].Subject.CommonName, nil
		},
	})

	sess, err := mux.Dial(t.Context(), url, &mux.DialOptions{TLSConfig: &tls.Config{
		RootCAs:      ca.Pool,
		Certificates: []tls.Certificate{ca.Issue(t, "client-7")},
	}})
	if err != nil {
		t.Fatal(err)
	}
	defer sess.Close()
	if got := identity(t, sess); got != "client-7/client-7" {
		t.Fatalf("the server saw identity %q, want the certificate's name client-7", got)
	}

	_, err = mux.Dial(t.Context(), url, &mux.DialOptions{TLSConfig: &tls.Config{RootCAs: ca.Pool}})
	if err == nil || !strings.Contains(err.Error(), "certificate") {
		t.Fatalf("dial without a client certificate: %v", err)
	}
}

// recordingDialer notes every address Dial connects to.
type recordingDialer struct {
	mu    sync.Mutex
	addrs []string
}

func (d *recordingDialer) DialContext(ctx context.Context, network, addr string) (net.Conn, error) {
	d.mu.Lock()
	d.addrs = append(d.addrs, addr)
	d.mu.Unlock()
	return (&net.Dialer{}).DialContext(ctx, network, addr)
}

func (d *recordingDialer) dialed() []string {
	d.mu.Lock()
	defer d.mu.Unlock()
	return append([]string(nil), d.addrs...)
}

// dialVia dials target through the proxy at proxyURL and checks that the only
// connection made went to the proxy.
func dialVia(t *testing.T, target, proxyURL string, opts *mux.DialOptions) (*mux.Session, error) {
	t.Helper()
	var o mux.DialOptions
	if opts != nil {
		o = *opts
	}
	var rec recordingDialer
	o.NetDialContext = rec.DialContext
	if proxyURL != "" {
		u, err := url.Parse(proxyURL)
		if err != nil {
			t.Fatal(err)
		}
		o.Proxy = http.ProxyURL(u)
	}
	sess, err := mux.Dial(t.Context(), target, &o)
	if proxyURL != "" {
		u, _ := url.Parse(proxyURL)
		if got := rec.dialed(); len(got) != 1 || got[0] != u.Host {
			t.Errorf("dialed %v, want only the proxy %s", got, u.Host)
		}
	}
	if sess != nil {
		t.Cleanup(func() { sess.Close() })
	}
	return sess, err
}

func TestForwardProxy(t *testing.T) {
	proxy := netlab.StartTinyproxy(t, netlab.TinyproxyConfig{})
	plain := plextest.NewServer(t, plextest.Echo, nil)
	ca := netlab.NewCA(t, "wsplex test CA")
	secure := tlsEchoServer(t, &tls.Config{Certificates: []tls.Certificate{ca.Issue(t, "127.0.0.1")}}, nil)

	t.Run("ws", func(t *testing.T) {
		sess, err := dialVia(t, plain.URL, proxy.URL("", ""), nil)
		if err != nil {
			t.Fatal(err)
		}
		plextest.CheckEcho(t, sess, "through tinyproxy")
	})
	t.Run("wss", func(t *testing.T) {
		sess, err := dialVia(t, secure, proxy.URL("", ""), &mux.DialOptions{TLSConfig: &tls.Config{RootCAs: ca.Pool}})
		if err != nil {
			t.Fatal(err)
		}
		plextest.CheckEcho(t, sess, "TLS through tinyproxy")
	})
}

func TestForwardProxyAuthentication(t *testing.T) {
	proxy := netlab.StartTinyproxy(t, netlab.TinyproxyConfig{User: "alice", Password: "s3cret"})
	srv := plextest.NewServer(t, plextest.Echo, nil)

	sess, err := dialVia(t, srv.URL, proxy.URL("alice", "s3cret"), nil)
	if err != nil {
		t.Fatal(err)
	}
	plextest.CheckEcho(t, sess, "authenticated to the proxy")

	for _, tc := range []struct {
		name, user, pass string
		status           int
	}{
		// tinyproxy answers a wrong password with 401, not 407.
		{"wrong-password", "alice", "guess", http.StatusUnauthorized},
		{"no-credentials", "", "", http.StatusProxyAuthRequired},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := dialVia(t, srv.URL, proxy.URL(tc.user, tc.pass), nil)
			var pe *mux.ProxyError
			if !errors.As(err, &pe) || pe.StatusCode != tc.status {
				t.Fatalf("dial: %v, want a *mux.ProxyError with status %d", err, tc.status)
			}
			if !strings.Contains(err.Error(), proxy.Addr) || strings.Contains(err.Error(), tc.pass+"@") && tc.pass != "" {
				t.Fatalf("error %q should name the proxy %s and hide the password", err, proxy.Addr)
			}
		})
	}
}

func TestForwardProxyRefusesTarget(t *testing.T) {
	proxy := netlab.StartTinyproxy(t, netlab.TinyproxyConfig{ConnectPorts: []int{443}})
	srv := plextest.NewServer(t, plextest.Echo, nil)

	_, err := dialVia(t, srv.URL, proxy.URL("", ""), nil)
	var pe *mux.ProxyError
	if !errors.As(err, &pe) || pe.StatusCode != http.StatusForbidden {
		t.Fatalf("dial: %v, want a *mux.ProxyError with status 403", err)
	}
	want := fmt.Sprintf("proxy http://%s refused CONNECT to %s: 403", proxy.Addr, srv.HTTP.Listener.Addr())
	if !strings.Contains(err.Error(), want) {
		t.Fatalf("error %q does not say %q", err, want)
	}
}

// loopbackName returns a host name, other than localhost, that resolves to
// loopback addresses only, or "": net/http's proxy rules never proxy
// localhost or loopback IPs, so proxying a loopback server by environment
// needs such a name.
func loopbackName() string {
	name, err := os.Hostname()
	if err != nil || name == "localhost" {
		return ""
	}
	addrs, err := net.LookupHost(name)
	if err != nil || len(addrs) == 0 {
		return ""
	}
	for _, a := range addrs {
		if ip := net.ParseIP(a); ip == nil || !ip.IsLoopback() {
			return ""
		}
	}
	return name
}

func TestForwardProxyFromEnvironment(t *testing.T) {
	proxy := netlab.StartTinyproxy(t, netlab.TinyproxyConfig{})
	for _, v := range []string{"HTTP_PROXY", "HTTPS_PROXY", "NO_PROXY", "http_proxy", "https_proxy", "no_proxy"} {
		t.Setenv(v, "")
	}
	dial := func(target string) ([]string, *mux.Session, error) {
		var rec recordingDialer
		sess, err := mux.Dial(t.Context(), target, &mux.DialOptions{NetDialContext: rec.DialContext})
		if sess != nil {
			t.Cleanup(func() { sess.Close() })
		}
		return rec.dialed(), sess, err
	}

	// A name that resolves nowhere: the proxy is asked, and fails to reach
	// it; with NO_PROXY, the client tries the name itself.
	t.Setenv("HTTP_PROXY", proxy.URL("", ""))
	dialed, _, err := dial("ws://wsplex.invalid:9/")
	var pe *mux.ProxyError
	if !errors.As(err, &pe) || pe.Proxy != "http://"+proxy.Addr || len(dialed) != 1 || dialed[0] != proxy.Addr {
		t.Fatalf("with HTTP_PROXY set: dialed %v, err %v; want the proxy, and its refusal", dialed, err)
	}
	t.Setenv("NO_PROXY", "wsplex.invalid")
	if dialed, _, _ = dial("ws://wsplex.invalid:9/"); len(dialed) != 1 || dialed[0] != "wsplex.invalid:9" {
		t.Fatalf("with NO_PROXY set: dialed %v, want the server itself", dialed)
	}
	t.Setenv("NO_PROXY", "")

	// And all the way to a server, when this host has a name for loopback.
	name := loopbackName()
	if name == "" {
		t.Logf("no host name resolves to loopback only; the proxied echo is covered by TestForwardProxy")
		return
	}
	srv := plextest.NewServer(t, plextest.Echo, nil)
	_, port, _ := net.SplitHostPort(srv.HTTP.Listener.Addr().String())
	dialed, sess, err := dial(fmt.Sprintf("ws://%s:%s", name, port))
	if err != nil {
		t.Fatal(err)
	}
	plextest.CheckEcho(t, sess, "proxied by HTTP_PROXY")
	if len(dialed) != 1 || dialed[0] != proxy.Addr {
		t.Fatalf("dialed %v, want only the proxy %s", dialed, proxy.Addr)
	}
}

// TestHTTPSProxy reaches tinyproxy through nginx terminating TLS, as a
// proxy that speaks https:// does.
func TestHTTPSProxy(t *testing.T) {
	tiny := netlab.StartTinyproxy(t, netlab.TinyproxyConfig{})
	ca := netlab.NewCA(t, "proxy CA")
	certFile, keyFile := netlab.WritePEM(t, ca.Issue(t, "127.0.0.1"))
	addr := netlab.FreeAddr(t)
	netlab.StartNginx(t, fmt.Sprintf(`server {
		listen %s ssl;
		ssl_certificate %s;
		ssl_certificate_key %s;
		proxy_pass %s;
	}`, addr, certFile, keyFile, tiny.Addr), true)
	srv := plextest.NewServer(t, plextest.Echo, nil)

	sess, err := dialVia(t, srv.URL, "https://"+addr, &mux.DialOptions{ProxyTLSConfig: &tls.Config{RootCAs: ca.Pool}})
	if err != nil {
		t.Fatal(err)
	}
	plextest.CheckEcho(t, sess, "through an https:// proxy")

	_, err = dialVia(t, srv.URL, "https://"+addr, nil)
	var unknown x509.UnknownAuthorityError
	if !errors.As(err, &unknown) || !strings.Contains(err.Error(), "proxy https://"+addr) {
		t.Fatalf("dial without the proxy's CA: %v, want an x509.UnknownAuthorityError naming the proxy", err)
	}
}

// TestBehindNginx runs sessions through nginx configured as a WebSocket
// reverse proxy with a short proxy_read_timeout, as load balancers have.
// A session without keepalive is cut when it idles past the timeout; one
// with keepalive outlives it and still carries streams.
func TestBehindNginx(t *testing.T) {
	alive := plextest.NewServer(t, plextest.Echo, &mux.HandlerOptions{
		Options: mux.Options{KeepAliveInterval: 200 * time.Millisecond},
	})
	silent := plextest.NewServer(t, plextest.Echo, &mux.HandlerOptions{
		Options: mux.Options{KeepAliveInterval: -1},
	})
	addr := netlab.FreeAddr(t)
	netlab.StartNginx(t, fmt.Sprintf(`
		map $http_upgrade $connection_upgrade {
			default upgrade;
			''      close;
		}
		server {
			listen %s;
			location /alive/ { proxy_pass http://%s; include wsplex-proxy.conf; }
			location /silent/ { proxy_pass http://%s; include wsplex-proxy.conf; }
		}`, addr, alive.HTTP.Listener.Addr(), silent.HTTP.Listener.Addr()), false,
		netlab.File{Name: "wsplex-proxy.conf", Contents: nginxProxyConf(t, "1s")})

	kept, err := mux.Dial(t.Context(), "ws://"+addr+"/alive/", nil)
	if err != nil {
		t.Fatal(err)
	}
	defer kept.Close()
	cut, err := mux.Dial(t.Context(), "ws://"+addr+"/silent/", &mux.DialOptions{
		Options: mux.Options{KeepAliveInterval: -1},
	})
	if err != nil {
		t.Fatal(err)
	}
	defer cut.Close()
	plextest.CheckEcho(t, kept, "before the idle period")
	plextest.CheckEcho(t, cut, "before the idle period")

	select {
	case <-cut.Done(): // nginx's proxy_read_timeout passed with nothing sent
	case <-time.After(30 * time.Second):
		t.Fatal("nginx did not cut the idle session without keepalive")
	}
	t.Logf("the idle session ended with: %v", cut.Err())
	select {
	case <-kept.Done():
		t.Fatalf("the session with keepalive was cut too: %v", kept.Err())
	default:
	}
	plextest.CheckEcho(t, kept, "after the idle period")
}

// nginxProxyConf returns docs/nginx/wsplex-proxy.conf, the proxy settings
// the deployment guide tells users to include, with its read and send
// timeouts set to timeout.
func nginxProxyConf(t *testing.T, timeout string) string {
	t.Helper()
	b, err := os.ReadFile("../docs/nginx/wsplex-proxy.conf")
	if err != nil {
		t.Fatal(err)
	}
	conf := string(b)
	for _, d := range []string{"proxy_read_timeout", "proxy_send_timeout"} {
		re := regexp.MustCompile(d + `\s+\S+;`)
		if !re.MatchString(conf) {
			t.Fatalf("docs/nginx/wsplex-proxy.conf has no %s", d)
		}
		conf = re.ReplaceAllString(conf, d+" "+timeout+";")
	}
	return conf
}

func TestBehindHTTPUtilReverseProxy(t *testing.T) {
	srv := plextest.NewServer(t, func(s *mux.Session) {
		push, err := s.Open(t.Context())
		if err != nil {
			return
		}
		io.WriteString(push, "pushed by the server")
		push.Close()
		plextest.Echo(s)
	}, nil)
	target, err := url.Parse(srv.HTTP.URL)
	if err != nil {
		t.Fatal(err)
	}
	front := httptest.NewServer(httputil.NewSingleHostReverseProxy(target))
	defer front.Close()

	sess, err := mux.Dial(t.Context(), plextest.WebSocketURL(front.URL), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer sess.Close()
	pushed, err := sess.Accept(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	got, err := io.ReadAll(pushed)
	pushed.Close()
	if err != nil || string(got) != "pushed by the server" {
		t.Fatalf("server push: %q, %v", got, err)
	}
	plextest.CheckEcho(t, sess, "through httputil.ReverseProxy")
}

func TestSOCKS5Proxy(t *testing.T) {
	socks := netlab.StartDante(t)
	srv := plextest.NewServer(t, plextest.Echo, nil)
	sess, err := dialVia(t, srv.URL, "socks5://"+socks.Addr, nil)
	if err != nil {
		t.Fatal(err)
	}
	plextest.CheckEcho(t, sess, "through a SOCKS5 proxy")
}

// TestProxyURLCredentialsWin sends wrong credentials in
// ProxyConnectHeader and right ones in the proxy URL: as in net/http, the
// URL's win.
func TestProxyURLCredentialsWin(t *testing.T) {
	proxy := netlab.StartTinyproxy(t, netlab.TinyproxyConfig{User: "alice", Password: "s3cret"})
	srv := plextest.NewServer(t, plextest.Echo, nil)
	sess, err := dialVia(t, srv.URL, proxy.URL("alice", "s3cret"), &mux.DialOptions{
		ProxyConnectHeader: http.Header{"Proxy-Authorization": {"Basic d3Jvbmc6d3Jvbmc="}},
	})
	if err != nil {
		t.Fatal(err)
	}
	plextest.CheckEcho(t, sess, "with the URL's credentials")
}

// TestHTTPSProxyThatNeverAnswers times out in the CONNECT exchange with a
// TLS proxy: the handshake timeout must end it, naming no credentials,
// and (under -race) without racing on the connection it closes.
func TestHTTPSProxyThatNeverAnswers(t *testing.T) {
	ca := netlab.NewCA(t, "proxy CA")
	ln, err := tls.Listen("tcp", "127.0.0.1:0", &tls.Config{Certificates: []tls.Certificate{ca.Issue(t, "127.0.0.1")}})
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	held := make(chan net.Conn, 1)
	go func() {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		c.(*tls.Conn).Handshake()
		held <- c // reads the CONNECT request, never answers
	}()
	_, err = mux.Dial(t.Context(), "ws://127.0.0.1:1/", &mux.DialOptions{
		Proxy:            http.ProxyURL(&url.URL{Scheme: "https", Host: ln.Addr().String(), User: url.UserPassword("tok-user", "pw")}),
		ProxyTLSConfig:   &tls.Config{RootCAs: ca.Pool},
		HandshakeTimeout: 200 * time.Millisecond,
	})
	if !errors.Is(err, mux.ErrHandshakeTimeout) {
		t.Fatalf("dial: %v, want ErrHandshakeTimeout", err)
	}
	if strings.Contains(err.Error(), "tok-user") || strings.Contains(err.Error(), "pw@") {
		t.Fatalf("error %q shows the proxy's credentials", err)
	}
	select {
	case c := <-held:
		c.Close()
	default:
	}
}
