package wsplex_test

// Cross-stack benchmarks: wsplex against what a user would pick instead,
// side by side in one run. Compare ratios within one run (BENCHMARKS.md):
//
//	go test -run '^$' -bench . -count 6 . | tee new.txt && benchstat new.txt

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"runtime"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	coderws "github.com/coder/websocket"
	"github.com/gorilla/websocket"
	"github.com/hashicorp/yamux"
	"google.golang.org/protobuf/types/known/wrapperspb"

	"github.com/wsplex/wsplex/internal/plextest"
	"github.com/wsplex/wsplex/mux"
	"github.com/wsplex/wsplex/stream"
)

var sizes = []struct {
	name string
	n    int
}{{"1KiB", 1 << 10}, {"16KiB", 16 << 10}, {"64KiB", 64 << 10}, {"256KiB", 256 << 10}, {"1MiB", 1 << 20}}

// pair is two connected ends of one byte stream, closed by close.
type pair struct {
	client, server io.ReadWriter
	close          func()
}

// impl makes a pair for one of the stacks under comparison.
type impl struct {
	name string
	make func(b *testing.B) pair
}

var byteImpls = []impl{
	{"tcp", tcpPair},
	{"yamux-tcp", yamuxTCPPair},
	{"gorilla", gorillaPair},
	{"diy", diyPair},
	{"coder-yamux", coderYamuxPair},
	{"wsplex-raw", wsplexRawPair},
}

func BenchmarkThroughput(b *testing.B) {
	for _, im := range byteImpls {
		for _, sz := range sizes {
			b.Run(im.name+"/"+sz.name, func(b *testing.B) {
				p := im.make(b)
				defer p.close()
				benchBulk(b, sz.n, func(buf []byte) error { _, err := p.client.Write(buf); return err },
					func(buf []byte) error { _, err := io.ReadFull(p.server, buf); return err })
			})
		}
	}
	for _, sz := range sizes {
		b.Run("wsplex-msg/"+sz.name, func(b *testing.B) {
			c, s, done := wsplexMsgPair(b)
			defer done()
			send := wrapperspb.Bytes(nil)
			var recv wrapperspb.BytesValue
			benchBulk(b, sz.n, func(buf []byte) error { send.Value = buf; return c.Send(send) },
				func([]byte) error { return s.Receive(&recv) })
		})
	}
}

// benchBulk writes size bytes per op on one side while the other side
// reads them, and waits for the reader to finish. It loops over b.N rather
// than b.Loop because the reader must know the count up front.
func benchBulk(b *testing.B, size int, write, read func([]byte) error) {
	b.SetBytes(int64(size))
	b.ReportAllocs()
	done := make(chan error, 1)
	go func() {
		buf := make([]byte, size)
		for range b.N {
			if err := read(buf); err != nil {
				done <- err
				return
			}
		}
		done <- nil
	}()
	buf := make([]byte, size)
	b.ResetTimer()
	for range b.N {
		if err := write(buf); err != nil {
			b.Fatal(err)
		}
	}
	if err := <-done; err != nil {
		b.Fatal(err)
	}
}

func BenchmarkPingPong(b *testing.B) {
	for _, im := range byteImpls {
		b.Run(im.name, func(b *testing.B) {
			p := im.make(b)
			defer p.close()
			go func() {
				buf := make([]byte, 64)
				for {
					if _, err := io.ReadFull(p.server, buf); err != nil {
						return
					}
					if _, err := p.server.Write(buf); err != nil {
						return
					}
				}
			}()
			buf := make([]byte, 64)
			b.ReportAllocs()
			for b.Loop() {
				if _, err := p.client.Write(buf); err != nil {
					b.Fatal(err)
				}
				if _, err := io.ReadFull(p.client, buf); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
	b.Run("wsplex-msg", func(b *testing.B) {
		c, s, done := wsplexMsgPair(b)
		defer done()
		go func() {
			var m wrapperspb.BytesValue
			for s.Receive(&m) == nil && s.Send(&m) == nil {
			}
		}()
		msg := wrapperspb.Bytes(make([]byte, 64))
		var got wrapperspb.BytesValue
		b.ReportAllocs()
		for b.Loop() {
			if err := c.Send(msg); err != nil {
				b.Fatal(err)
			}
			if err := c.Receive(&got); err != nil {
				b.Fatal(err)
			}
		}
	})
}

func BenchmarkStreamOpen(b *testing.B) {
	b.Run("yamux-tcp", func(b *testing.B) {
		client, server, done := yamuxTCPSessions(b, nil)
		defer done()
		go echoYamux(server)
		buf := make([]byte, 1)
		b.ReportAllocs()
		for b.Loop() {
			s, err := client.Open()
			if err != nil {
				b.Fatal(err)
			}
			s.Write(buf)
			if _, err := io.ReadFull(s, buf); err != nil {
				b.Fatal(err)
			}
			s.Close()
		}
	})
	b.Run("ws-per-stream", func(b *testing.B) {
		up := websocket.Upgrader{}
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			ws, err := up.Upgrade(w, r, nil)
			if err != nil {
				return
			}
			defer ws.Close()
			typ, m, err := ws.ReadMessage()
			if err == nil {
				ws.WriteMessage(typ, m)
				ws.ReadMessage() // until the client closes
			}
		}))
		defer srv.Close()
		url := wsURL(srv.URL)
		b.ReportAllocs()
		for b.Loop() {
			ws, _, err := websocket.DefaultDialer.Dial(url, nil)
			if err != nil {
				b.Fatal(err)
			}
			ws.WriteMessage(websocket.BinaryMessage, []byte{1})
			if _, _, err := ws.ReadMessage(); err != nil {
				b.Fatal(err)
			}
			ws.Close()
		}
	})
	b.Run("wsplex", func(b *testing.B) {
		routes := stream.NewRouter(nil)
		routes.HandleFunc("/echo", echoMessages)
		sess, done := wsplexSession(b, routes, nil)
		defer done()
		msg := wrapperspb.Bytes([]byte{1})
		b.ReportAllocs()
		for b.Loop() {
			s, err := stream.Open(context.Background(), sess, "/echo", nil)
			if err != nil {
				b.Fatal(err)
			}
			s.Send(msg)
			if err := s.Receive(msg); err != nil {
				b.Fatal(err)
			}
			s.Close()
		}
	})
}

func BenchmarkManyStreams(b *testing.B) {
	const size = 16 << 10
	for _, n := range []int{10, 100, 1000} {
		b.Run(fmt.Sprintf("yamux-tcp/streams=%d", n), func(b *testing.B) {
			client, server, done := yamuxTCPSessions(b, nil)
			defer done()
			go echoYamux(server)
			streams := make([]io.ReadWriter, n)
			for i := range streams {
				s, err := client.Open()
				if err != nil {
					b.Fatal(err)
				}
				defer s.Close()
				streams[i] = s
			}
			benchMany(b, streams, size)
		})
		b.Run(fmt.Sprintf("wsplex/streams=%d", n), func(b *testing.B) {
			routes := stream.NewRouter(nil)
			routes.HandleFunc("/echo", func(ctx context.Context, s *stream.Stream) error {
				_, err := io.Copy(s, s)
				return err
			})
			sess, done := wsplexSession(b, routes, nil)
			defer done()
			streams := make([]io.ReadWriter, n)
			for i := range streams {
				s, err := stream.Open(context.Background(), sess, "/echo", nil)
				if err != nil {
					b.Fatal(err)
				}
				defer s.Close()
				streams[i] = s
			}
			benchMany(b, streams, size)
		})
	}
}

// benchMany echoes size bytes through every stream at once per op.
func benchMany(b *testing.B, streams []io.ReadWriter, size int) {
	b.SetBytes(int64(len(streams) * size))
	b.ReportAllocs()
	for b.Loop() {
		var wg sync.WaitGroup
		errs := make(chan error, len(streams))
		for _, s := range streams {
			wg.Add(2)
			go func() {
				defer wg.Done()
				buf := make([]byte, size)
				if _, err := s.Write(buf); err != nil {
					errs <- err
				}
			}()
			go func() {
				defer wg.Done()
				buf := make([]byte, size)
				if _, err := io.ReadFull(s, buf); err != nil {
					errs <- err
				}
			}()
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			b.Fatal(err)
		}
	}
}

func BenchmarkHeadOfLine(b *testing.B) {
	b.Run("wsplex", func(b *testing.B) {
		routes := stream.NewRouter(nil)
		routes.HandleFunc("/sink", func(ctx context.Context, s *stream.Stream) error {
			_, err := io.Copy(io.Discard, s)
			return err
		})
		routes.HandleFunc("/echo", func(ctx context.Context, s *stream.Stream) error {
			_, err := io.Copy(s, s)
			return err
		})
		sess, done := wsplexSession(b, routes, nil)
		defer done()
		bulk, err := stream.Open(context.Background(), sess, "/sink", nil)
		if err != nil {
			b.Fatal(err)
		}
		stop := make(chan struct{})
		saturated := make(chan struct{})
		go func() {
			buf := make([]byte, 256<<10)
			first := true
			for {
				select {
				case <-stop:
					return
				default:
				}
				if _, err := bulk.Write(buf); err != nil {
					return
				}
				if first {
					close(saturated)
					first = false
				}
			}
		}()
		<-saturated
		ping, err := stream.Open(context.Background(), sess, "/echo", nil)
		if err != nil {
			b.Fatal(err)
		}
		buf := make([]byte, 64)
		var lat []time.Duration
		b.ReportAllocs()
		for b.Loop() {
			start := time.Now()
			if _, err := ping.Write(buf); err != nil {
				b.Fatal(err)
			}
			if _, err := io.ReadFull(ping, buf); err != nil {
				b.Fatal(err)
			}
			lat = append(lat, time.Since(start))
		}
		close(stop)
		bulk.Close()
		ping.Close()
		slices.Sort(lat)
		b.ReportMetric(float64(lat[len(lat)/2]), "p50-ns")
		b.ReportMetric(float64(lat[len(lat)*99/100]), "p99-ns")
	})
}

// BenchmarkCompression sends text-heavy protobuf messages (JSON-like
// records in a StringValue) with permessage-deflate off and on, and reports
// the bytes the client wrote to TCP per message.
func BenchmarkCompression(b *testing.B) {
	for _, mode := range []string{"off", "deflate"} {
		for _, sz := range []int{0, 1, 3} { // 1 KiB, 16 KiB, 256 KiB
			sz := sizes[sz]
			b.Run(mode+"/"+sz.name, func(b *testing.B) {
				var wire wireCounter
				o := mux.Options{Compression: mode == "deflate"}
				routes := stream.NewRouter(nil)
				routes.HandleFunc("/sink", func(ctx context.Context, s *stream.Stream) error {
					var m wrapperspb.StringValue
					for {
						if err := s.Receive(&m); err != nil {
							return nil
						}
					}
				})
				h, err := mux.NewHandler(func(s *mux.Session) { routes.Serve(s) }, &mux.HandlerOptions{Options: o})
				if err != nil {
					b.Fatal(err)
				}
				srv := httptest.NewServer(h)
				defer srv.Close()
				defer h.Close()
				sess, err := mux.Dial(context.Background(), wsURL(srv.URL), &mux.DialOptions{Options: o, NetDialContext: wire.dial})
				if err != nil {
					b.Fatal(err)
				}
				defer sess.Close()
				s, err := stream.Open(context.Background(), sess, "/sink", nil)
				if err != nil {
					b.Fatal(err)
				}
				defer s.Close()
				// Consecutive messages differ, as a log or chat feed's do:
				// frames that share a WebSocket message are compressed
				// together, and copies of one message would flatter that.
				var msgs []*wrapperspb.StringValue
				for k := range 64 {
					text := make([]byte, 0, sz.n)
					for i := k * 1000; len(text) < sz.n; i++ {
						text = fmt.Appendf(text, `{"id":%d,"user":"user-%d","room":"lobby","text":"hello from the benchmark"},`, i, i%50)
					}
					msgs = append(msgs, wrapperspb.String(string(text[:sz.n])))
				}
				b.SetBytes(int64(sz.n))
				b.ReportAllocs()
				start := wire.n.Load()
				i := 0
				for b.Loop() {
					if err := s.Send(msgs[i%len(msgs)]); err != nil {
						b.Fatal(err)
					}
					i++
				}
				b.ReportMetric(float64(wire.n.Load()-start)/float64(b.N), "wire-B/op")
			})
		}
	}
}

// wireCounter counts what a client writes to its TCP connection.
type wireCounter struct{ n atomic.Int64 }

func (w *wireCounter) dial(ctx context.Context, network, addr string) (net.Conn, error) {
	c, err := (&net.Dialer{}).DialContext(ctx, network, addr)
	if err != nil {
		return nil, err
	}
	return &countedConn{Conn: c, n: &w.n}, nil
}

type countedConn struct {
	net.Conn
	n *atomic.Int64
}

func (c *countedConn) Write(p []byte) (int, error) {
	n, err := c.Conn.Write(p)
	c.n.Add(int64(n))
	return n, err
}

// BenchmarkIdle reports what idle sessions and streams hold, both ends
// together: B/session and goroutines/session for 100 sessions, B/stream
// for 1000 streams opened by the client and accepted (and held, with no
// goroutine) by the server, as yamux's own streams are. For wsplex it also
// reports B/handled-stream: 1000 named streams, each served by a Router
// handler goroutine that waits, which is what a server built on package
// stream pays. Each figure is the median over the benchmark's iterations;
// B/stream counts heap only, since no goroutine is started for the streams
// and the stacks of the sessions' goroutines shrink and grow on their own.
func BenchmarkIdle(b *testing.B) {
	const sessions, streams = 100, 1000
	b.Run("yamux-tcp", func(b *testing.B) {
		m := newMedians(b)
		defer m.report()
		for b.Loop() {
			ln, err := net.Listen("tcp", "127.0.0.1:0")
			if err != nil {
				b.Fatal(err)
			}
			accepted := make(chan *yamux.Session, sessions)
			go func() {
				for {
					c, err := ln.Accept()
					if err != nil {
						return
					}
					s, err := yamux.Server(c, nil)
					if err != nil {
						b.Error(err)
						return
					}
					accepted <- s
				}
			}()
			h0, s0, g0 := heapAndStack()
			var clients, servers []*yamux.Session
			for range sessions {
				c, err := net.Dial("tcp", ln.Addr().String())
				if err != nil {
					b.Fatal(err)
				}
				s, err := yamux.Client(c, nil)
				if err != nil {
					b.Fatal(err)
				}
				clients = append(clients, s)
				servers = append(servers, <-accepted)
			}
			h1, s1, g1 := heapAndStack()
			m.add(float64(h1+s1-h0-s0)/sessions, "B/session")
			m.add(float64(g1-g0)/sessions, "goroutines/session")

			var held []net.Conn
			for range streams {
				c, err := clients[0].OpenStream()
				if err != nil {
					b.Fatal(err)
				}
				s, err := servers[0].AcceptStream()
				if err != nil {
					b.Fatal(err)
				}
				held = append(held, c, s)
			}
			h2, _, _ := heapAndStack()
			// Heap only: no goroutine is started, and the stacks of the
			// sessions' goroutines shrink and grow on their own.
			m.add(float64(h2-h1)/streams, "B/stream")

			for _, c := range held {
				c.Close()
			}
			for i := range clients {
				clients[i].Close()
				servers[i].Close()
			}
			ln.Close()
		}
	})
	b.Run("wsplex", func(b *testing.B) {
		m := newMedians(b)
		defer m.report()
		for b.Loop() {
			routes := stream.NewRouter(nil)
			routes.HandleFunc("/idle", func(ctx context.Context, s *stream.Stream) error {
				<-ctx.Done()
				return nil
			})
			accepted := make(chan *mux.Session, sessions)
			h, err := mux.NewHandler(func(s *mux.Session) {
				accepted <- s
				<-s.Done()
			}, nil)
			if err != nil {
				b.Fatal(err)
			}
			srv := httptest.NewServer(h)
			url := wsURL(srv.URL)

			h0, s0, g0 := heapAndStack()
			var clients, servers []*mux.Session
			for range sessions {
				s, err := mux.Dial(context.Background(), url, nil)
				if err != nil {
					b.Fatal(err)
				}
				clients = append(clients, s)
				servers = append(servers, <-accepted)
			}
			h1, s1, g1 := heapAndStack()
			m.add(float64(h1+s1-h0-s0)/sessions, "B/session")
			m.add(float64(g1-g0)/sessions, "goroutines/session")

			var held []*mux.Stream
			for range streams {
				c, err := clients[0].Open(context.Background())
				if err != nil {
					b.Fatal(err)
				}
				s, err := servers[0].Accept(context.Background())
				if err != nil {
					b.Fatal(err)
				}
				held = append(held, c, s)
			}
			h2, s2, _ := heapAndStack()
			// Heap only: no goroutine is started, and the stacks of the
			// sessions' goroutines shrink and grow on their own.
			m.add(float64(h2-h1)/streams, "B/stream")

			go routes.Serve(servers[1])
			var named []*stream.Stream
			for range streams {
				s, err := stream.Open(context.Background(), clients[1], "/idle", nil)
				if err != nil {
					b.Fatal(err)
				}
				if _, err := s.Response(context.Background()); err != nil {
					b.Fatal(err)
				}
				named = append(named, s)
			}
			h3, s3, _ := heapAndStack()
			m.add(float64(h3+s3-h2-s2)/streams, "B/handled-stream")

			for _, s := range held {
				s.Close()
			}
			for _, s := range named {
				s.Close()
			}
			for _, s := range clients {
				s.Close()
			}
			h.Close()
			srv.Close()
		}
	})
}

// medians reports the median of each metric over a benchmark's
// iterations: heap figures taken after a GC vary with what happens to be
// live at that moment, and b.ReportMetric keeps only the last value
// reported.
type medians struct {
	b      *testing.B
	units  []string
	values map[string][]float64
}

func newMedians(b *testing.B) *medians {
	return &medians{b: b, values: map[string][]float64{}}
}

func (m *medians) add(v float64, unit string) {
	if _, ok := m.values[unit]; !ok {
		m.units = append(m.units, unit)
	}
	m.values[unit] = append(m.values[unit], v)
}

func (m *medians) report() {
	for _, u := range m.units {
		vs := m.values[u]
		slices.Sort(vs)
		m.b.ReportMetric(vs[len(vs)/2], u)
	}
}

// heapAndStack returns live heap and stack bytes and the goroutine count,
// after garbage collection.
func heapAndStack() (heap, stack int64, goroutines int) {
	// Three collections: buffers that goroutines finishing their work put
	// back into a sync.Pool after the first survive the second.
	runtime.GC()
	runtime.GC()
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return int64(ms.HeapAlloc), int64(ms.StackInuse), runtime.NumGoroutine()
}

// --- the stacks under comparison ---

func tcpConns(b *testing.B) (net.Conn, net.Conn) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	defer ln.Close()
	accepted := make(chan net.Conn, 1)
	go func() {
		c, _ := ln.Accept()
		accepted <- c
	}()
	c, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		b.Fatal(err)
	}
	s := <-accepted
	if s == nil {
		b.Fatal("accept failed")
	}
	return c, s
}

func tcpPair(b *testing.B) pair {
	c, s := tcpConns(b)
	return pair{c, s, func() { c.Close(); s.Close() }}
}

func yamuxConfig() *yamux.Config {
	cfg := yamux.DefaultConfig()
	cfg.LogOutput = io.Discard
	return cfg
}

func yamuxTCPSessions(b *testing.B, cfg *yamux.Config) (*yamux.Session, *yamux.Session, func()) {
	c, s := tcpConns(b)
	return yamuxSessions(b, c, s, cfg)
}

func yamuxSessions(b *testing.B, c, s io.ReadWriteCloser, cfg *yamux.Config) (*yamux.Session, *yamux.Session, func()) {
	if cfg == nil {
		cfg = yamuxConfig()
	}
	client, err := yamux.Client(c, cfg)
	if err != nil {
		b.Fatal(err)
	}
	server, err := yamux.Server(s, cfg)
	if err != nil {
		b.Fatal(err)
	}
	return client, server, func() { client.Close(); server.Close() }
}

func yamuxStreams(b *testing.B, client, server *yamux.Session, done func()) pair {
	cs, err := client.OpenStream()
	if err != nil {
		b.Fatal(err)
	}
	ss, err := server.AcceptStream()
	if err != nil {
		b.Fatal(err)
	}
	return pair{cs, ss, func() { cs.Close(); ss.Close(); done() }}
}

func yamuxTCPPair(b *testing.B) pair {
	client, server, done := yamuxTCPSessions(b, nil)
	return yamuxStreams(b, client, server, done)
}

// gorillaConns returns both ends of a gorilla WebSocket with default buffers.
func gorillaConns(b *testing.B) (*websocket.Conn, *websocket.Conn, func()) {
	c, s := plextest.RawPair(b)
	return c, s, func() { c.Close(); s.Close() }
}

// diyConn is the adapter people write first: one WriteMessage per Write,
// reads through NextReader. It is what wsplex's transport improves on.
type diyConn struct {
	ws *websocket.Conn
	r  io.Reader
	mu sync.Mutex
}

func (d *diyConn) Write(p []byte) (int, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	return len(p), d.ws.WriteMessage(websocket.BinaryMessage, p)
}

func (d *diyConn) Read(p []byte) (int, error) {
	for {
		if d.r == nil {
			_, r, err := d.ws.NextReader()
			if err != nil {
				return 0, err
			}
			d.r = r
		}
		n, err := d.r.Read(p)
		if errors.Is(err, io.EOF) {
			d.r = nil
			if n == 0 {
				continue
			}
			err = nil
		}
		return n, err
	}
}

func (d *diyConn) Close() error { return d.ws.Close() }

func gorillaPair(b *testing.B) pair {
	c, s, done := gorillaConns(b)
	return pair{&diyConn{ws: c}, &diyConn{ws: s}, done}
}

func diyPair(b *testing.B) pair {
	c, s, done := gorillaConns(b)
	client, server, closeSessions := yamuxSessions(b, &diyConn{ws: c}, &diyConn{ws: s}, nil)
	return yamuxStreams(b, client, server, func() { closeSessions(); done() })
}

func coderYamuxPair(b *testing.B) pair {
	accepted := make(chan net.Conn, 1)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c, err := coderws.Accept(w, r, nil)
		if err != nil {
			close(accepted)
			return
		}
		c.SetReadLimit(-1)
		accepted <- coderws.NetConn(context.Background(), c, coderws.MessageBinary)
	}))
	c, _, err := coderws.Dial(context.Background(), wsURL(srv.URL), nil)
	if err != nil {
		b.Fatal(err)
	}
	c.SetReadLimit(-1)
	cc := coderws.NetConn(context.Background(), c, coderws.MessageBinary)
	sc := <-accepted
	client, server, closeSessions := yamuxSessions(b, cc, sc, nil)
	return yamuxStreams(b, client, server, func() { closeSessions(); cc.Close(); sc.Close(); srv.Close() })
}

// wsplexSession serves routes behind a mux.Handler with default options and
// dials it.
func wsplexSession(b *testing.B, routes *stream.Router, opts *mux.Options) (*mux.Session, func()) {
	var o mux.Options
	if opts != nil {
		o = *opts
	}
	h, err := mux.NewHandler(func(s *mux.Session) { routes.Serve(s) }, &mux.HandlerOptions{Options: o})
	if err != nil {
		b.Fatal(err)
	}
	srv := httptest.NewServer(h)
	sess, err := mux.Dial(context.Background(), wsURL(srv.URL), &mux.DialOptions{Options: o})
	if err != nil {
		b.Fatal(err)
	}
	return sess, func() { sess.Close(); h.Close(); srv.Close() }
}

// handedPair opens name and returns both ends of the stream.
func handedPair(b *testing.B) (*stream.Stream, *stream.Stream, func()) {
	routes := stream.NewRouter(nil)
	handed := make(chan *stream.Stream, 1)
	routes.HandleFunc("/bench", func(ctx context.Context, s *stream.Stream) error {
		handed <- s
		<-ctx.Done()
		return nil
	})
	sess, done := wsplexSession(b, routes, nil)
	c, err := stream.Open(context.Background(), sess, "/bench", nil)
	if err != nil {
		b.Fatal(err)
	}
	s := <-handed
	return c, s, func() { c.Close(); done() }
}

func wsplexRawPair(b *testing.B) pair {
	c, s, done := handedPair(b)
	return pair{c, s, done}
}

func wsplexMsgPair(b *testing.B) (*stream.Stream, *stream.Stream, func()) {
	return handedPair(b)
}

func echoMessages(ctx context.Context, s *stream.Stream) error {
	var m wrapperspb.BytesValue
	for {
		if err := s.Receive(&m); err != nil {
			if err == io.EOF {
				return nil
			}
			return err
		}
		if err := s.Send(&m); err != nil {
			return err
		}
	}
}

// echoYamux echoes every stream the peer opens until the session ends.
func echoYamux(server *yamux.Session) {
	for {
		s, err := server.Accept()
		if err != nil {
			return
		}
		go func() {
			defer s.Close()
			io.Copy(s, s)
		}()
	}
}

func wsURL(httpURL string) string { return plextest.WebSocketURL(httpURL) }
