package wsplexnats_test

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"google.golang.org/protobuf/types/known/wrapperspb"

	"github.com/wsplex/wsplex/internal/netlab"
	"github.com/wsplex/wsplex/mux"
	"github.com/wsplex/wsplex/reconnect"
	"github.com/wsplex/wsplex/topic"
)

// TestCluster runs what a deployment runs: a NATS server process with
// JetStream, three wsplex server processes (internal/cmd/topicnode) on
// it, and nginx in front of them, round-robin. Subscribers and publishers
// connect through nginx with reconnecting clients. Midway one wsplex
// server is killed (SIGKILL): its clients reconnect through nginx to the
// others and resume. Every subscriber must see the same messages in the
// same order, each once, with no gap, including every message a publisher
// had acknowledged, and each publisher's messages in its order.
//
// WSPLEX_CLUSTER_SCALE=10 runs it ten times larger (300 subscribers,
// 2000 messages per publisher).
func TestCluster(t *testing.T) {
	if testing.Short() {
		t.Skip("starts processes")
	}
	scale := 1
	if v := os.Getenv("WSPLEX_CLUSTER_SCALE"); v != "" {
		var err error
		if scale, err = strconv.Atoi(v); err != nil || scale < 1 {
			t.Fatalf("WSPLEX_CLUSTER_SCALE=%q", v)
		}
	}
	nSubscribers, nPublishers, perPublisher := 30*scale, 3, 200*scale
	ctx, cancel := context.WithTimeout(t.Context(), time.Duration(2*scale)*time.Minute)
	defer cancel()

	bin := t.TempDir()
	build(t, bin, "github.com/nats-io/nats-server/v2")
	build(t, bin, "./internal/cmd/topicnode")
	natsAddr := netlab.FreeAddr(t)
	natsHost, natsPort, _ := net.SplitHostPort(natsAddr)
	netlab.StartProcess(t, filepath.Join(bin, "nats-server"),
		[]string{"-a", natsHost, "-p", natsPort, "-js", "-sd", t.TempDir()}, "Server is ready")
	var nodes []*netlab.Process
	var upstream strings.Builder
	for range 3 {
		addr := netlab.FreeAddr(t)
		nodes = append(nodes, netlab.StartProcess(t, filepath.Join(bin, "topicnode"),
			[]string{"-listen", addr, "-nats", "nats://" + natsAddr}, "topicnode: listening"))
		fmt.Fprintf(&upstream, "server %s;\n", addr)
	}
	proxyConf, err := os.ReadFile("../docs/nginx/wsplex-proxy.conf")
	if err != nil {
		t.Fatal(err)
	}
	front := netlab.FreeAddr(t)
	netlab.StartNginx(t, fmt.Sprintf(`
		map $http_upgrade $connection_upgrade { default upgrade; '' close; }
		upstream wsplex { %s }
		server {
			listen %s;
			location / { proxy_pass http://wsplex; include wsplex-proxy.conf; }
		}`, upstream.String(), front), false,
		netlab.File{Name: "wsplex-proxy.conf", Contents: string(proxyConf)})
	url := "ws://" + front + "/"

	var connects atomic.Int64
	dial := func() *reconnect.Client {
		c, err := reconnect.New(url, &reconnect.Options{
			MinDelay:  10 * time.Millisecond,
			MaxDelay:  200 * time.Millisecond,
			OnConnect: func(context.Context, *mux.Session) error { connects.Add(1); return nil },
		})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() })
		return c
	}

	// Subscribers, spread over the three servers by nginx.
	const name = "/t/cluster"
	subs := make([]*clusterSubscriber, nSubscribers)
	var ready sync.WaitGroup
	var running sync.WaitGroup
	for i := range subs {
		s := &clusterSubscriber{done: make(chan struct{})}
		subs[i] = s
		ready.Add(1)
		var once sync.Once
		client := dial()
		running.Add(1)
		go func() {
			defer running.Done()
			s.run(ctx, client, name, func() { once.Do(ready.Done) })
		}()
	}
	defer running.Wait()
	waitGroup(t, ctx, &ready, "subscribers to subscribe")
	afterSubscribe := connects.Load()

	// Publishers, each through its own client; the first tells when it is
	// halfway, and the test then kills a server.
	halfway := make(chan struct{})
	pubs := make([]*clusterPublisher, nPublishers)
	var published sync.WaitGroup
	for i := range pubs {
		p := &clusterPublisher{id: i}
		pubs[i] = p
		client := dial()
		published.Add(1)
		go func() {
			defer published.Done()
			p.run(ctx, client, name, perPublisher, func(n int) {
				if i == 0 && n == perPublisher/2 {
					close(halfway)
				}
			})
		}()
	}
	select {
	case <-halfway:
	case <-ctx.Done():
		t.Fatal("publishers stalled before halfway")
	}
	nodes[1].Kill()
	waitGroup(t, ctx, &published, "publishers to finish")

	// The topic has one order: once every subscriber has the end marker,
	// published after every acknowledged message, it has them all.
	end := dial()
	sess, err := end.Session(ctx)
	if err != nil {
		t.Fatal(err)
	}
	pub, err := topic.NewPublisher(ctx, sess, name, nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := pub.Publish(wrapperspb.String("end")); err != nil {
		t.Fatal(err)
	}
	pub.Close()
	for i, s := range subs {
		select {
		case <-s.done:
		case <-ctx.Done():
			s.mu.Lock()
			t.Fatalf("subscriber %d: no end marker after %d messages (err %v)", i, len(s.got), s.err)
		}
	}
	cancel()

	reconnected := connects.Load() - afterSubscribe - int64(nPublishers) - 1
	if reconnected <= 0 {
		t.Fatal("no client reconnected: the killed server had none")
	}
	first := subs[0].got
	acked := 0
	for _, p := range pubs {
		acked += len(p.acked)
	}
	t.Logf("%d subscribers, %d publishers: %d messages published (%d acknowledged, %d unsure), %d reconnects after the kill",
		nSubscribers, nPublishers, len(first)-1, acked, len(first)-1-acked, reconnected)
	for i, s := range subs {
		if s.gaps != 0 {
			t.Errorf("subscriber %d saw %d gaps", i, s.gaps)
		}
		if !slices.Equal(s.got, first) {
			t.Fatalf("subscriber %d saw %d messages, subscriber 0 %d, or another order", i, len(s.got), len(first))
		}
	}
	for _, p := range pubs {
		var seen []int
		for _, m := range first {
			if id, n, ok := parse(m); ok && id == p.id {
				seen = append(seen, n)
			}
		}
		if !slices.IsSorted(seen) || len(slices.Compact(slices.Clone(seen))) != len(seen) {
			t.Errorf("publisher %d's messages out of order or twice: %v", p.id, seen)
		}
		for _, n := range p.acked {
			if _, found := slices.BinarySearch(seen, n); !found {
				t.Errorf("publisher %d's acknowledged message %d lost", p.id, n)
			}
		}
	}
}

// build builds the package pkg into dir.
func build(t *testing.T, dir, pkg string) {
	t.Helper()
	cmd := exec.Command("go", "build", "-o", dir+"/", pkg)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build %s: %v\n%s", pkg, err, out)
	}
}

func waitGroup(t *testing.T, ctx context.Context, wg *sync.WaitGroup, what string) {
	t.Helper()
	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()
	select {
	case <-done:
	case <-ctx.Done():
		t.Fatalf("timed out waiting for %s", what)
	}
}

// clusterSubscriber records a subscription's messages until the end marker.
type clusterSubscriber struct {
	done chan struct{}
	mu   sync.Mutex
	got  []string
	gaps int
	err  error
}

func (s *clusterSubscriber) run(ctx context.Context, client *reconnect.Client, name string, subscribed func()) {
	opts := &topic.SubscribeOptions{Subscribed: func(topic.Position) { subscribed() }}
	for ev, err := range topic.Subscribe(ctx, client, name, opts) {
		s.mu.Lock()
		if err != nil {
			s.err = err
			s.mu.Unlock()
			return
		}
		if ev.Gap {
			s.gaps++
			s.mu.Unlock()
			continue
		}
		var m wrapperspb.StringValue
		ev.Unmarshal(&m)
		s.got = append(s.got, m.GetValue())
		s.mu.Unlock()
		if m.GetValue() == "end" {
			close(s.done)
			return
		}
	}
}

// clusterPublisher publishes "id:n" for n from 1, one at a time; a publish that
// fails (its server died) may or may not have been stored, so it is not
// counted as acknowledged, and the next goes out on the next session.
type clusterPublisher struct {
	id    int
	acked []int
}

func (p *clusterPublisher) run(ctx context.Context, client *reconnect.Client, name string, count int, progress func(n int)) {
	var pub *topic.Publisher
	defer func() {
		if pub != nil {
			pub.Close()
		}
	}()
	for n := 1; n <= count && ctx.Err() == nil; n++ {
		if pub == nil {
			sess, err := client.Session(ctx)
			if err != nil {
				return
			}
			if pub, err = topic.NewPublisher(ctx, sess, name, nil); err != nil {
				pub = nil
				continue
			}
		}
		if _, err := pub.Publish(wrapperspb.String(fmt.Sprintf("%d:%d", p.id, n))); err != nil {
			pub.Close()
			pub = nil
			continue
		}
		p.acked = append(p.acked, n)
		progress(n)
	}
}

func parse(m string) (id, n int, ok bool) {
	a, b, found := strings.Cut(m, ":")
	if !found {
		return 0, 0, false
	}
	id, err1 := strconv.Atoi(a)
	n, err2 := strconv.Atoi(b)
	return id, n, err1 == nil && err2 == nil
}
