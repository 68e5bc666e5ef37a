package topicbench

import (
	"flag"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"
)

var (
	flagN      = flag.Int("topicbench.n", 1000, "subscribers, each on its own connection")
	flagRounds = flag.Int("topicbench.rounds", 9, "rounds; each measures every system once, in turns")
	flagPubs   = flag.Int("topicbench.pubs", 100, "publishes made one at a time, for latency")
	flagMsgs   = flag.Int("topicbench.msgs", 500, "publishes made back-to-back, for deliveries per second")
	flagSize   = flag.Int("topicbench.size", 64, "bytes per message")
	flagProf   = flag.String("topicbench.nodeprofile", "", "write profiles of the node processes to `prefix`-...: CPU profiles of fan-out, heap and goroutine profiles of idle clients (the last round's)")
)

// BenchmarkFanout publishes to one topic that n subscribers (each on a
// connection of its own) subscribe to, and reports per system:
//
//   - p50-ms, p99-ms: latency from the start of the Publish call to a
//     subscriber's receipt, over the deliveries of -topicbench.pubs
//     publishes made one at a time (each starts once every subscriber has
//     the one before);
//   - deliveries/s: -topicbench.msgs publishes made back-to-back, times n,
//     divided by the time from the start of the first Publish call to the
//     last receipt of the last message;
//   - node-µs/delivery, broker-µs/delivery, client-µs/delivery: CPU time of
//     the node process, of the broker's processes and of this process (the
//     subscribers) during that burst, per delivery; paced-node-µs/delivery
//     and the others the same during the publishes made one at a time.
//
// nodes=1 is one node with its in-process broker: a topic.Hub on a
// topic.MemoryBroker, or a centrifuge.Node with its memory broker. nodes=3
// is three nodes on a shared broker, subscribers spread over them and the
// publisher on the first: three Hubs each on a wsplexnats Broker of its own
// (one NATS server with JetStream, the stream in memory), or three Nodes on
// a Redis broker each (one redis-server, without persistence). The nodes
// of a system run in one process of their own, the brokers in theirs.
// Every round measures each system once, first one then the other, in
// turns; compare the medians of the rounds.
func BenchmarkFanout(b *testing.B) {
	p := fanoutParams{pubs: *flagPubs, msgs: *flagMsgs, size: *flagSize}
	for _, nodes := range []int{1, 3} {
		config := fmt.Sprintf("nodes=%d", nodes)
		b.Run(config, func(b *testing.B) {
			fx := fanoutFixtures(b, nodes, *flagN)
			for r := range *flagRounds {
				for _, f := range turn(fx, r) {
					b.Run(fmt.Sprintf("round=%d/system=%s", r, f.system), func(b *testing.B) {
						var samples []fanoutSample
						if *flagProf != "" {
							f.startProfile(b, fmt.Sprintf("%s-%s-%s.pprof", *flagProf, f.system, config))
						}
						for b.Loop() {
							s, err := f.measureFanout("fanout", p)
							if err != nil {
								b.Fatal(err)
							}
							samples = append(samples, s)
						}
						if *flagProf != "" {
							f.stopProfile(b)
						}
						reportFanout(b, "BenchmarkFanout", config, f.system, samples)
					})
				}
			}
		})
	}
}

// fanoutFixtures starts each system with nodes nodes and n subscribers to
// the topic "fanout", and the brokers they need.
func fanoutFixtures(tb testing.TB, nodes, n int) []*fixture {
	tb.Helper()
	topic := func(int) string { return "fanout" }
	var fx []*fixture
	for _, sys := range []string{sysWsplex, sysCentrifuge} {
		cfg := fixtureConfig{nodeConfig: nodeConfig{System: sys, Nodes: nodes}, n: n, topic: topic}
		if nodes > 1 {
			switch sys {
			case sysWsplex:
				nats := startNATS(tb)
				cfg.NATS, cfg.brokers = nats.ready[0], []int{nats.cmd.Process.Pid}
			case sysCentrifuge:
				r := startRedis(tb)
				cfg.Redis, cfg.brokers = r.addr, []int{r.cmd.Process.Pid}
			}
		}
		f := newFixture(tb, cfg)
		// Warm up: connections, buffers, and the brokers' streams.
		if _, err := f.measureFanout("fanout", fanoutParams{pubs: 5, msgs: 20, size: *flagSize}); err != nil {
			tb.Fatal(err)
		}
		fx = append(fx, f)
	}
	return fx
}

// turn returns fx in round r's order: the first goes first in even rounds,
// last in odd ones.
func turn[T any](fx []T, r int) []T {
	if r%2 == 0 {
		return fx
	}
	out := slices.Clone(fx)
	slices.Reverse(out)
	return out
}

func reportFanout(b *testing.B, bench, config, system string, samples []fanoutSample) {
	ms := func(d time.Duration) float64 { return float64(d) / 1e6 }
	µs := func(d time.Duration) float64 { return float64(d) / 1e3 }
	metrics := []struct {
		unit string
		v    func(fanoutSample) float64
	}{
		{"deliveries/s", func(s fanoutSample) float64 { return s.deliveriesPerSec }},
		{"p50-ms", func(s fanoutSample) float64 { return ms(s.p50) }},
		{"p99-ms", func(s fanoutSample) float64 { return ms(s.p99) }},
		{"node-µs/delivery", func(s fanoutSample) float64 { return µs(s.burst.node) }},
		{"broker-µs/delivery", func(s fanoutSample) float64 { return µs(s.burst.broker) }},
		{"client-µs/delivery", func(s fanoutSample) float64 { return µs(s.burst.client) }},
		{"paced-node-µs/delivery", func(s fanoutSample) float64 { return µs(s.paced.node) }},
		{"paced-broker-µs/delivery", func(s fanoutSample) float64 { return µs(s.paced.broker) }},
		{"paced-client-µs/delivery", func(s fanoutSample) float64 { return µs(s.paced.client) }},
	}
	b.ReportMetric(0, "ns/op")
	for _, m := range metrics {
		var v []float64
		for _, s := range samples {
			v = append(v, m.v(s))
		}
		if strings.Contains(m.unit, "broker") && config == "nodes=1" {
			continue
		}
		b.ReportMetric(median(v), m.unit)
		record(bench, config, system, m.unit, median(v))
	}
}

// BenchmarkIdle connects n subscribers, each on its own connection, to one
// node with its in-process broker, and reports what they cost the node
// process, per subscriber, above what it held before they connected:
// B/client (RSS), heapB/client (heap in use), stackB/client (goroutine
// stacks), all after debug.FreeOSMemory, and goroutines/client. With
// topics=each every subscriber has a topic of its own; with topics=one they
// share one. Each measurement starts a fresh node process; rounds
// alternate the systems as BenchmarkFanout's do.
func BenchmarkIdle(b *testing.B) {
	for _, shared := range []bool{false, true} {
		config := "topics=each"
		if shared {
			config = "topics=one"
		}
		b.Run(config, func(b *testing.B) {
			for r := range *flagRounds {
				for _, sys := range turn([]string{sysWsplex, sysCentrifuge}, r) {
					b.Run(fmt.Sprintf("round=%d/system=%s", r, sys), func(b *testing.B) {
						var samples []memSample
						for b.Loop() {
							samples = append(samples, measureIdle(b, sys, *flagN, shared))
						}
						reportIdle(b, "BenchmarkIdle", config, sys, samples)
					})
				}
			}
		})
	}
}

func reportIdle(b *testing.B, bench, config, system string, samples []memSample) {
	metrics := []struct {
		unit string
		v    func(memSample) float64
	}{
		{"B/client", func(s memSample) float64 { return s.rss }},
		{"heapB/client", func(s memSample) float64 { return s.heap }},
		{"stackB/client", func(s memSample) float64 { return s.stack }},
		{"goroutines/client", func(s memSample) float64 { return s.goroutines }},
	}
	b.ReportMetric(0, "ns/op")
	for _, m := range metrics {
		var v []float64
		for _, s := range samples {
			v = append(v, m.v(s))
		}
		b.ReportMetric(median(v), m.unit)
		record(bench, config, system, m.unit, median(v))
	}
}
