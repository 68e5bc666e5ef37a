package topicbench

// The node process: the test binary re-executed with roleEnv=roleNodes
// serves one system's nodes, so that its RSS, heap and CPU time are the
// servers' alone. The benchmark drives it over stdin and stdout, one line
// per command and per answer (see serveCommands).

import (
	"bufio"
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"runtime"
	"runtime/debug"
	"runtime/pprof"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/centrifugal/centrifuge"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/wsplex/wsplex/mux"
	"github.com/wsplex/wsplex/stream"
	"github.com/wsplex/wsplex/topic"
)

// Systems under comparison.
const (
	sysWsplex     = "wsplex"
	sysCentrifuge = "centrifuge"
)

// historySize and historyTTL are what both systems keep of each topic, so
// that both give the same guarantee: positions, and resume without loss.
const (
	historySize = 100
	historyTTL  = 5 * time.Minute
)

// nodeConfig says what a node process serves.
type nodeConfig struct {
	System string // sysWsplex or sysCentrifuge
	Nodes  int    // how many nodes, each on its own listener and broker connection
	// NATS is the NATS server's URL, for wsplex with more than one node.
	NATS string `json:",omitempty"`
	// Redis is the redis-server's address, for centrifuge with more than
	// one node.
	Redis string `json:",omitempty"`
	// ProfileAll makes heap profiles record every allocation.
	ProfileAll bool `json:",omitempty"`
}

// node is one server of a system in the node process.
type node interface {
	// path is the URL path its WebSocket endpoint is mounted at.
	path() string
	handler() http.Handler
	publish(ctx context.Context, topic string, data []byte) error
	// subscriptions counts the subscriptions it serves now.
	subscriptions() int
	close()
}

// runNodes serves cfg's nodes on loopback, prints "ready" and their
// WebSocket URLs, then answers the commands read from in until it ends.
func runNodes(cfg nodeConfig, in io.Reader, out io.Writer) error {
	if cfg.ProfileAll {
		runtime.MemProfileRate = 1
	}
	ctx := context.Background()
	var nodes []node
	defer func() {
		for _, n := range nodes {
			n.close()
		}
	}()
	var urls []string
	var servers []*http.Server
	for i := range cfg.Nodes {
		n, err := newNode(ctx, cfg, i)
		if err != nil {
			return err
		}
		nodes = append(nodes, n)
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return err
		}
		routes := http.NewServeMux()
		routes.Handle(n.path(), n.handler())
		srv := &http.Server{Handler: routes, ReadHeaderTimeout: 10 * time.Second}
		go srv.Serve(ln)
		servers = append(servers, srv)
		urls = append(urls, "ws://"+ln.Addr().String()+n.path())
	}
	defer func() {
		for _, s := range servers {
			s.Close()
		}
	}()
	fmt.Fprintln(out, "ready", strings.Join(urls, " "))
	return serveCommands(nodes, in, out)
}

// serveCommands answers, one line each:
//
//	subs                          the subscriptions all nodes serve
//	pub <topic> <seq> <n> <size>  publish n messages back-to-back on the
//	                              first node: size bytes, starting with the
//	                              time of the Publish call (Unix ns) and seq
//	                              (counting up from <seq>); answers "ok"
//	mem                           after 4 GCs and debug.FreeOSMemory: RSS,
//	                              heap in use and stacks in bytes, and
//	                              goroutines
//	cpuprofile <file>             start writing a CPU profile to file
//	cpuprofile                    stop it
//	profile <name> <file>         after a GC, write the runtime/pprof
//	                              profile name (heap, goroutine) to file
func serveCommands(nodes []node, in io.Reader, out io.Writer) error {
	ctx := context.Background()
	sc := bufio.NewScanner(in)
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) == 0 {
			continue
		}
		var answer string
		switch f[0] {
		case "subs":
			n := 0
			for _, nd := range nodes {
				n += nd.subscriptions()
			}
			answer = strconv.Itoa(n)
		case "pub":
			if len(f) != 5 {
				answer = "err usage: pub <topic> <seq> <n> <size>"
				break
			}
			seq, _ := strconv.ParseUint(f[2], 10, 64)
			n, _ := strconv.Atoi(f[3])
			size, _ := strconv.Atoi(f[4])
			answer = "ok"
			for i := range n {
				data := make([]byte, max(size, payloadHeader))
				binary.LittleEndian.PutUint64(data[8:], seq+uint64(i))
				binary.LittleEndian.PutUint64(data, uint64(time.Now().UnixNano()))
				if err := nodes[0].publish(ctx, f[1], data); err != nil {
					answer = "err " + err.Error()
					break
				}
			}
		case "mem":
			// Each GC halves the stacks of goroutines that use less than
			// a quarter of theirs: a few, as a server that idles for a
			// while runs, leave stacks at what idle goroutines need.
			for range 4 {
				runtime.GC()
			}
			debug.FreeOSMemory()
			var ms runtime.MemStats
			runtime.ReadMemStats(&ms)
			answer = fmt.Sprintf("%d %d %d %d", rssBytes(), ms.HeapInuse, ms.StackInuse, runtime.NumGoroutine())
		case "cpuprofile":
			answer = "ok"
			if err := cpuProfile(f[1:]); err != nil {
				answer = "err " + err.Error()
			}
		case "profile":
			answer = "ok"
			if err := writeProfile(f[1:]); err != nil {
				answer = "err " + err.Error()
			}
		default:
			answer = "err unknown command " + strconv.Quote(f[0])
		}
		if _, err := fmt.Fprintln(out, answer); err != nil {
			return err
		}
	}
	return sc.Err()
}

// profile is the file a CPU profile is being written to.
var profile *os.File

// cpuProfile starts a CPU profile to the file args names, or with no args
// stops the one running.
func cpuProfile(args []string) error {
	if len(args) == 0 {
		if profile == nil {
			return errors.New("no profile running")
		}
		pprof.StopCPUProfile()
		err := profile.Close()
		profile = nil
		return err
	}
	file, err := os.Create(args[0])
	if err != nil {
		return err
	}
	if err := pprof.StartCPUProfile(file); err != nil {
		file.Close()
		return err
	}
	profile = file
	return nil
}

// writeProfile writes the profile args[0] to the file args[1].
func writeProfile(args []string) error {
	if len(args) != 2 || pprof.Lookup(args[0]) == nil {
		return errors.New("usage: profile <name> <file>")
	}
	runtime.GC()
	file, err := os.Create(args[1])
	if err != nil {
		return err
	}
	if err := pprof.Lookup(args[0]).WriteTo(file, 0); err != nil {
		file.Close()
		return err
	}
	return file.Close()
}

// payloadHeader is what a published message starts with: the time its
// Publish call started, in Unix ns, and its sequence number.
const payloadHeader = 16

func newNode(ctx context.Context, cfg nodeConfig, i int) (node, error) {
	switch cfg.System {
	case sysWsplex:
		var b topic.Broker
		if cfg.Nodes > 1 {
			var err error
			if b, err = natsBroker(ctx, cfg.NATS, i); err != nil {
				return nil, err
			}
		} else {
			b = topic.NewMemoryBroker(&topic.MemoryOptions{HistorySize: historySize, HistoryTTL: historyTTL})
		}
		return newWsplexNode(b)
	case sysCentrifuge:
		return newCentrifugeNode(cfg, i)
	}
	return nil, fmt.Errorf("unknown system %q", cfg.System)
}

// wsplexNode is a topic.Hub on a stream.Router, with default options but
// for the broker's.
type wsplexNode struct {
	hub     *topic.Hub
	h       *mux.Handler
	release func()
}

func newWsplexNode(b topic.Broker) (*wsplexNode, error) {
	hub := topic.NewHub(&topic.Options{Broker: b})
	routes := stream.NewRouter(nil)
	routes.Handle("/bench/{name}", hub)
	h, err := mux.NewHandler(func(s *mux.Session) { routes.Serve(s) }, nil)
	if err != nil {
		return nil, err
	}
	n := &wsplexNode{hub: hub, h: h}
	if c, ok := b.(io.Closer); ok {
		n.release = func() { c.Close() }
	}
	return n, nil
}

func (n *wsplexNode) path() string          { return "/" }
func (n *wsplexNode) handler() http.Handler { return n.h }
func (n *wsplexNode) subscriptions() int    { return int(n.hub.Stats().Subscriptions) }
func (n *wsplexNode) publish(ctx context.Context, name string, data []byte) error {
	_, err := n.hub.PublishBytes(ctx, "/bench/"+name, data)
	return err
}

func (n *wsplexNode) close() {
	n.h.Close()
	if n.release != nil {
		n.release()
	}
}

// centrifugeNode is a centrifuge.Node with its WebSocket handler, default
// options, and subscriptions with recovery and positioning: the guarantee
// wsplex's topics give.
type centrifugeNode struct {
	node *centrifuge.Node
	ws   http.Handler
}

var centrifugeUsers atomic.Uint64

func newCentrifugeNode(cfg nodeConfig, i int) (*centrifugeNode, error) {
	nd, err := centrifuge.New(centrifuge.Config{
		Name:     "bench" + strconv.Itoa(i),
		LogLevel: centrifuge.LogLevelNone,
		LogHandler: func(e centrifuge.LogEntry) {
			fmt.Fprintf(os.Stderr, "centrifuge node %d: %s %v\n", i, e.Message, e.Fields)
		},
		// A registry per node: the nodes of one process must not share
		// their collectors.
		Metrics: centrifuge.MetricsConfig{RegistererGatherer: prometheus.NewRegistry()},
	})
	if err != nil {
		return nil, err
	}
	nd.OnConnecting(func(ctx context.Context, e centrifuge.ConnectEvent) (centrifuge.ConnectReply, error) {
		user := "u" + strconv.FormatUint(centrifugeUsers.Add(1), 10)
		return centrifuge.ConnectReply{Credentials: &centrifuge.Credentials{UserID: user}}, nil
	})
	nd.OnConnect(func(c *centrifuge.Client) {
		c.OnSubscribe(func(e centrifuge.SubscribeEvent, cb centrifuge.SubscribeCallback) {
			cb(centrifuge.SubscribeReply{Options: centrifuge.SubscribeOptions{EnableRecovery: true, EnablePositioning: true}}, nil)
		})
	})
	if cfg.Nodes > 1 {
		if cfg.Redis == "" {
			return nil, errors.New("centrifuge on many nodes needs a redis address")
		}
		shard, err := centrifuge.NewRedisShard(nd, centrifuge.RedisShardConfig{Address: cfg.Redis})
		if err != nil {
			return nil, err
		}
		b, err := centrifuge.NewRedisBroker(nd, centrifuge.RedisBrokerConfig{Prefix: "topicbench", Shards: []*centrifuge.RedisShard{shard}})
		if err != nil {
			return nil, err
		}
		nd.SetBroker(b)
	}
	if err := nd.Run(); err != nil {
		return nil, err
	}
	return &centrifugeNode{node: nd, ws: centrifuge.NewWebsocketHandler(nd, centrifuge.WebsocketConfig{})}, nil
}

func (n *centrifugeNode) path() string          { return "/connection/websocket" }
func (n *centrifugeNode) handler() http.Handler { return n.ws }
func (n *centrifugeNode) subscriptions() int    { return n.node.Hub().NumSubscriptions() }
func (n *centrifugeNode) publish(_ context.Context, name string, data []byte) error {
	_, err := n.node.Publish(name, data, centrifuge.WithHistory(historySize, historyTTL))
	return err
}

func (n *centrifugeNode) close() {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	n.node.Shutdown(ctx)
}

// rssBytes reads this process's resident set size from /proc.
func rssBytes() int64 {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return 0
	}
	for l := range strings.SplitSeq(string(b), "\n") {
		if rest, ok := strings.CutPrefix(l, "VmRSS:"); ok {
			v, _ := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(rest), "kB")), 10, 64)
			return v << 10
		}
	}
	return 0
}

// decodeNodeConfig reads the nodeConfig passed in the environment.
func decodeNodeConfig(s string) (nodeConfig, error) {
	var c nodeConfig
	err := json.Unmarshal([]byte(s), &c)
	return c, err
}
