package topicbench

// The harness: a system's node process with its subscribers connected, and
// the measurements made on it.

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// guard bounds every wait: a delivery that has not come by then is lost.
const guard = 60 * time.Second

var errTimeout = errors.New("timed out")

// fixture is one system serving n subscribers from a node process.
type fixture struct {
	system string
	nodes  *child
	// brokers are the processes of the broker the nodes share, if any,
	// whose CPU time is reported apart.
	brokers []int
	n       int
	seq     uint64 // the sequence number of the next message published

	stops []func()
	rec   atomic.Pointer[recorder]
	err   chan error // the first subscription failure
	// seen[i] is set by subscriber i's first delivery; ready counts them.
	seen  []bool
	ready atomic.Int64
}

// fixtureConfig says what a fixture serves and how its subscribers subscribe.
type fixtureConfig struct {
	nodeConfig
	brokers []int // pids of the broker's processes
	// n subscribers, each on its own connection; subscriber i connects to
	// node i mod Nodes and subscribes to topic(i).
	n     int
	topic func(i int) string
}

// newFixture starts cfg's node process and connects its subscribers.
// Everything stops when tb ends.
func newFixture(tb testing.TB, cfg fixtureConfig) *fixture {
	tb.Helper()
	f := &fixture{system: cfg.System, nodes: startNodes(tb, cfg.nodeConfig), brokers: cfg.brokers, n: cfg.n, err: make(chan error, 1)}
	tb.Cleanup(f.close)
	f.connect(tb, cfg)
	return f
}

// connect connects the subscribers, 32 at a time, and waits until the
// nodes count them all and each has had a message.
func (f *fixture) connect(tb testing.TB, cfg fixtureConfig) {
	tb.Helper()
	urls := f.nodes.ready
	dial := dialers[cfg.System]
	f.stops = make([]func(), cfg.n)
	f.seen = make([]bool, cfg.n)
	ctx, cancel := context.WithTimeout(context.Background(), guard)
	defer cancel()
	var wg sync.WaitGroup
	var mu sync.Mutex
	var firstErr error
	sem := make(chan struct{}, 32)
	for i := range cfg.n {
		sem <- struct{}{}
		wg.Go(func() {
			defer func() { <-sem }()
			stop, err := dial(ctx, urls[i%len(urls)], cfg.topic(i), func(data []byte) { f.got(i, data) }, f.fail)
			mu.Lock()
			defer mu.Unlock()
			if err != nil && firstErr == nil {
				firstErr = fmt.Errorf("subscriber %d: %w", i, err)
			}
			f.stops[i] = stop
		})
	}
	wg.Wait()
	if firstErr != nil {
		tb.Fatal(firstErr)
	}
	if err := f.waitSubscriptions(ctx); err != nil {
		tb.Fatal(err)
	}
	topics := map[string]bool{}
	for i := range cfg.n {
		topics[cfg.topic(i)] = true
	}
	if err := f.waitReady(ctx, slices.Sorted(maps.Keys(topics))); err != nil {
		tb.Fatal(err)
	}
}

// waitReady publishes a message to each topic every 100 ms until every
// subscriber has had one. A node may count a subscription before it has
// fixed where the subscription starts (centrifuge does, while it reads
// the channel's position), and a message published then need not reach
// it: only a delivery proves that the next messages will.
func (f *fixture) waitReady(ctx context.Context, topics []string) error {
	for {
		for _, t := range topics {
			if err := f.publish(t, 1, payloadHeader); err != nil {
				return err
			}
		}
		for range 20 {
			if f.ready.Load() == int64(f.n) {
				return nil
			}
			select {
			case err := <-f.err:
				return err
			case <-ctx.Done():
				return fmt.Errorf("%s: %d of %d subscribers had a message after %v", f.system, f.ready.Load(), f.n, guard)
			case <-time.After(5 * time.Millisecond):
			}
		}
	}
}

// waitSubscriptions polls the nodes until they serve a subscription for
// every subscriber.
func (f *fixture) waitSubscriptions(ctx context.Context) error {
	for {
		s, err := f.nodes.call("subs")
		if err != nil {
			return err
		}
		if n, _ := strconv.Atoi(s); n >= f.n {
			return nil
		}
		select {
		case err := <-f.err:
			return err
		case <-ctx.Done():
			return fmt.Errorf("%s: %s of %d subscriptions after %v", f.system, s, f.n, guard)
		case <-time.After(20 * time.Millisecond):
		}
	}
}

func (f *fixture) fail(err error) {
	select {
	case f.err <- err:
	default:
	}
}

func (f *fixture) close() {
	var wg sync.WaitGroup
	for _, stop := range f.stops {
		if stop != nil {
			wg.Go(stop)
		}
	}
	wg.Wait()
	f.stops = nil
}

// recorder collects the deliveries of one phase of a measurement.
type recorder struct {
	seq0 uint64    // the first message of the phase
	lat  [][]int64 // per subscriber: latency of each delivery, ns
	last []int64   // per subscriber: when its latest delivery came, Unix ns
	ts0  atomic.Int64
	got  atomic.Int64
	want atomic.Int64
	done chan struct{} // a token when got reaches want
}

func newRecorder(n int, seq0 uint64, per int) *recorder {
	r := &recorder{seq0: seq0, lat: make([][]int64, n), last: make([]int64, n), done: make(chan struct{}, 1)}
	for i := range r.lat {
		r.lat[i] = make([]int64, 0, per)
	}
	return r
}

// got records a delivery to subscriber i. Each subscriber's deliveries
// come from one goroutine at a time.
func (f *fixture) got(i int, data []byte) {
	now := time.Now().UnixNano()
	if !f.seen[i] {
		f.seen[i] = true
		f.ready.Add(1)
	}
	r := f.rec.Load()
	if r == nil || len(data) < payloadHeader {
		return
	}
	ts := int64(binary.LittleEndian.Uint64(data))
	seq := binary.LittleEndian.Uint64(data[8:])
	if seq < r.seq0 {
		return
	}
	if seq == r.seq0 {
		r.ts0.Store(ts)
	}
	r.lat[i] = append(r.lat[i], now-ts)
	r.last[i] = now
	if r.got.Add(1) == r.want.Load() {
		select {
		case r.done <- struct{}{}:
		default:
		}
	}
}

// wait waits until r has want deliveries.
func (f *fixture) wait(r *recorder, timer *time.Timer) error {
	select {
	case <-r.done:
		return nil
	case err := <-f.err:
		return err
	case <-timer.C:
		return fmt.Errorf("%s: %d of %d deliveries after %v: %w", f.system, r.got.Load(), r.want.Load(), guard, errTimeout)
	}
}

// publish has the first node publish n messages back-to-back to name.
func (f *fixture) publish(name string, n, size int) error {
	_, err := f.nodes.call(fmt.Sprintf("pub %s %d %d %d", name, f.seq, n, size))
	f.seq += uint64(n)
	return err
}

// startProfile has the node process write a CPU profile to file.
func (f *fixture) startProfile(tb testing.TB, file string) {
	tb.Helper()
	abs, err := filepath.Abs(file)
	if err == nil {
		_, err = f.nodes.call("cpuprofile " + abs)
	}
	if err != nil {
		tb.Fatal(err)
	}
}

func (f *fixture) stopProfile(tb testing.TB) {
	tb.Helper()
	if _, err := f.nodes.call("cpuprofile"); err != nil {
		tb.Fatal(err)
	}
}

// fanoutSample is one measurement of fan-out.
type fanoutSample struct {
	// Latency, from the start of the Publish call to a subscriber's
	// receipt, over every delivery of pubs publishes made one at a time:
	// each publish starts once every subscriber has the one before.
	p50, p99 time.Duration
	// deliveriesPerSec: msgs publishes made back-to-back, times n
	// subscribers, divided by the time from the start of the first
	// Publish call to the last subscriber's receipt of the last message.
	deliveriesPerSec float64
	// CPU time per delivery of the burst (burst) and of the publishes made
	// one at a time (paced).
	burst, paced cpuSample
}

// cpuSample is the CPU time per delivery of the node process, of the
// broker's processes, and of this process (the subscribers).
type cpuSample struct {
	node, broker, client time.Duration
}

// cpuMeter reads the CPU time of a fixture's processes.
type cpuMeter struct {
	f                    *fixture
	node, broker, client time.Duration
}

func (f *fixture) cpuStart() cpuMeter {
	return cpuMeter{f: f, node: cpuTime(f.nodes.cmd.Process.Pid), broker: f.brokerCPU(), client: cpuTime(os.Getpid())}
}

// per returns the CPU time used since m started, per delivery.
func (m cpuMeter) per(deliveries int) cpuSample {
	d := time.Duration(deliveries)
	return cpuSample{
		node:   (cpuTime(m.f.nodes.cmd.Process.Pid) - m.node) / d,
		broker: (m.f.brokerCPU() - m.broker) / d,
		client: (cpuTime(os.Getpid()) - m.client) / d,
	}
}

// fanoutParams size a fan-out measurement.
type fanoutParams struct {
	pubs int // publishes, one at a time, for latency
	msgs int // publishes, back-to-back, for deliveries per second
	size int // bytes per message
}

// measureFanout publishes p.pubs messages one at a time to name, which all
// subscribers subscribe to, then p.msgs back-to-back.
func (f *fixture) measureFanout(name string, p fanoutParams) (fanoutSample, error) {
	var s fanoutSample
	timer := time.NewTimer(guard)
	defer timer.Stop()

	// Latency: one publish in flight.
	r := newRecorder(f.n, f.seq, p.pubs)
	f.rec.Store(r)
	defer f.rec.Store(nil)
	cpu := f.cpuStart()
	for k := range p.pubs {
		r.want.Store(int64(f.n * (k + 1)))
		if err := f.publish(name, 1, p.size); err != nil {
			return s, err
		}
		if err := f.wait(r, timer); err != nil {
			return s, err
		}
	}
	s.paced = cpu.per(f.n * p.pubs)
	var all []int64
	for _, l := range r.lat {
		all = append(all, l...)
	}
	slices.Sort(all)
	s.p50, s.p99 = time.Duration(percentile(all, 50)), time.Duration(percentile(all, 99))

	// Deliveries per second: a burst.
	r = newRecorder(f.n, f.seq, p.msgs)
	r.want.Store(int64(f.n * p.msgs))
	f.rec.Store(r)
	cpu = f.cpuStart()
	if err := f.publish(name, p.msgs, p.size); err != nil {
		return s, err
	}
	if err := f.wait(r, timer); err != nil {
		return s, err
	}
	s.burst = cpu.per(f.n * p.msgs)
	end := slices.Max(r.last)
	s.deliveriesPerSec = float64(f.n*p.msgs) / time.Duration(end-r.ts0.Load()).Seconds()
	return s, nil
}

func (f *fixture) brokerCPU() time.Duration {
	var t time.Duration
	for _, pid := range f.brokers {
		t += cpuTime(pid)
	}
	return t
}

// percentile returns the p-th percentile (nearest rank) of sorted v.
func percentile(sorted []int64, p float64) int64 {
	if len(sorted) == 0 {
		return 0
	}
	i := int(float64(len(sorted))*p/100+0.5) - 1
	return sorted[max(0, min(i, len(sorted)-1))]
}

// memSample is what n idle subscribers cost the node process, per
// subscriber: RSS, heap in use and goroutine stacks, each measured after
// debug.FreeOSMemory, above what the process held before they connected;
// and goroutines.
type memSample struct {
	rss, heap, stack, goroutines float64
}

// mem asks the node process for its memory.
func (c *child) mem() (rss, heap, stack, goroutines int64, err error) {
	s, err := c.call("mem")
	if err != nil {
		return
	}
	_, err = fmt.Sscan(s, &rss, &heap, &stack, &goroutines)
	return
}

// idleSettle is how long the clients idle before they are measured.
const idleSettle = 2 * time.Second

// measureIdle starts a node process of system on one node with its
// in-process broker, connects n subscribers to it, and measures what they
// cost it. With shared, they all subscribe to one topic; otherwise each to
// its own.
func measureIdle(tb testing.TB, system string, n int, shared bool) memSample {
	tb.Helper()
	cfg := fixtureConfig{nodeConfig: nodeConfig{System: system, Nodes: 1}, n: n, topic: func(i int) string { return "idle" + strconv.Itoa(i) }}
	if shared {
		cfg.topic = func(int) string { return "idle" }
	}
	cfg.ProfileAll = *flagProf != ""
	nodes := startNodes(tb, cfg.nodeConfig)
	defer nodes.stop()
	rss0, heap0, stack0, g0, err := nodes.mem()
	if err != nil {
		tb.Fatal(err)
	}
	f := &fixture{system: system, nodes: nodes, n: n, err: make(chan error, 1)}
	defer f.close()
	f.connect(tb, cfg)
	// Idle means idle for a while: wsplex keeps a goroutine that served a
	// stream (its Router's worker) and one that wrote to a subscription
	// for a second, in case more comes.
	time.Sleep(idleSettle)
	rss, heap, stack, g, err := nodes.mem()
	if err != nil {
		tb.Fatal(err)
	}
	if *flagProf != "" {
		for _, kind := range []string{"heap", "goroutine"} {
			file, err := filepath.Abs(fmt.Sprintf("%s-idle-%s-%s-%s.pprof", *flagProf, system, cfg.topic(1), kind))
			if err == nil {
				_, err = nodes.call("profile " + kind + " " + file)
			}
			if err != nil {
				tb.Fatal(err)
			}
		}
	}
	select {
	case err := <-f.err:
		tb.Fatal(err)
	default:
	}
	per := func(a, b int64) float64 { return float64(a-b) / float64(n) }
	return memSample{rss: per(rss, rss0), heap: per(heap, heap0), stack: per(stack, stack0), goroutines: per(g, g0)}
}

// results collects the samples of a run, to print their medians when it
// ends: results[bench][config][system][metric].
var results = struct {
	sync.Mutex
	order []string // "bench/config", in the order first seen
	m     map[string]map[string]map[string][]float64
}{m: map[string]map[string]map[string][]float64{}}

func record(bench, config, system, metric string, v float64) {
	results.Lock()
	defer results.Unlock()
	key := bench + "/" + config
	bc := results.m[key]
	if bc == nil {
		bc = map[string]map[string][]float64{}
		results.m[key] = bc
		results.order = append(results.order, key)
	}
	if bc[system] == nil {
		bc[system] = map[string][]float64{}
	}
	bc[system][metric] = append(bc[system][metric], v)
}

// metricOrder lists the metrics in the order the summary shows them.
var metricOrder = []string{"deliveries/s", "p50-ms", "p99-ms",
	"node-µs/delivery", "broker-µs/delivery", "client-µs/delivery",
	"paced-node-µs/delivery", "paced-broker-µs/delivery", "paced-client-µs/delivery",
	"B/client", "heapB/client", "stackB/client", "goroutines/client"}

// summary writes, for each benchmark and configuration, the median of each
// metric for wsplex and centrifuge and their ratio.
func summary() string {
	results.Lock()
	defer results.Unlock()
	var b strings.Builder
	for _, key := range results.order {
		bc := results.m[key]
		w, c := bc[sysWsplex], bc[sysCentrifuge]
		// Not a line that starts with "Benchmark", which benchstat would
		// read as a result.
		fmt.Fprintf(&b, "\nmedians of %d rounds, %s:\n", max(len(w[firstMetric(w)]), len(c[firstMetric(c)])), key)
		fmt.Fprintf(&b, "| metric | wsplex | centrifuge | wsplex ÷ centrifuge |\n|---|---|---|---|\n")
		for _, m := range metricOrder {
			if w[m] == nil && c[m] == nil {
				continue
			}
			mw, mc := median(w[m]), median(c[m])
			ratio := "-"
			if mc != 0 && w[m] != nil && c[m] != nil {
				ratio = fmt.Sprintf("%.2f", mw/mc)
			}
			fmt.Fprintf(&b, "| %s | %s | %s | %s |\n", m, num(w[m], mw), num(c[m], mc), ratio)
		}
	}
	return b.String()
}

func firstMetric(m map[string][]float64) string {
	for _, k := range metricOrder {
		if m[k] != nil {
			return k
		}
	}
	return ""
}

func num(v []float64, m float64) string {
	switch {
	case v == nil:
		return "-"
	case m >= 1000:
		return strconv.FormatFloat(m, 'f', 0, 64)
	case m >= 10:
		return strconv.FormatFloat(m, 'f', 1, 64)
	default:
		return strconv.FormatFloat(m, 'f', 3, 64)
	}
}

func median(v []float64) float64 {
	if len(v) == 0 {
		return 0
	}
	s := slices.Clone(v)
	slices.Sort(s)
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}
