// Command hostile measures what one hostile session can make a wsplex
// server hold. It starts a copy of itself as the server, a child process
// serving mux.NewHandler with default options and a stream.Router, so that
// the server's memory is measured alone. Then, one attack at a time, it
// opens a raw WebSocket to the server, writes yamux frames by hand (ping
// floods, streams it never closes, windows it fills and never lets the
// server drain), samples the server's RSS, heap and goroutines every 100 ms,
// and meanwhile checks that an honest session still gets an echo every
// 100 ms. It prints one row per attack: the peaks above the baseline, how
// the honest session fared, and what the server sent back.
//
//	go run ./cmd/hostile         # full sizes; a few minutes
//	go run ./cmd/hostile -quick  # small sizes; a few seconds
package main

import (
	"bufio"
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log"
	"maps"
	"net"
	"net/http"
	"os"
	"os/exec"
	"runtime"
	"runtime/debug"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"text/tabwriter"
	"time"

	"github.com/gorilla/websocket"
	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/wrapperspb"

	"github.com/wsplex/wsplex"
	"github.com/wsplex/wsplex/mux"
	wsplexv1 "github.com/wsplex/wsplex/proto/wsplex/v1"
	"github.com/wsplex/wsplex/stream"
)

// childArg, as the only argument, makes the process the measured server.
const childArg = "-child"

func main() {
	if runChildFromArgs() {
		return
	}
	quick := flag.Bool("quick", false, "small sizes, for a check that the harness works")
	flag.Parse()
	cfg := fullConfig()
	if *quick {
		cfg = quickConfig()
	}
	if _, err := run(os.Stdout, os.Stderr, cfg); err != nil {
		log.Fatal(err)
	}
}

// config holds the sizes of the attacks and the harness's timings.
type config struct {
	pings         int // yamux Pings in a ping flood
	refused       int // SYNs in the refused-streams attack
	echoStreams   int // streams that echo and are never read
	echoMessage   int // bytes in each echoed BytesValue
	fillStreams   int // streams whose initial window is filled
	smallStreams  int // streams filled in 1025-byte frames
	prefixStreams int // streams that announce a 4 MiB message
	idleStreams   int // streams opened and left idle

	hold       time.Duration // how long an attack is held once its frames are sent
	holdUnread time.Duration // the same, for an attacker that does not read
	windowIdle time.Duration // how long the echo attack waits for window before it stops sending
	drainIdle  time.Duration // how long a non-reading attacker reads, at the end, before it stops
	settle     time.Duration // the longest wait for the server to settle between attacks
}

// fullConfig has full-size attacks, the sizes of the original report. The
// holds outlast the server's 10 s open timeout and, for attackers that do
// not read, its 10 s write timeout, whose watchdog looks every 10 s and so
// ends a stalled session 10 to 20 s after the stall began.
func fullConfig() config {
	return config{
		pings:         1_400_000, // 16.8 MB of 12-byte frames
		refused:       400_000,
		echoStreams:   16,
		echoMessage:   32 << 10,
		fillStreams:   4096,
		smallStreams:  32, // 32 x 256 KiB in 1025-byte frames; see the attack
		prefixStreams: 200,
		idleStreams:   4096,
		hold:          15 * time.Second,
		holdUnread:    25 * time.Second,
		windowIdle:    time.Second,
		drainIdle:     time.Second,
		settle:        30 * time.Second,
	}
}

// quickConfig keeps every attack, at sizes that run in a few seconds.
func quickConfig() config {
	return config{
		pings:         20_000,
		refused:       5000, // still beyond MaxStreams (4096)
		echoStreams:   4,
		echoMessage:   32 << 10,
		fillStreams:   16,
		smallStreams:  2,
		prefixStreams: 8,
		idleStreams:   300,
		hold:          300 * time.Millisecond,
		holdUnread:    300 * time.Millisecond,
		windowIdle:    200 * time.Millisecond,
		drainIdle:     200 * time.Millisecond,
		settle:        10 * time.Second,
	}
}

// attack is one way to abuse a session.
type attack struct {
	name string
	// read says whether the attacker reads the WebSocket while it attacks.
	// One that does not reads what is there only at the end, to count it.
	read bool
	send func(ctx context.Context, a *attacker, cfg config) error
}

var attacks = []attack{
	{"ping flood, never read", false, pingFlood},
	{"ping flood, replies read", true, pingFlood},
	{"refused streams", true, refusedStreams},
	{"refused streams, never read", false, refusedStreams},
	{"echo never read", false, echoNeverRead},
	{"echo, window never granted", true, echoNeverRead},
	{"fill every window", true, fillWindows},
	{"fill windows, 1025-byte frames", true, fillSmallFrames},
	{"length prefixes", true, lengthPrefixes},
	{"idle streams", true, idleStreams},
}

// result is what one attack did.
type result struct {
	name        string
	sent        int64         // bytes the attacker wrote
	sendTime    time.Duration // how long writing them took
	sendErr     error
	rss, heap   int64 // peaks above the baseline, bytes
	goroutines  int   // peak
	samples     int
	honest      honestStats
	tally       tally
	pings       int           // pings the attacker sent
	serverEnded time.Duration // when the server ended the session, if it did
	serverErr   string        // why, as the server's Session.Err says
	notSettled  bool          // the server had not settled before the attack
}

// run starts the server, runs every attack against it and writes the table
// to out, and progress to progress.
func run(out, progress io.Writer, cfg config) ([]result, error) {
	c, err := startChild()
	if err != nil {
		return nil, err
	}
	defer c.stop()

	first, err := c.settle(nil, cfg.settle)
	if err != nil {
		return nil, err
	}
	fmt.Fprintf(out, "server baseline (no session): RSS %.1f MiB, heap in use %.1f MiB, %d goroutines; GOMAXPROCS %d\n\n",
		mib(first.RSS*1024), mib(int64(first.HeapInuse)), first.Goroutines, runtime.GOMAXPROCS(0))
	var results []result
	for _, at := range attacks {
		fmt.Fprintf(progress, "hostile: %s...\n", at.name)
		r, err := runAttack(c, at, cfg, first)
		if err != nil {
			return results, fmt.Errorf("%s: %w", at.name, err)
		}
		results = append(results, r)
	}

	tw := tabwriter.NewWriter(out, 0, 0, 1, ' ', 0)
	fmt.Fprintln(tw, "attack\t| sent\t| peak RSS\t| peak heap\t| peak goroutines\t| honest session, worst RTT\t| what the server did")
	for _, r := range results {
		fmt.Fprintf(tw, "%s\t| %s\t| %s\t| %s\t| %d\t| %s\t| %s\n",
			r.name, r.sentText(), signedMiB(r.rss), signedMiB(r.heap), r.goroutines, r.honest, r.serverDid())
	}
	tw.Flush()
	last, err := c.settle(first, cfg.settle)
	if err != nil && !errors.Is(err, errNotSettled) {
		return results, err
	}
	note := ""
	if err != nil {
		note = " (not settled)"
	}
	fmt.Fprintf(out, "\nafter the last attack the server settled at RSS %.1f MiB, heap in use %.1f MiB, %d goroutines%s\n",
		mib(last.RSS*1024), mib(int64(last.HeapInuse)), last.Goroutines, note)
	fmt.Fprintln(out, "peaks are above a baseline taken before each attack with the honest session connected;")
	fmt.Fprintln(out, "RSS peaks include the kernel's high-water mark between samples; heap is HeapInuse after runtime.GC.")
	return results, nil
}

// runAttack waits for the server to settle, connects the honest session,
// runs at from a new connection while sampling the server, and reports.
func runAttack(c *child, at attack, cfg config, first *memStats) (result, error) {
	r := result{name: at.name}
	if _, err := c.settle(first, cfg.settle); err != nil {
		if !errors.Is(err, errNotSettled) {
			return r, err
		}
		r.notSettled = true
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()

	sess, err := mux.Dial(ctx, c.wsURL, nil)
	if err != nil {
		return r, fmt.Errorf("honest session: %w", err)
	}
	defer sess.Close()
	if _, err := roundTrip(ctx, sess); err != nil {
		return r, fmt.Errorf("honest session before the attack: %w", err)
	}
	base, err := c.stats("reset")
	if err != nil {
		return r, err
	}

	a, err := dialAttacker(ctx, c.wsURL, at.read)
	if err != nil {
		return r, err
	}
	defer a.ws.Close()

	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(2)
	var pk peaks
	ended := make(chan struct{})
	go func() {
		defer wg.Done()
		pk = c.sample(base, a.addr, stop, ended)
	}()
	go func() {
		defer wg.Done()
		r.honest = honest(sess, stop)
	}()
	readDone := make(chan struct{})
	var readEnded <-chan struct{} // closed if the reader meets the end of the connection
	if at.read {
		readEnded = readDone
		go func() {
			defer close(readDone)
			a.readFrames(0, time.Time{})
		}()
	} else {
		close(readDone)
	}

	// Send, then hold the connection as it is, until the hold is over
	// or the server ends the session.
	attackCtx, cancelAttack := context.WithCancel(ctx)
	go func() {
		select {
		case <-ended:
		case <-readEnded:
		case <-attackCtx.Done():
			return
		}
		cancelAttack()
		// Unblock a write the server no longer reads. (gorilla's own
		// SetWriteDeadline may not be called during a write.)
		a.ws.NetConn().SetWriteDeadline(time.Now())
	}()
	r.sendErr = at.send(attackCtx, a, cfg)
	if err := a.flush(); r.sendErr == nil {
		r.sendErr = err
	}
	r.sent, r.sendTime, r.pings = a.sent, time.Since(a.start), a.pings
	hold := cfg.hold
	if !at.read {
		hold = cfg.holdUnread
	}
	holdOver := time.NewTimer(hold)
	select {
	case <-holdOver.C:
	case <-attackCtx.Done():
	}
	holdOver.Stop()
	cancelAttack()

	if !at.read {
		// Count what the server sent meanwhile.
		a.readFrames(cfg.drainIdle, time.Now().Add(cfg.settle))
	}
	// The server ended the session first if the sampler saw it end, or if
	// it dropped or closed the connection under the reader.
	serverFirst := false
	select {
	case <-ended:
		serverFirst = true
	default:
	}
	a.closeConn()
	<-readDone
	close(stop)
	wg.Wait()
	r.rss, r.heap, r.goroutines, r.samples = pk.rss, pk.heap, pk.goroutines, pk.samples
	r.tally = a.snapshot()

	// The server's own account of how the session ended, and when.
	end, err := c.sessionEnd(a.addr, cfg.settle)
	if err != nil {
		return r, err
	}
	if serverFirst || r.tally.closeCode != 0 {
		r.serverEnded, r.serverErr = end.Lived, end.Err
	}
	return r, nil
}

// ---- the attacks ----

// pingFlood sends cfg.pings yamux Pings (type 2, SYN): 12 bytes each.
func pingFlood(ctx context.Context, a *attacker, cfg config) error {
	for i := range cfg.pings {
		if i%4096 == 0 && ctx.Err() != nil {
			return nil
		}
		if err := a.frame(typePing, flagSYN, 0, uint32(i), nil); err != nil {
			return err
		}
		a.pings++
	}
	return nil
}

// refusedStreams opens cfg.refused streams (odd IDs from 1), far beyond
// MaxStreams, and never sends anything else on them: no open request, no
// FIN.
func refusedStreams(ctx context.Context, a *attacker, cfg config) error {
	for i := range cfg.refused {
		if i%4096 == 0 && ctx.Err() != nil {
			return nil
		}
		if err := a.frame(typeWindow, flagSYN, streamID(i), 0, nil); err != nil {
			return err
		}
	}
	return nil
}

// echoNeverRead opens cfg.echoStreams streams to /echo and sends message
// after message on each while its window lasts, never granting the server
// window to echo with. An attacker that reads the WebSocket learns the
// windows the server grants and keeps sending within them until none came
// for cfg.windowIdle; one that does not read knows only the initial
// window.
func echoNeverRead(ctx context.Context, a *attacker, cfg config) error {
	msg := protowire.AppendBytes(nil, mustMarshal(&wrapperspb.BytesValue{Value: make([]byte, cfg.echoMessage)}))
	type echoStream struct {
		window int64
		off    int // offset in msg of the next byte to send
	}
	streams := make(map[uint32]*echoStream)
	var ids []uint32
	for i := range cfg.echoStreams {
		id := streamID(i)
		n, err := a.open(id, "/echo")
		if err != nil {
			return err
		}
		streams[id] = &echoStream{window: initialWindow - int64(n)}
		ids = append(ids, id)
	}
	body := make([]byte, 0, maxDataFrame)
	for ctx.Err() == nil {
		for id, g := range a.takeGrants() {
			if st := streams[id]; st != nil {
				st.window += g
			}
		}
		progress := false
		for _, id := range ids {
			st := streams[id]
			if st.window == 0 {
				continue
			}
			body = body[:0]
			for len(body) < maxDataFrame && int64(len(body)) < st.window {
				k := min(maxDataFrame-len(body), int(st.window)-len(body), len(msg)-st.off)
				body = append(body, msg[st.off:st.off+k]...)
				st.off = (st.off + k) % len(msg)
			}
			if err := a.frame(typeData, 0, id, uint32(len(body)), body); err != nil {
				return err
			}
			st.window -= int64(len(body))
			progress = true
		}
		if progress {
			continue
		}
		if err := a.flush(); err != nil {
			return err
		}
		if !a.reads {
			return nil // it cannot learn of more window
		}
		idle := time.NewTimer(cfg.windowIdle)
		select {
		case <-a.granted:
		case <-idle.C:
			return nil
		case <-ctx.Done():
		}
		idle.Stop()
	}
	return nil
}

// fillWindows opens cfg.fillStreams streams to /sink, whose handler never
// reads, and fills each one's 256 KiB initial window in 64 KiB frames.
func fillWindows(ctx context.Context, a *attacker, cfg config) error {
	return fill(ctx, a, cfg.fillStreams, maxDataFrame)
}

// fillSmallFrames does what fillWindows does in frames of 1025 bytes, one
// byte over the size the server copies into a shared 1 KiB buffer: the
// server keeps each such frame in a buffer of its own, of 64 KiB.
func fillSmallFrames(ctx context.Context, a *attacker, cfg config) error {
	return fill(ctx, a, cfg.smallStreams, 1025)
}

func fill(ctx context.Context, a *attacker, streams, frameSize int) error {
	zeros := make([]byte, frameSize)
	for i := range streams {
		if ctx.Err() != nil {
			return nil
		}
		id := streamID(i)
		n, err := a.open(id, "/sink")
		if err != nil {
			return err
		}
		for left := initialWindow - n; left > 0; left -= frameSize {
			k := min(left, frameSize)
			if err := a.frame(typeData, 0, id, uint32(k), zeros[:k]); err != nil {
				return err
			}
		}
	}
	return nil
}

// lengthPrefixes opens cfg.prefixStreams streams to /echo and sends on
// each, after the open request, only the varint length prefix of a
// message of 4 MiB, the largest the server takes.
func lengthPrefixes(ctx context.Context, a *attacker, cfg config) error {
	prefix := protowire.AppendVarint(nil, 4<<20)
	for i := range cfg.prefixStreams {
		if ctx.Err() != nil {
			return nil
		}
		id := streamID(i)
		if _, err := a.open(id, "/echo"); err != nil {
			return err
		}
		if err := a.frame(typeData, 0, id, uint32(len(prefix)), prefix); err != nil {
			return err
		}
	}
	return nil
}

// idleStreams opens cfg.idleStreams streams to /sink and sends nothing
// more.
func idleStreams(ctx context.Context, a *attacker, cfg config) error {
	for i := range cfg.idleStreams {
		if i%256 == 0 && ctx.Err() != nil {
			return nil
		}
		if _, err := a.open(streamID(i), "/sink"); err != nil {
			return err
		}
	}
	return nil
}

// streamID returns the ID of a client's i-th stream: odd, from 1.
func streamID(i int) uint32 { return uint32(2*i + 1) }

// ---- the attacker: a WebSocket that speaks yamux by hand ----

// Frame types and flags (SPEC.md §4.1).
const (
	typeData   = 0
	typeWindow = 1
	typePing   = 2
	typeGoAway = 3
	typeReset  = 4

	flagSYN = 1
	flagACK = 2
	flagFIN = 4
	flagRST = 8

	headerSize    = 12
	initialWindow = 256 << 10
	maxDataFrame  = 64 << 10
	messageSize   = 256 << 10 // the attacker's WebSocket messages; the server takes up to 1 MiB
	writeTimeout  = 30 * time.Second
)

// attacker writes frames on a raw WebSocket and tallies what comes back.
// One goroutine writes (frame, open, flush); another may read
// (readFrames).
type attacker struct {
	ws    *websocket.Conn
	addr  string // local address: the server's RemoteAddr for the session
	reads bool   // whether a goroutine reads the WebSocket during the attack
	start time.Time
	buf   []byte // frames not yet written
	sent  int64
	pings int // Pings sent

	granted chan struct{} // signalled when a Window Update arrives

	mu      sync.Mutex
	t       tally
	grants  map[uint32]int64 // window granted and not yet taken
	closing bool
}

// tally counts what the server sent.
type tally struct {
	data      int64 // Data bytes
	acks      int   // streams acknowledged
	pingAcks  int
	window    int64 // window granted beyond the initial ones
	resets    map[wsplex.Code]int
	goAway    int   // the Go Away code plus one, if one came
	closeCode int   // the WebSocket close code, if the server closed
	readErr   error // what ended reading, if not the attacker's own close
}

func dialAttacker(ctx context.Context, url string, reads bool) (*attacker, error) {
	d := websocket.Dialer{Subprotocols: []string{mux.Subprotocol}, HandshakeTimeout: 10 * time.Second}
	ws, _, err := d.DialContext(ctx, url, nil)
	if err != nil {
		return nil, fmt.Errorf("attacker: %w", err)
	}
	return &attacker{
		ws:      ws,
		addr:    ws.LocalAddr().String(),
		reads:   reads,
		start:   time.Now(),
		granted: make(chan struct{}, 1),
		grants:  make(map[uint32]int64),
		t:       tally{resets: make(map[wsplex.Code]int)},
	}, nil
}

// frame queues a frame, writing the queue first if the frame would not
// fit in the message.
func (a *attacker) frame(typ byte, flags uint16, id, length uint32, body []byte) error {
	if len(a.buf)+headerSize+len(body) > messageSize {
		if err := a.flush(); err != nil {
			return err
		}
	}
	var h [headerSize]byte
	h[1] = typ
	binary.BigEndian.PutUint16(h[2:], flags)
	binary.BigEndian.PutUint32(h[4:], id)
	binary.BigEndian.PutUint32(h[8:], length)
	a.buf = append(append(a.buf, h[:]...), body...)
	return nil
}

// open opens stream id as the Go client does (a Window Update with SYN),
// and sends the delimited OpenRequest for name. It returns the request's
// size, which counts against the stream's window.
func (a *attacker) open(id uint32, name string) (int, error) {
	req := protowire.AppendBytes(nil, mustMarshal(&wsplexv1.OpenRequest{Name: name}))
	if err := a.frame(typeWindow, flagSYN, id, 0, nil); err != nil {
		return 0, err
	}
	return len(req), a.frame(typeData, 0, id, uint32(len(req)), req)
}

// flush writes the queued frames as one binary message.
func (a *attacker) flush() error {
	if len(a.buf) == 0 {
		return nil
	}
	a.ws.SetWriteDeadline(time.Now().Add(writeTimeout))
	err := a.ws.WriteMessage(websocket.BinaryMessage, a.buf)
	if err == nil {
		a.sent += int64(len(a.buf))
	}
	a.buf = a.buf[:0]
	return err
}

// takeGrants returns the window granted since the last call, by stream.
func (a *attacker) takeGrants() map[uint32]int64 {
	a.mu.Lock()
	defer a.mu.Unlock()
	g := a.grants
	a.grants = make(map[uint32]int64)
	return g
}

// closeConn closes the TCP connection, without a closing handshake, as a
// hostile client may.
func (a *attacker) closeConn() {
	a.mu.Lock()
	a.closing = true
	a.mu.Unlock()
	a.ws.Close()
}

func (a *attacker) snapshot() tally {
	a.mu.Lock()
	defer a.mu.Unlock()
	t := a.t
	t.resets = maps.Clone(a.t.resets)
	return t
}

// readFrames reads and tallies frames until the connection ends. With
// idle > 0 it also stops once nothing arrived for idle, or at until.
func (a *attacker) readFrames(idle time.Duration, until time.Time) {
	in := bufio.NewReaderSize(&messageStream{ws: a.ws, idle: idle, until: until}, 64<<10)
	var h [headerSize]byte
	var err error
	for {
		if _, err = io.ReadFull(in, h[:]); err != nil {
			break
		}
		typ, flags := h[1], binary.BigEndian.Uint16(h[2:])
		id, length := binary.BigEndian.Uint32(h[4:]), binary.BigEndian.Uint32(h[8:])
		var body []byte
		switch typ {
		case typeData:
			_, err = in.Discard(int(length))
		case typeReset:
			body = make([]byte, length)
			_, err = io.ReadFull(in, body)
		}
		if err != nil {
			break
		}
		a.mu.Lock()
		if flags&flagACK != 0 && typ != typePing {
			a.t.acks++
		}
		switch typ {
		case typeData:
			a.t.data += int64(length)
		case typeWindow:
			if length > 0 {
				a.t.window += int64(length)
				a.grants[id] += int64(length)
				select {
				case a.granted <- struct{}{}:
				default:
				}
			}
		case typePing:
			if flags&flagACK != 0 {
				a.t.pingAcks++
			}
		case typeGoAway:
			a.t.goAway = int(length) + 1
		case typeReset:
			var st wsplexv1.Status
			code := wsplex.CodeUnknown
			if proto.Unmarshal(body, &st) == nil {
				code = wsplex.Code(st.GetCode())
			}
			a.t.resets[code]++
		}
		a.mu.Unlock()
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	var ce *websocket.CloseError
	var ne net.Error
	switch {
	case errors.As(err, &ce):
		a.t.closeCode = ce.Code
	case a.closing, errors.As(err, &ne) && ne.Timeout():
	default:
		a.t.readErr = err
	}
}

// messageStream is the byte stream of the binary messages a WebSocket
// receives (SPEC.md §3).
type messageStream struct {
	ws    *websocket.Conn
	idle  time.Duration // if > 0, how long to wait for a message
	until time.Time     // with idle, when to stop waiting anyway
	r     io.Reader
}

func (m *messageStream) Read(p []byte) (int, error) {
	for {
		if m.r == nil {
			if m.idle > 0 {
				dl := time.Now().Add(m.idle)
				if dl.After(m.until) {
					dl = m.until
				}
				m.ws.SetReadDeadline(dl)
			}
			_, r, err := m.ws.NextReader()
			if err != nil {
				return 0, err
			}
			m.r = r
		}
		n, err := m.r.Read(p)
		if err == io.EOF {
			m.r = nil
			if n == 0 {
				continue
			}
			err = nil
		}
		return n, err
	}
}

func mustMarshal(m proto.Message) []byte {
	b, err := proto.Marshal(m)
	if err != nil {
		panic(err)
	}
	return b
}

// ---- the honest session ----

// honestStats is how the honest session's round trips went.
type honestStats struct {
	ok, failed int
	worst      time.Duration
	firstErr   error
}

func (h honestStats) String() string {
	if h.failed == 0 {
		return fmt.Sprintf("ok %d/%d, %v", h.ok, h.ok, h.worst.Round(time.Millisecond))
	}
	return fmt.Sprintf("FAILED %d/%d (%v), %v", h.failed, h.ok+h.failed, h.firstErr, h.worst.Round(time.Millisecond))
}

// honest does a round trip on sess at once and then every 100 ms until
// stop is closed. A round trip under way when stop closes is finished
// (within its 5 s), so that even a short attack is met by one.
func honest(sess *mux.Session, stop <-chan struct{}) honestStats {
	var h honestStats
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	for {
		d, err := roundTrip(context.Background(), sess)
		if err != nil {
			h.failed++
			if h.firstErr == nil {
				h.firstErr = err
			}
		} else {
			h.ok++
		}
		h.worst = max(h.worst, d)
		select {
		case <-stop:
			return h
		case <-tick.C:
		}
	}
}

// roundTrip opens /echo, sends a message and waits for its echo, within
// 5 s.
func roundTrip(ctx context.Context, sess *mux.Session) (time.Duration, error) {
	start := time.Now()
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	s, err := stream.Open(ctx, sess, "/echo", nil)
	if err != nil {
		return time.Since(start), err
	}
	defer s.Close()
	stopWatch := context.AfterFunc(ctx, func() { s.SetDeadline(time.Now()) })
	defer stopWatch()
	want := []byte("honest")
	if err := s.Send(wrapperspb.Bytes(want)); err != nil {
		return time.Since(start), err
	}
	var got wrapperspb.BytesValue
	if err := s.Receive(&got); err != nil {
		return time.Since(start), err
	}
	if string(got.Value) != string(want) {
		return time.Since(start), fmt.Errorf("echo %q, want %q", got.Value, want)
	}
	return time.Since(start), nil
}

// ---- the server, in a child process ----

// memStats is what the child reports about itself.
type memStats struct {
	RSS        int64 // VmRSS, KiB
	HWM        int64 // VmHWM, KiB: the peak RSS since the last reset
	HeapInuse  uint64
	HeapAlloc  uint64
	Goroutines int
	Sessions   int                   // sessions being served
	Ended      map[string]sessionEnd // ended sessions, by remote address
}

type sessionEnd struct {
	Lived time.Duration
	Err   string
}

// runChildFromArgs runs the server role if this process was started as
// one, and reports whether it was.
func runChildFromArgs() bool {
	if len(os.Args) != 2 || os.Args[1] != childArg {
		return false
	}
	if err := serveChild(os.Stdin, os.Stdout); err != nil {
		log.Fatal(err)
	}
	return true
}

// serveChild serves wsplex, with default options, and its own memory
// statistics, both on loopback; it writes the two addresses to out and
// serves until in closes.
func serveChild(in io.Reader, out io.Writer) error {
	routes := stream.NewRouter(nil)
	routes.HandleFunc("/echo", func(ctx context.Context, s *stream.Stream) error {
		var m wrapperspb.BytesValue
		for {
			if err := s.Receive(&m); err == io.EOF {
				return nil
			} else if err != nil {
				return err
			}
			if err := s.Send(&m); err != nil {
				return err
			}
		}
	})
	routes.HandleFunc("/sink", func(ctx context.Context, s *stream.Stream) error {
		<-ctx.Done()
		return nil
	})

	var hwmOK atomic.Bool
	var mu sync.Mutex
	active := 0
	ended := make(map[string]sessionEnd)
	h, err := mux.NewHandler(func(s *mux.Session) {
		start := time.Now()
		mu.Lock()
		active++
		mu.Unlock()
		routes.Serve(s)
		<-s.Done()
		mu.Lock()
		active--
		ended[s.RemoteAddr().String()] = sessionEnd{Lived: time.Since(start), Err: fmt.Sprint(s.Err())}
		mu.Unlock()
	}, nil)
	if err != nil {
		return err
	}
	wsLn, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	statsLn, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	statsMux := http.NewServeMux()
	statsMux.HandleFunc("/stats", func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Query().Get("do") {
		case "free":
			debug.FreeOSMemory()
		case "reset":
			debug.FreeOSMemory()
			// Resets VmHWM to the current RSS (proc(5), clear_refs);
			// where that is not allowed, VmHWM is not reported.
			hwmOK.Store(os.WriteFile("/proc/self/clear_refs", []byte("5"), 0) == nil)
		default:
			runtime.GC()
		}
		var ms runtime.MemStats
		runtime.ReadMemStats(&ms)
		rss, hwm := procStatus()
		if !hwmOK.Load() {
			hwm = 0
		}
		st := memStats{RSS: rss, HWM: hwm, HeapInuse: ms.HeapInuse, HeapAlloc: ms.HeapAlloc, Goroutines: runtime.NumGoroutine()}
		mu.Lock()
		st.Sessions = active
		st.Ended = maps.Clone(ended)
		mu.Unlock()
		w.Header().Set("Content-Type", "application/json")
		json.NewEncoder(w).Encode(st)
	})
	srv := &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second}
	statsSrv := &http.Server{Handler: statsMux, ReadHeaderTimeout: 10 * time.Second}
	go srv.Serve(wsLn)
	go statsSrv.Serve(statsLn)
	fmt.Fprintf(out, "ready %s %s\n", wsLn.Addr(), statsLn.Addr())
	io.Copy(io.Discard, in)
	h.Close()
	statsSrv.Close()
	return srv.Close()
}

// procStatus reads VmRSS and VmHWM, in KiB, from /proc/self/status.
func procStatus() (rss, hwm int64) {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return 0, 0
	}
	for _, l := range strings.Split(string(b), "\n") {
		k, v, ok := strings.Cut(l, ":")
		if !ok {
			continue
		}
		n, _ := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), 10, 64)
		switch k {
		case "VmRSS":
			rss = n
		case "VmHWM":
			hwm = n
		}
	}
	return rss, hwm
}

// child is the server process, seen from the parent.
type child struct {
	cmd      *exec.Cmd
	stdin    io.Closer
	wsURL    string
	statsURL string
	tr       *http.Transport
	client   *http.Client
}

func startChild() (*child, error) {
	cmd := exec.Command(os.Args[0], childArg)
	cmd.Stderr = os.Stderr
	stdin, err := cmd.StdinPipe()
	if err != nil {
		return nil, err
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	line, err := bufio.NewReader(stdout).ReadString('\n')
	f := strings.Fields(line)
	if err != nil || len(f) != 3 || f[0] != "ready" {
		stdin.Close()
		cmd.Wait()
		return nil, fmt.Errorf("server process did not get ready: %q, %v", line, err)
	}
	tr := &http.Transport{}
	return &child{
		cmd:      cmd,
		stdin:    stdin,
		wsURL:    "ws://" + f[1] + "/",
		statsURL: "http://" + f[2] + "/stats",
		tr:       tr,
		client:   &http.Client{Transport: tr, Timeout: 30 * time.Second},
	}, nil
}

func (c *child) stop() {
	c.stdin.Close()
	c.cmd.Wait()
	c.tr.CloseIdleConnections()
}

// stats asks the child for its statistics, after runtime.GC, or with do
// "free" after debug.FreeOSMemory, or with "reset" after that and a reset
// of the peak RSS.
func (c *child) stats(do string) (*memStats, error) {
	u := c.statsURL
	if do != "" {
		u += "?do=" + do
	}
	resp, err := c.client.Get(u)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	var st memStats
	if err := json.NewDecoder(resp.Body).Decode(&st); err != nil {
		return nil, fmt.Errorf("stats: %w", err)
	}
	return &st, nil
}

var errNotSettled = errors.New("server did not settle")

// settle waits, polling every 100 ms, until the server serves no session,
// its goroutines are back to ref's (if not nil) and its heap has stopped
// shrinking, then returns its statistics after debug.FreeOSMemory. It
// returns errNotSettled, and the statistics, after timeout. The heap need
// not come back to ref's: the runtime keeps the descriptors of goroutines
// that ended, for reuse.
func (c *child) settle(ref *memStats, timeout time.Duration) (*memStats, error) {
	deadline := time.Now().Add(timeout)
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	var prevHeap uint64
	for {
		st, err := c.stats("")
		if err != nil {
			return nil, err
		}
		if st.Sessions == 0 && (ref == nil || st.Goroutines <= ref.Goroutines+2) &&
			st.HeapInuse <= prevHeap+64<<10 {
			break
		}
		prevHeap = st.HeapInuse
		if time.Now().After(deadline) {
			st, _ = c.stats("free")
			return st, errNotSettled
		}
		<-tick.C
	}
	return c.stats("free")
}

// sessionEnd waits for the server to report the end of the session from
// addr.
func (c *child) sessionEnd(addr string, timeout time.Duration) (sessionEnd, error) {
	deadline := time.Now().Add(timeout)
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	for {
		st, err := c.stats("")
		if err != nil {
			return sessionEnd{}, err
		}
		if e, ok := st.Ended[addr]; ok {
			return e, nil
		}
		if time.Now().After(deadline) {
			return sessionEnd{}, fmt.Errorf("the server did not end the session from %s", addr)
		}
		<-tick.C
	}
}

// peaks are the highest figures sampled, RSS and heap above the baseline.
type peaks struct {
	rss, heap  int64
	goroutines int
	samples    int
}

// sample polls the child every 100 ms until stop is closed, and closes
// ended once the server has ended the session from addr.
func (c *child) sample(base *memStats, addr string, stop <-chan struct{}, ended chan<- struct{}) peaks {
	var p peaks
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	for {
		select {
		case <-stop:
			return p
		case <-tick.C:
		}
		st, err := c.stats("")
		if err != nil {
			continue
		}
		p.samples++
		p.rss = max(p.rss, (max(st.RSS, st.HWM)-base.RSS)*1024)
		p.heap = max(p.heap, int64(st.HeapInuse)-int64(base.HeapInuse))
		p.goroutines = max(p.goroutines, st.Goroutines)
		if _, ok := st.Ended[addr]; ok && ended != nil {
			close(ended)
			ended = nil
		}
	}
}

// ---- the report ----

func (r *result) sentText() string {
	s := fmt.Sprintf("%s in %v", bytesText(r.sent), r.sendTime.Round(time.Millisecond))
	if r.sendErr != nil && !errors.Is(r.sendErr, os.ErrDeadlineExceeded) {
		s += " (write failed)"
	}
	return s
}

// serverDid says what the server sent back that matters.
func (r *result) serverDid() string {
	t := r.tally
	var parts []string
	if r.pings > 0 {
		parts = append(parts, fmt.Sprintf("answered %s of %s pings", count(t.pingAcks), count(r.pings)))
	}
	if t.acks > 0 {
		parts = append(parts, fmt.Sprintf("%s streams ACKed", count(t.acks)))
	}
	codes := make([]wsplex.Code, 0, len(t.resets))
	for code := range t.resets {
		codes = append(codes, code)
	}
	slices.SortFunc(codes, func(a, b wsplex.Code) int { return t.resets[b] - t.resets[a] })
	for _, code := range codes {
		parts = append(parts, fmt.Sprintf("%s reset %s", count(t.resets[code]), strings.ToUpper(code.String())))
	}
	if t.window > 0 {
		parts = append(parts, fmt.Sprintf("granted %s of window", bytesText(t.window)))
	}
	if t.data > 0 {
		parts = append(parts, fmt.Sprintf("sent %s of data", bytesText(t.data)))
	}
	if t.goAway > 0 {
		parts = append(parts, fmt.Sprintf("Go Away %d", t.goAway-1))
	}
	switch {
	case r.serverEnded > 0:
		code := "without a close frame we saw"
		if t.closeCode != 0 {
			code = strconv.Itoa(t.closeCode)
		}
		parts = append(parts, fmt.Sprintf("session closed %s after %.1f s (%s)", code, r.serverEnded.Seconds(), r.serverErr))
	case t.closeCode != 0:
		parts = append(parts, fmt.Sprintf("close code %d", t.closeCode))
	default:
		parts = append(parts, "session kept")
	}
	if t.readErr != nil {
		parts = append(parts, fmt.Sprintf("read error: %v", t.readErr))
	}
	if r.sendErr != nil && !errors.Is(r.sendErr, os.ErrDeadlineExceeded) {
		parts = append(parts, fmt.Sprintf("write error: %v", r.sendErr))
	}
	if r.notSettled {
		parts = append(parts, "(server had not settled before)")
	}
	return strings.Join(parts, "; ")
}

func mib(n int64) float64 { return float64(n) / (1 << 20) }

func signedMiB(n int64) string { return fmt.Sprintf("%+.1f MiB", mib(n)) }

func bytesText(n int64) string {
	switch {
	case n >= 1<<20:
		return fmt.Sprintf("%.1f MiB", mib(n))
	case n >= 1<<10:
		return fmt.Sprintf("%.1f KiB", float64(n)/1024)
	}
	return fmt.Sprintf("%d B", n)
}

// count writes n with thousands separators.
func count(n int) string {
	s := strconv.Itoa(n)
	for i := len(s) - 3; i > 0; i -= 3 {
		s = s[:i] + "," + s[i:]
	}
	return s
}
