package topicbench

// The processes a benchmark starts: node processes (this test binary
// re-executed), a NATS server with JetStream (also this binary) and a
// redis-server.

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	natsserver "github.com/nats-io/nats-server/v2/server"
)

// roleEnv, when set, makes the test binary one of the processes below
// instead of running tests; roleArgEnv carries its argument.
const (
	roleEnv    = "TOPICBENCH_ROLE"
	roleArgEnv = "TOPICBENCH_ARG"
	roleNodes  = "nodes"
	roleNATS   = "nats"
)

// runRole runs this process as role, serving until stdin closes, and
// returns its exit code.
func runRole(role string) int {
	var err error
	switch role {
	case roleNodes:
		var cfg nodeConfig
		if cfg, err = decodeNodeConfig(os.Getenv(roleArgEnv)); err == nil {
			err = runNodes(cfg, os.Stdin, os.Stdout)
		}
	case roleNATS:
		err = runNATS(os.Getenv(roleArgEnv), os.Stdin, os.Stdout)
	default:
		err = fmt.Errorf("unknown role %q", role)
	}
	if err != nil {
		fmt.Fprintf(os.Stderr, "topicbench %s: %v\n", role, err)
		return 1
	}
	return 0
}

// child is a process started by the benchmark, driven over its stdin and
// stdout.
type child struct {
	cmd   *exec.Cmd
	in    io.WriteCloser
	out   *bufio.Reader
	ready []string // the words after "ready" on its first line
	once  sync.Once
}

// startChild re-executes this test binary as role with arg, and waits for
// its "ready" line. It is stopped when tb ends.
func startChild(tb testing.TB, role, arg string) *child {
	tb.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), roleEnv+"="+role, roleArgEnv+"="+arg)
	cmd.Stderr = os.Stderr
	in, err := cmd.StdinPipe()
	if err != nil {
		tb.Fatal(err)
	}
	out, err := cmd.StdoutPipe()
	if err != nil {
		tb.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		tb.Fatal(err)
	}
	c := &child{cmd: cmd, in: in, out: bufio.NewReader(out)}
	tb.Cleanup(c.stop)
	line, err := c.out.ReadString('\n')
	f := strings.Fields(line)
	if err != nil || len(f) == 0 || f[0] != "ready" {
		tb.Fatalf("%s process did not start: %q, %v", role, line, err)
	}
	c.ready = f[1:]
	return c
}

// call sends one command and returns the answer, failing on "err ...".
func (c *child) call(cmd string) (string, error) {
	if _, err := fmt.Fprintln(c.in, cmd); err != nil {
		return "", err
	}
	line, err := c.out.ReadString('\n')
	if err != nil {
		return "", fmt.Errorf("%s: %w", cmd, err)
	}
	line = strings.TrimSpace(line)
	if msg, ok := strings.CutPrefix(line, "err "); ok {
		return "", fmt.Errorf("%s: %s", cmd, msg)
	}
	return line, nil
}

// stop closes the child's stdin, which ends it, and waits for it; it
// kills a child that takes more than 10 s.
func (c *child) stop() { c.once.Do(c.end) }

func (c *child) end() {
	c.in.Close()
	done := make(chan struct{})
	go func() {
		c.cmd.Wait()
		close(done)
	}()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		c.cmd.Process.Kill()
		<-done
	}
}

// startNodes starts a node process serving cfg and returns it with the
// WebSocket URLs of its nodes.
func startNodes(tb testing.TB, cfg nodeConfig) *child {
	tb.Helper()
	b, _ := json.Marshal(cfg)
	return startChild(tb, roleNodes, string(b))
}

// runNATS runs a NATS server with JetStream on a loopback port, storing in
// dir, prints "ready" and its URL, and stops when in ends.
func runNATS(dir string, in io.Reader, out io.Writer) error {
	s, err := natsserver.NewServer(&natsserver.Options{
		Host:      "127.0.0.1",
		Port:      natsserver.RANDOM_PORT,
		NoSigs:    true,
		JetStream: true,
		StoreDir:  dir,
	})
	if err != nil {
		return err
	}
	go s.Start()
	if !s.ReadyForConnections(10 * time.Second) {
		return fmt.Errorf("NATS server not ready")
	}
	defer func() {
		s.Shutdown()
		s.WaitForShutdown()
	}()
	fmt.Fprintln(out, "ready", s.ClientURL())
	io.Copy(io.Discard, in)
	return nil
}

// startNATS starts a NATS server with JetStream in a process of its own and
// returns it; its URL is ready[0].
func startNATS(tb testing.TB) *child {
	tb.Helper()
	return startChild(tb, roleNATS, tb.TempDir())
}

// redis is a redis-server process on a loopback port, without persistence.
type redis struct {
	addr string
	cmd  *exec.Cmd
}

// startRedis starts redis-server, or skips tb when it is not installed (but
// fails under CI, which must not go green by skipping). It is stopped when
// tb ends.
func startRedis(tb testing.TB) *redis {
	tb.Helper()
	bin, err := exec.LookPath("redis-server")
	if err != nil {
		if os.Getenv("CI") != "" {
			tb.Fatalf("redis-server is needed, and CI must run this: %v", err)
		}
		tb.Skipf("redis-server not installed (apt-get install redis-server): %v", err)
	}
	port, err := freePort()
	if err != nil {
		tb.Fatal(err)
	}
	addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
	cmd := exec.Command(bin, "--bind", "127.0.0.1", "--port", strconv.Itoa(port),
		"--save", "", "--appendonly", "no", "--dir", tb.TempDir(), "--loglevel", "warning")
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		tb.Fatal(err)
	}
	r := &redis{addr: addr, cmd: cmd}
	tb.Cleanup(func() {
		cmd.Process.Kill()
		cmd.Wait()
	})
	for deadline := time.Now().Add(10 * time.Second); ; {
		if err := r.ping(); err == nil {
			return r
		} else if time.Now().After(deadline) {
			tb.Fatalf("redis-server on %s: %v", addr, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// ping sends PING and expects PONG.
func (r *redis) ping() error {
	c, err := net.DialTimeout("tcp", r.addr, time.Second)
	if err != nil {
		return err
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(time.Second))
	if _, err := io.WriteString(c, "PING\r\n"); err != nil {
		return err
	}
	line, err := bufio.NewReader(c).ReadString('\n')
	if err != nil {
		return err
	}
	if strings.TrimSpace(line) != "+PONG" {
		return fmt.Errorf("PING answered %q", line)
	}
	return nil
}

// freePort returns a loopback TCP port that was free a moment ago.
func freePort() (int, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port, nil
}

// cpuTime returns the CPU time (user and system) process pid has used,
// from /proc, in clock ticks of 10 ms.
func cpuTime(pid int) time.Duration {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return 0
	}
	// The command name, in parentheses, may hold spaces: fields count from
	// after it. utime and stime are fields 14 and 15 of stat(5).
	s := string(b)
	f := strings.Fields(s[strings.LastIndexByte(s, ')')+1:])
	if len(f) < 13 {
		return 0
	}
	u, _ := strconv.ParseInt(f[11], 10, 64)
	k, _ := strconv.ParseInt(f[12], 10, 64)
	return time.Duration(u+k) * 10 * time.Millisecond
}
