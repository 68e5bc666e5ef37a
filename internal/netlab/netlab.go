// Package netlab runs the network parts users put between a wsplex client
// and server, for tests: certificates made on the spot, and real proxy
// servers from Debian's packages (tinyproxy, nginx) started on loopback
// with generated configs.
//
// A missing binary skips the test locally, naming the package to install;
// under CI (the CI environment variable is set) it fails the test, so CI
// cannot go green by skipping.
package netlab

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// Need returns the path of binary, or skips t (fails it under CI) when it
// is not installed. pkg names the Debian package that provides it.
func Need(t testing.TB, binary, pkg string) string {
	t.Helper()
	path, err := exec.LookPath(binary)
	if err == nil {
		return path
	}
	if path, err = exec.LookPath("/usr/sbin/" + binary); err == nil {
		return path
	}
	if os.Getenv("CI") != "" {
		t.Fatalf("%s not found, and CI must run this test: apt-get install %s", binary, pkg)
	}
	t.Skipf("%s not found: apt-get install %s to run this test", binary, pkg)
	return ""
}

// FreeAddr returns a loopback address with a port that was free a moment
// ago, for servers that must be told their port up front.
func FreeAddr(t testing.TB) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	return addr
}

// Process is a server process started for a test. It is stopped when the
// test ends, if it was not before.
type Process struct {
	t     testing.TB
	name  string
	args  []string
	ready string // output line that says the server listens
	mu    sync.Mutex
	cmd   *exec.Cmd
	done  chan struct{}
}

// StartProcess runs the program name with args and waits until it prints
// a line containing ready, or fails t with what it printed. The process
// stops when the test ends, if it was not stopped before.
func StartProcess(t testing.TB, name string, args []string, ready string) *Process {
	t.Helper()
	p := &Process{t: t, name: name, args: args, ready: ready}
	p.Start()
	t.Cleanup(p.Stop)
	return p
}

// Start starts the process again after Kill, with the same config.
func (p *Process) Start() {
	p.t.Helper()
	p.mu.Lock()
	defer p.mu.Unlock()
	cmd := exec.Command(p.name, p.args...)
	// Its own process group, so that Kill reaches nginx's workers too.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	pr, pw, err := os.Pipe()
	if err != nil {
		p.t.Fatal(err)
	}
	cmd.Stdout, cmd.Stderr = pw, pw
	err = cmd.Start()
	pw.Close()
	if err != nil {
		pr.Close()
		p.t.Fatalf("start %s: %v", p.name, err)
	}
	p.cmd, p.done = cmd, make(chan struct{})
	done := p.done
	go func() {
		cmd.Wait()
		close(done)
	}()
	readyc := make(chan struct{})
	var out bytes.Buffer
	var outMu sync.Mutex
	scanned := make(chan struct{})
	go func() {
		defer close(scanned)
		sc := bufio.NewScanner(pr)
		found := false
		for sc.Scan() {
			outMu.Lock()
			out.WriteString(sc.Text() + "\n")
			outMu.Unlock()
			if !found && strings.Contains(sc.Text(), p.ready) {
				found = true
				close(readyc)
			}
		}
		io.Copy(io.Discard, pr)
		pr.Close()
	}()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	select {
	case <-readyc:
		return
	case <-done:
	case <-ctx.Done():
		syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
		<-done
	}
	<-scanned // all it printed
	outMu.Lock()
	defer outMu.Unlock()
	p.t.Fatalf("%s did not start:\n%s", p.name, out.String())
}

// Stop asks the process to exit (SIGTERM), so that nginx reaps its
// workers, and kills it if it has not exited within five seconds.
func (p *Process) Stop() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.cmd == nil {
		return
	}
	p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.done:
	case <-time.After(5 * time.Second):
		syscall.Kill(-p.cmd.Process.Pid, syscall.SIGKILL)
		<-p.done
	}
	p.cmd = nil
}

// Kill stops the process at once, as a crash or a killed load balancer
// would, and waits for it to exit.
func (p *Process) Kill() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.cmd == nil {
		return
	}
	syscall.Kill(-p.cmd.Process.Pid, syscall.SIGKILL)
	<-p.done
	p.cmd = nil
}

// Tinyproxy is a forward HTTP proxy (Debian package tinyproxy).
type Tinyproxy struct {
	*Process
	Addr string // host:port it listens on
}

// TinyproxyConfig configures StartTinyproxy.
type TinyproxyConfig struct {
	// User and Password, if set, are required with Basic authentication.
	User, Password string
	// ConnectPorts, if set, are the only ports CONNECT may reach; others
	// get 403.
	ConnectPorts []int
}

// StartTinyproxy starts tinyproxy on a loopback port.
func StartTinyproxy(t testing.TB, c TinyproxyConfig) *Tinyproxy {
	t.Helper()
	bin := Need(t, "tinyproxy", "tinyproxy")
	addr := FreeAddr(t)
	_, port, _ := net.SplitHostPort(addr)
	var conf strings.Builder
	fmt.Fprintf(&conf, "Port %s\nListen 127.0.0.1\nTimeout 600\nMaxClients 200\nLogLevel Info\n", port)
	if c.User != "" {
		fmt.Fprintf(&conf, "BasicAuth %s %s\n", c.User, c.Password)
	}
	for _, p := range c.ConnectPorts {
		fmt.Fprintf(&conf, "ConnectPort %d\n", p)
	}
	path := writeFile(t, "tinyproxy.conf", conf.String())
	p := StartProcess(t, bin, []string{"-d", "-c", path}, "Accepting connections")
	return &Tinyproxy{Process: p, Addr: addr}
}

// URL returns the proxy's http:// URL, with user and password if given.
func (p *Tinyproxy) URL(user, password string) string {
	if user == "" {
		return "http://" + p.Addr
	}
	return fmt.Sprintf("http://%s:%s@%s", user, password, p.Addr)
}

// Dante is a SOCKS5 proxy (Debian package dante-server).
type Dante struct {
	*Process
	Addr string // host:port it listens on
}

// StartDante starts danted on a loopback port, allowing CONNECT from and
// to loopback addresses without authentication.
func StartDante(t testing.TB) *Dante {
	t.Helper()
	bin := Need(t, "danted", "dante-server")
	addr := FreeAddr(t)
	host, port, _ := net.SplitHostPort(addr)
	user := ""
	if os.Geteuid() == 0 {
		user = "user.privileged: root\nuser.unprivileged: nobody\n"
	}
	conf := fmt.Sprintf(`logoutput: stderr
internal: %s port = %s
external: 127.0.0.1
clientmethod: none
socksmethod: none
%sclient pass {
	from: 127.0.0.0/8 to: 0.0.0.0/0
}
socks pass {
	from: 127.0.0.0/8 to: 127.0.0.0/8
}
`, host, port, user)
	path := writeFile(t, "danted.conf", conf)
	pid := filepath.Join(filepath.Dir(path), "danted.pid")
	p := StartProcess(t, bin, []string{"-f", path, "-N", "1", "-p", pid}, "running")
	return &Dante{Process: p, Addr: addr}
}

// Nginx is an nginx server (Debian package nginx) running a generated
// config.
type Nginx struct {
	*Process
	Dir string // its prefix: config, logs and temp files
}

// File is a file written next to nginx.conf, for include directives.
type File struct{ Name, Contents string }

// StartNginx runs nginx with the given contents of its http {} block, or
// of a stream {} block when stream is true, in its own prefix directory,
// with files written beside its config. The config must make nginx listen
// on loopback ports only.
func StartNginx(t testing.TB, block string, stream bool, files ...File) *Nginx {
	t.Helper()
	bin := Need(t, "nginx", "nginx")
	dir := t.TempDir()
	for _, f := range files {
		if err := os.WriteFile(dir+"/"+f.Name, []byte(f.Contents), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	var conf strings.Builder
	const streamModule = "/usr/lib/nginx/modules/ngx_stream_module.so" // Debian: libnginx-mod-stream
	if stream {
		if _, err := os.Stat(streamModule); err == nil {
			conf.WriteString("load_module " + streamModule + ";\n")
		}
	}
	conf.WriteString("worker_processes 1;\npid nginx.pid;\nerror_log stderr notice;\n")
	if os.Geteuid() == 0 {
		conf.WriteString("user root;\n")
	}
	conf.WriteString("events { worker_connections 1024; }\n")
	if stream {
		fmt.Fprintf(&conf, "stream {\n%s\n}\n", block)
	} else {
		fmt.Fprintf(&conf, "http {\naccess_log off;\nclient_body_temp_path %[1]s/body;\nproxy_temp_path %[1]s/proxy;\n"+
			"fastcgi_temp_path %[1]s/fastcgi;\nuwsgi_temp_path %[1]s/uwsgi;\nscgi_temp_path %[1]s/scgi;\n%[2]s\n}\n", dir, block)
	}
	path := dir + "/nginx.conf"
	if err := os.WriteFile(path, []byte(conf.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	p := StartProcess(t, bin, []string{"-p", dir, "-c", path, "-e", "stderr", "-g", "daemon off;"}, "start worker process")
	return &Nginx{Process: p, Dir: dir}
}

func writeFile(t testing.TB, name, contents string) string {
	t.Helper()
	path := t.TempDir() + "/" + name
	if err := os.WriteFile(path, []byte(contents), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}
