package reconnect_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"net"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/wsplex/wsplex/internal/plextest"
	"github.com/wsplex/wsplex/mux"
	"github.com/wsplex/wsplex/reconnect"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// patience bounds waits for things that must happen, so that a bug fails
// the test instead of hanging it. It is not a timing assertion.
const patience = 10 * time.Second

// recv returns the next value from ch, or fails t after patience.
func recv[T any](t testing.TB, ch <-chan T, what string) T {
	t.Helper()
	select {
	case v := <-ch:
		return v
	case <-time.After(patience):
		t.Fatalf("timed out waiting for %s", what)
		panic("unreachable")
	}
}

// send sends v on ch without blocking the client's goroutine; ch must have
// room for every value a test expects.
func send[T any](ch chan<- T, v T) {
	select {
	case ch <- v:
	default:
	}
}

type change struct {
	state reconnect.State
	err   error
}

func (c change) String() string {
	if c.err == nil {
		return c.state.String()
	}
	return fmt.Sprintf("%s(%v)", c.state, c.err)
}

// recorder records what OnStateChange is told.
type recorder struct {
	mu      sync.Mutex
	changes []change
	notify  chan struct{}
}

func newRecorder() *recorder { return &recorder{notify: make(chan struct{}, 1)} }

func (r *recorder) hook(st reconnect.State, err error) {
	r.mu.Lock()
	r.changes = append(r.changes, change{st, err})
	r.mu.Unlock()
	send(r.notify, struct{}{})
}

func (r *recorder) all() []change {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.changes)
}

// wait waits until ok accepts the changes so far, and returns them.
func (r *recorder) wait(t testing.TB, what string, ok func([]change) bool) []change {
	t.Helper()
	timeout := time.After(patience)
	for {
		cs := r.all()
		if ok(cs) {
			return cs
		}
		select {
		case <-r.notify:
		case <-timeout:
			t.Fatalf("timed out waiting for %s; changes: %v", what, cs)
		}
	}
}

// count returns how many changes are to st.
func count(cs []change, st reconnect.State) int {
	n := 0
	for _, c := range cs {
		if c.state == st {
			n++
		}
	}
	return n
}

func atLeast(n int, st reconnect.State) func([]change) bool {
	return func(cs []change) bool { return count(cs, st) >= n }
}

// newClient returns a Client for url with short delays unless opts sets
// them, closed when the test ends.
func newClient(t testing.TB, url string, opts *reconnect.Options) *reconnect.Client {
	t.Helper()
	var o reconnect.Options
	if opts != nil {
		o = *opts
	}
	if o.MinDelay == 0 {
		o.MinDelay = 2 * time.Millisecond
	}
	if o.MaxDelay == 0 {
		o.MaxDelay = 50 * time.Millisecond
	}
	c, err := reconnect.New(url, &o)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// newEchoServer serves echo on loopback and hands each server-side session
// to the returned channel (up to 16).
func newEchoServer(t testing.TB) (*plextest.Server, <-chan *mux.Session) {
	t.Helper()
	sessions := make(chan *mux.Session, 16)
	srv := plextest.NewServer(t, func(s *mux.Session) {
		send(sessions, s)
		plextest.Echo(s)
	}, nil)
	return srv, sessions
}

// refusedURL returns a ws:// URL on loopback where nothing listens.
func refusedURL(t testing.TB) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	return "ws://" + addr + "/"
}

func TestConnect(t *testing.T) {
	srv, _ := newEchoServer(t)
	rec := newRecorder()
	entered := make(chan *mux.Session, 16)
	release := make(chan struct{})
	hookErr := make(chan error, 16)
	c := newClient(t, srv.URL, &reconnect.Options{
		OnConnect: func(ctx context.Context, s *mux.Session) error {
			send(entered, s)
			<-release
			send(hookErr, plextest.Echoes(s, "from OnConnect"))
			return nil
		},
		OnStateChange: rec.hook,
	})

	s := recv(t, entered, "OnConnect")
	// Until OnConnect returns, the session is not handed out.
	cancelled, cancel := context.WithCancel(t.Context())
	cancel()
	if got, err := c.Session(cancelled); !errors.Is(err, context.Canceled) {
		t.Fatalf("Session during OnConnect = %v, %v; want context.Canceled", got, err)
	}
	if st := c.State(); st != reconnect.Connecting {
		t.Fatalf("State during OnConnect = %v, want connecting", st)
	}
	close(release)
	if err := recv(t, hookErr, "echo in OnConnect"); err != nil {
		t.Fatalf("echo in OnConnect: %v", err)
	}

	got, err := c.Session(t.Context())
	if err != nil {
		t.Fatalf("Session: %v", err)
	}
	if got != s {
		t.Fatal("Session returned another session than OnConnect got")
	}
	plextest.CheckEcho(t, got, "from the test")
	rec.wait(t, "connected", atLeast(1, reconnect.Connected))
	if st := c.State(); st != reconnect.Connected {
		t.Fatalf("State = %v, want connected", st)
	}

	if err := c.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	if err := c.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
	if n := len(entered); n != 0 {
		t.Errorf("OnConnect ran %d more times", n)
	}
	want := []change{{reconnect.Connecting, nil}, {reconnect.Connected, nil}, {reconnect.Closed, nil}}
	if cs := rec.all(); !slices.Equal(cs, want) {
		t.Errorf("changes = %v, want %v", cs, want)
	}
	select {
	case <-s.Done():
	default:
		t.Error("session still open after Close")
	}
}

func TestServerKillsSession(t *testing.T) {
	srv, sessions := newEchoServer(t)
	rec := newRecorder()
	connected := make(chan *mux.Session, 16)
	c := newClient(t, srv.URL, &reconnect.Options{
		OnConnect: func(_ context.Context, s *mux.Session) error {
			send(connected, s)
			return nil
		},
		OnStateChange: rec.hook,
	})
	s1 := recv(t, connected, "first OnConnect")
	server1 := recv(t, sessions, "first server session")
	if got, err := c.Session(t.Context()); err != nil || got != s1 {
		t.Fatalf("Session = %p, %v; want %p", got, err, s1)
	}

	// Keep bytes moving both ways while the server kills the session.
	st, writeErr := trafficOn(t, s1)
	readErr := make(chan error, 1)
	go func() {
		buf := make([]byte, 16<<10)
		for {
			if _, err := st.Read(buf); err != nil {
				readErr <- err
				return
			}
		}
	}()
	server1.Close()

	for _, e := range []struct {
		op string
		ch <-chan error
	}{{"Read", readErr}, {"Write", writeErr}} {
		if err := recv(t, e.ch, e.op+" error"); !errors.Is(err, mux.ErrSessionClosed) {
			t.Errorf("%s on a killed session: %v, want mux.ErrSessionClosed", e.op, err)
		}
	}

	s2 := recv(t, connected, "second OnConnect")
	if s2 == s1 {
		t.Fatal("OnConnect got the dead session again")
	}
	got, err := c.Session(t.Context())
	if err != nil || got != s2 {
		t.Fatalf("Session = %p, %v; want the new session %p", got, err, s2)
	}
	plextest.CheckEcho(t, got, "after the kill")
	cs := rec.wait(t, "reconnection", atLeast(2, reconnect.Connected))
	i := slices.IndexFunc(cs, func(c change) bool { return c.state == reconnect.Waiting })
	if i < 1 || cs[i-1].state != reconnect.Connected || s1.Err() == nil || !errors.Is(cs[i].err, s1.Err()) {
		t.Errorf("changes = %v, want connected, then waiting with why the session ended (%v)", cs, s1.Err())
	}
}

func TestSessionSkipsEndedSession(t *testing.T) {
	srv, sessions := newEchoServer(t)
	connected := make(chan struct{}, 16)
	release := make(chan struct{})
	c := newClient(t, srv.URL, &reconnect.Options{
		OnStateChange: func(st reconnect.State, _ error) {
			if st == reconnect.Connected {
				send(connected, struct{}{})
				<-release // hold the client's goroutine
			}
		},
	})
	defer close(release)
	recv(t, connected, "connected")
	s, err := c.Session(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	recv(t, sessions, "server session").Close()
	recv(t, s.Done(), "the session to end")
	// The client has not yet seen the end; Session must not hand it out.
	cancelled, cancel := context.WithCancel(t.Context())
	cancel()
	if got, err := c.Session(cancelled); !errors.Is(err, context.Canceled) {
		t.Fatalf("Session = %p, %v; want context.Canceled, not the ended session %p", got, err, s)
	}
}

// startEchoServer serves echo with a new Handler on l.
func startEchoServer(t testing.TB, l net.Listener) (*httptest.Server, *mux.Handler) {
	t.Helper()
	h, err := mux.NewHandler(plextest.Echo, nil)
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewUnstartedServer(h)
	srv.Listener.Close()
	srv.Listener = l
	srv.Start()
	t.Cleanup(func() {
		h.Close()
		srv.Close()
	})
	return srv, h
}

func TestServerDownAndBack(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	srv, h := startEchoServer(t, l)
	rec := newRecorder()
	var logs plextest.LogBuffer
	c := newClient(t, "ws://"+addr+"/", &reconnect.Options{
		Dial:          mux.DialOptions{Options: mux.Options{Logger: slog.New(slog.NewTextHandler(&logs, nil))}},
		OnStateChange: rec.hook,
	})
	rec.wait(t, "connected", atLeast(1, reconnect.Connected))

	// Stop the server: its sessions end and nothing listens any more.
	h.Close()
	srv.Close()
	const retries = 3
	cs := rec.wait(t, "failed retries", func(cs []change) bool {
		return count(cs, reconnect.Waiting) > retries
	})
	for _, c := range cs {
		if c.state == reconnect.Waiting && c.err == nil {
			t.Errorf("waiting without an error: %v", cs)
		}
	}
	// Each retry dials again: waiting and connecting alternate.
	for i, c := range cs[2:] {
		want := reconnect.Waiting
		if i%2 == 1 {
			want = reconnect.Connecting
		}
		if c.state != want {
			t.Fatalf("changes = %v, want waiting and connecting in turn after connected", cs)
		}
	}
	if !strings.Contains(logs.String(), "level=WARN msg=\"wsplex/reconnect: waiting to redial\"") {
		t.Errorf("log lacks the failed attempts:\n%s", logs.String())
	}

	// Start a server on the same address: the client comes back.
	l, err = net.Listen("tcp", addr)
	if err != nil {
		t.Fatalf("listening again on %s: %v", addr, err)
	}
	startEchoServer(t, l)
	rec.wait(t, "reconnection", atLeast(2, reconnect.Connected))
	s, err := c.Session(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	plextest.CheckEcho(t, s, "back again")
}

func TestCloseInterruptsWait(t *testing.T) {
	ignore := goleak.IgnoreCurrent()
	rec := newRecorder()
	c := newClient(t, refusedURL(t), &reconnect.Options{
		MinDelay:      time.Hour,
		MaxDelay:      time.Hour,
		OnStateChange: rec.hook,
	})
	rec.wait(t, "a failed dial", atLeast(1, reconnect.Waiting))

	closed := make(chan error, 1)
	go func() { closed <- c.Close() }()
	if err := recv(t, closed, "Close"); err != nil {
		t.Fatalf("Close: %v", err)
	}
	checkClosed(t, c, rec)
	goleak.VerifyNone(t, ignore)
}

// checkClosed checks a client after Close.
func checkClosed(t testing.TB, c *reconnect.Client, rec *recorder) {
	t.Helper()
	if s, err := c.Session(t.Context()); !errors.Is(err, reconnect.ErrClosed) || !errors.Is(err, net.ErrClosed) {
		t.Errorf("Session after Close = %v, %v; want ErrClosed", s, err)
	}
	if st := c.State(); st != reconnect.Closed {
		t.Errorf("State after Close = %v", st)
	}
	if cs := rec.all(); len(cs) == 0 || cs[len(cs)-1] != (change{reconnect.Closed, nil}) || count(cs, reconnect.Closed) != 1 {
		t.Errorf("changes = %v, want one closed, last", cs)
	}
}

// silentListener accepts connections on loopback and never answers. Each
// accepted connection is sent on the returned channel; all are closed when
// the test ends, before clients made later are closed.
func silentListener(t testing.TB) (net.Listener, <-chan net.Conn) {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	accepted := make(chan net.Conn, 16)
	var (
		mu    sync.Mutex
		conns []net.Conn
		wg    sync.WaitGroup
	)
	wg.Go(func() {
		for {
			conn, err := l.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns = append(conns, conn)
			mu.Unlock()
			send(accepted, conn)
		}
	})
	t.Cleanup(func() {
		l.Close()
		wg.Wait()
		for _, conn := range conns {
			conn.Close()
		}
	})
	return l, accepted
}

func TestCloseInterruptsDial(t *testing.T) {
	ignore := goleak.IgnoreCurrent()
	l, accepted := silentListener(t)
	rec := newRecorder()
	c := newClient(t, "ws://"+l.Addr().String()+"/", &reconnect.Options{
		Dial:          mux.DialOptions{HandshakeTimeout: time.Hour},
		OnStateChange: rec.hook,
	})
	recv(t, accepted, "the dial")

	closed := make(chan error, 1)
	go func() { closed <- c.Close() }()
	recv(t, closed, "Close")
	checkClosed(t, c, rec)
	// The interrupted dial is no failure to report.
	want := []change{{reconnect.Connecting, nil}, {reconnect.Closed, nil}}
	if cs := rec.all(); !slices.Equal(cs, want) {
		t.Errorf("changes = %v, want %v", cs, want)
	}
	goleak.VerifyNone(t, ignore, goleak.IgnoreAnyFunction("net.(*netFD).accept")) // silentListener's
}

// TestCloseFromHook stops the client from its hooks, the documented way:
// go c.Close().
func TestCloseFromHook(t *testing.T) {
	srv, _ := newEchoServer(t)
	tests := []struct {
		name string
		url  string
		opts func(closeClient func()) *reconnect.Options
		want []change
	}{{
		name: "OnStateChange",
		url:  refusedURL(t),
		opts: func(closeClient func()) *reconnect.Options {
			return &reconnect.Options{OnStateChange: func(st reconnect.State, _ error) {
				if st == reconnect.Waiting {
					closeClient()
				}
			}}
		},
	}, {
		name: "OnConnect",
		url:  srv.URL,
		opts: func(closeClient func()) *reconnect.Options {
			return &reconnect.Options{OnConnect: func(ctx context.Context, _ *mux.Session) error {
				closeClient()
				<-ctx.Done() // Close ends the session
				return nil
			}}
		},
	}}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var client atomic.Pointer[reconnect.Client]
			created := make(chan struct{})
			returned := make(chan struct{}, 16)
			opts := tc.opts(func() {
				<-created
				go func() {
					client.Load().Close()
					send(returned, struct{}{})
				}()
			})
			rec := newRecorder()
			hook := opts.OnStateChange
			opts.OnStateChange = func(st reconnect.State, err error) {
				if hook != nil {
					hook(st, err)
				}
				rec.hook(st, err)
			}
			client.Store(newClient(t, tc.url, opts))
			close(created)
			recv(t, returned, "Close in the hook")
			rec.wait(t, "closed", atLeast(1, reconnect.Closed))
			checkClosed(t, client.Load(), rec)
			if n := count(rec.all(), reconnect.Connected); n != 0 {
				t.Errorf("%d sessions handed out after Close", n)
			}
		})
	}
}

func TestSessionContextEnds(t *testing.T) {
	rec := newRecorder()
	c := newClient(t, refusedURL(t), &reconnect.Options{OnStateChange: rec.hook})
	ctx, cancel := context.WithCancel(t.Context())
	errc := make(chan error, 1)
	go func() {
		_, err := c.Session(ctx)
		errc <- err
	}()
	rec.wait(t, "a failed dial", atLeast(1, reconnect.Waiting))
	cancel()
	err := recv(t, errc, "Session")
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("Session = %v, want context.Canceled", err)
	}
	// It says why there is no session.
	if !strings.Contains(err.Error(), "connection refused") {
		t.Errorf("Session's error %q does not say why the last dial failed", err)
	}
}

func TestOnConnectError(t *testing.T) {
	srv, _ := newEchoServer(t)
	errNotReady := errors.New("not ready")
	rec := newRecorder()
	sessions := make(chan *mux.Session, 16)
	calls := 0 // only the client's goroutine touches it
	c := newClient(t, srv.URL, &reconnect.Options{
		OnConnect: func(_ context.Context, s *mux.Session) error {
			send(sessions, s)
			calls++
			if calls == 1 {
				return errNotReady
			}
			return nil
		},
		OnStateChange: rec.hook,
	})
	s1 := recv(t, sessions, "first OnConnect")
	s2 := recv(t, sessions, "second OnConnect")
	recv(t, s1.Done(), "the refused session to close")
	got, err := c.Session(t.Context())
	if err != nil || got != s2 {
		t.Fatalf("Session = %p, %v; want the second session %p", got, err, s2)
	}
	plextest.CheckEcho(t, got, "second time lucky")
	cs := rec.wait(t, "connected", atLeast(1, reconnect.Connected))
	if len(cs) != 4 || cs[1].state != reconnect.Waiting || !errors.Is(cs[1].err, errNotReady) || cs[3].state != reconnect.Connected {
		t.Errorf("changes = %v, want connecting, waiting(OnConnect error), connecting, connected", cs)
	}
}

func TestBackoffResets(t *testing.T) {
	// A server that ends every session at once.
	dropping := plextest.NewServer(t, func(*mux.Session) {}, nil)
	tests := []struct {
		name     string
		url      string
		min, max time.Duration
		want     []int
	}{
		{"refused dials", refusedURL(t), time.Millisecond, time.Hour, []int{0, 1, 2, 3}},
		{"sessions shorter than MaxDelay", dropping.URL, time.Millisecond, time.Hour, []int{0, 1, 2, 3}},
		{"sessions that lasted MaxDelay", dropping.URL, time.Nanosecond, time.Nanosecond, []int{0, 0, 0, 0}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			retries := make(chan int, 64)
			c, err := reconnect.NewWithDelay(tc.url, &reconnect.Options{MinDelay: tc.min, MaxDelay: tc.max},
				func(n int) time.Duration {
					send(retries, n)
					return 0
				})
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			var got []int
			for range tc.want {
				got = append(got, recv(t, retries, "a retry"))
			}
			if !slices.Equal(got, tc.want) {
				t.Errorf("retries = %v, want %v", got, tc.want)
			}
		})
	}
}

func TestBackoffBounds(t *testing.T) {
	tests := []struct {
		name     string
		min, max time.Duration
	}{
		{"defaults", 100 * time.Millisecond, 30 * time.Second},
		{"min is max", time.Second, time.Second},
		{"nanoseconds", time.Nanosecond, time.Microsecond},
		{"huge", 1 << 61, 1<<63 - 1},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			for n := range 21 {
				bound := tc.max
				if n < 62 && tc.min <= tc.max>>n {
					bound = min(tc.max, tc.min<<n)
				}
				seen := make(map[time.Duration]bool)
				for range 1000 {
					d := reconnect.Backoff(n, tc.min, tc.max)
					if d < 0 || d >= bound {
						t.Fatalf("Backoff(%d) = %v, want in [0, %v)", n, d, bound)
					}
					seen[d] = true
				}
				if bound > 1 && len(seen) == 1 {
					t.Errorf("Backoff(%d) always %v: no jitter", n, slices.Collect(maps.Keys(seen)))
				}
			}
			if d := reconnect.Backoff(1000, tc.min, tc.max); d < 0 || d >= tc.max {
				t.Errorf("Backoff(1000) = %v, want in [0, %v)", d, tc.max)
			}
		})
	}
}

func TestNew(t *testing.T) {
	url := refusedURL(t)
	tests := []struct {
		name     string
		url      string
		opts     *reconnect.Options
		min, max time.Duration // after defaults
	}{
		{"nil options", url, nil, 100 * time.Millisecond, 30 * time.Second},
		{"long MinDelay", url, &reconnect.Options{MinDelay: time.Minute}, time.Minute, time.Minute},
		{"http scheme", "http://localhost/", nil, 0, 0},
		{"bad url", "ws://[::1", nil, 0, 0},
		{"negative MinDelay", "ws://localhost/", &reconnect.Options{MinDelay: -1}, 0, 0},
		{"MaxDelay below MinDelay", "ws://localhost/", &reconnect.Options{MinDelay: time.Second, MaxDelay: time.Millisecond}, 0, 0},
		{"bad session options", "ws://localhost/", &reconnect.Options{Dial: mux.DialOptions{Options: mux.Options{WindowSize: 1}}}, 0, 0},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c, err := reconnect.New(tc.url, tc.opts)
			if tc.max == 0 {
				if err == nil {
					c.Close()
					t.Fatal("New accepted it")
				}
				if !strings.HasPrefix(err.Error(), "wsplex/") {
					t.Errorf("error %q lacks the package prefix", err)
				}
				return
			}
			if err != nil {
				t.Fatalf("New: %v", err)
			}
			c.Close()
			lo, hi, err := reconnect.Delays(tc.opts)
			if err != nil || lo != tc.min || hi != tc.max {
				t.Errorf("delays = %v, %v, %v; want %v, %v", lo, hi, err, tc.min, tc.max)
			}
		})
	}
}

func TestStateString(t *testing.T) {
	for st, want := range map[reconnect.State]string{
		reconnect.Connecting: "connecting",
		reconnect.Connected:  "connected",
		reconnect.Waiting:    "waiting",
		reconnect.Closed:     "closed",
		reconnect.State(9):   "State(9)",
	} {
		if got := st.String(); got != want {
			t.Errorf("%d.String() = %q, want %q", int(st), got, want)
		}
	}
}

// TestBeforeDialRefreshesTheToken serves a server that accepts only a
// token newer than the first: the client's BeforeDial hands out a fresh
// one per dial, so the second attempt gets in.
func TestBeforeDialRefreshesTheToken(t *testing.T) {
	srv := plextest.NewServer(t, plextest.Echo, &mux.HandlerOptions{
		Authenticate: func(r *http.Request) (any, error) {
			if tok := mux.BearerToken(r); tok != "token-1" {
				return tok, nil
			}
			return nil, mux.Refuse(http.StatusUnauthorized, "token expired")
		},
	})
	var issued atomic.Int32
	rec := newRecorder()
	c := newClient(t, srv.URL, &reconnect.Options{
		Dial: mux.DialOptions{Header: http.Header{"X-Fixed": {"kept"}}},
		BeforeDial: func(_ context.Context, o *mux.DialOptions) error {
			if o.Header.Get("X-Fixed") != "kept" {
				return errors.New("BeforeDial lost the configured headers")
			}
			o.Header.Set("Authorization", fmt.Sprintf("Bearer token-%d", issued.Add(1)))
			return nil
		},
		OnStateChange: rec.hook,
	})
	s, err := c.Session(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	plextest.CheckEcho(t, s, "with a fresh token")
	cs := rec.all()
	var re *mux.RefusedError
	if i := slices.IndexFunc(cs, func(c change) bool { return c.state == reconnect.Waiting }); i < 0 || !errors.As(cs[i].err, &re) || re.Message != "token expired" {
		t.Fatalf("changes = %v, want the expired token's refusal first", cs)
	}
	if n := issued.Load(); n != 2 {
		t.Fatalf("BeforeDial ran %d times, want 2", n)
	}
}

// trafficOn opens a stream on s to a server running plextest.Echo and
// keeps writing to it until a write fails, which it reports on the
// channel; it returns once 256 KiB came back, so traffic is flowing.
func trafficOn(t *testing.T, s *mux.Session) (*mux.Stream, <-chan error) {
	t.Helper()
	st, err := s.Open(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	writeErr := make(chan error, 1)
	go func() {
		buf := make([]byte, 16<<10)
		for {
			if _, err := st.Write(buf); err != nil {
				writeErr <- err
				return
			}
		}
	}()
	if _, err := io.ReadFull(st, make([]byte, 256<<10)); err != nil {
		t.Fatalf("reading the echo: %v", err)
	}
	return st, writeErr
}

// SessionFailFast fails at once while the client waits to dial again, and
// waits for a dial under way.
func TestSessionFailFast(t *testing.T) {
	rec := newRecorder()
	c := newClient(t, refusedURL(t), &reconnect.Options{MinDelay: time.Hour, MaxDelay: time.Hour, OnStateChange: rec.hook})
	rec.wait(t, "a failed dial", atLeast(1, reconnect.Waiting))
	ctx, cancel := context.WithTimeout(t.Context(), patience)
	defer cancel()
	_, err := c.SessionFailFast(ctx)
	if !errors.Is(err, reconnect.ErrNoSession) || ctx.Err() != nil || !strings.Contains(err.Error(), "refused") {
		t.Fatalf("SessionFailFast while waiting: %v, want ErrNoSession with the dial's error", err)
	}

	srv, _ := newEchoServer(t)
	live := newClient(t, srv.URL, nil)
	s, err := live.SessionFailFast(ctx)
	if err != nil {
		t.Fatalf("SessionFailFast while dialing: %v", err)
	}
	plextest.CheckEcho(t, s, "fail fast")
	live.Close()
	if _, err := live.SessionFailFast(ctx); !errors.Is(err, reconnect.ErrClosed) {
		t.Fatalf("after Close: %v", err)
	}
}
