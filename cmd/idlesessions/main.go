// Command idlesessions measures what idle sessions cost a server: it serves
// wsplex on loopback, starts a copy of itself as a separate client process
// that dials -n sessions and keeps them open, then reports the server
// process's RSS, heap and goroutines per session.
//
//	go run ./cmd/idlesessions -n 10000
package main

import (
	"bufio"
	"context"
	"flag"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"os"
	"os/exec"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/wsplex/wsplex/mux"
	"github.com/wsplex/wsplex/stream"
)

// clientEnv, when set, makes the process the client: "<url> <n>".
const clientEnv = "WSPLEX_IDLE_CLIENT"

func main() {
	if runClientFromEnv() {
		return
	}
	n := flag.Int("n", 10000, "sessions to hold")
	flag.Parse()
	if err := server(os.Stdout, *n); err != nil {
		log.Fatal(err)
	}
}

// runClientFromEnv runs the client role if this process was started as
// one, and reports whether it was.
func runClientFromEnv() bool {
	v := os.Getenv(clientEnv)
	if v == "" {
		return false
	}
	url, count, _ := strings.Cut(v, " ")
	n, _ := strconv.Atoi(count)
	if err := client(url, n); err != nil {
		log.Fatal(err)
	}
	return true
}

// client dials n sessions, says "ready", and holds them until stdin closes.
func client(url string, n int) error {
	ctx := context.Background()
	sessions := make([]*mux.Session, 0, n)
	for i := range n {
		s, err := mux.Dial(ctx, url, nil)
		if err != nil {
			return fmt.Errorf("session %d: %w", i, err)
		}
		sessions = append(sessions, s)
	}
	fmt.Println("ready")
	io.Copy(io.Discard, os.Stdin)
	var wg sync.WaitGroup
	for _, s := range sessions {
		wg.Add(1)
		go func() {
			defer wg.Done()
			s.Close()
		}()
	}
	wg.Wait()
	return nil
}

// server serves n sessions dialed by a client process and writes their
// cost to out.
func server(out io.Writer, n int) error {
	routes := stream.NewRouter(nil)
	var mu sync.Mutex
	count := 0
	all := make(chan struct{})
	h, err := mux.NewHandler(func(s *mux.Session) {
		mu.Lock()
		count++
		if count == n {
			close(all)
		}
		mu.Unlock()
		routes.Serve(s)
	}, nil)
	if err != nil {
		return err
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	srv := &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second}
	go srv.Serve(ln)

	before := rssKiB()
	var ms0 runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&ms0)
	g0 := runtime.NumGoroutine()

	start := time.Now()
	cmd := exec.Command(os.Args[0])
	cmd.Env = append(os.Environ(), fmt.Sprintf("%s=ws://%s %d", clientEnv, ln.Addr(), n))
	cmd.Stderr = os.Stderr
	stdin, err := cmd.StdinPipe()
	if err != nil {
		return err
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return err
	}
	if err := cmd.Start(); err != nil {
		return err
	}
	line, err := bufio.NewReader(stdout).ReadString('\n')
	if err != nil || strings.TrimSpace(line) != "ready" {
		return fmt.Errorf("client did not get ready: %q, %v", line, err)
	}
	<-all
	dialed := time.Since(start)

	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	after := rssKiB()
	g := runtime.NumGoroutine() - g0
	fmt.Fprintf(out, "sessions held by the server:  %d (dialed by another process in %v)\n", n, dialed.Round(time.Millisecond))
	fmt.Fprintf(out, "server RSS:                   %d MiB (%d MiB before), %.1f KiB per session\n",
		after/1024, before/1024, float64(after-before)/float64(n))
	fmt.Fprintf(out, "server heap in use:           %.1f KiB per session\n", float64(ms.HeapInuse-ms0.HeapInuse)/1024/float64(n))
	fmt.Fprintf(out, "server stacks:                %.1f KiB per session\n", float64(ms.StackInuse-ms0.StackInuse)/1024/float64(n))
	fmt.Fprintf(out, "server goroutines:            %.1f per session\n", float64(g)/float64(n))

	stdin.Close()
	if err := cmd.Wait(); err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	h.Shutdown(ctx)
	return srv.Shutdown(ctx)
}

// rssKiB reads the resident set size of this process from /proc.
func rssKiB() int64 {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return 0
	}
	for _, l := range strings.Split(string(b), "\n") {
		if rest, ok := strings.CutPrefix(l, "VmRSS:"); ok {
			v, _ := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(rest), "kB")), 10, 64)
			return v
		}
	}
	return 0
}
