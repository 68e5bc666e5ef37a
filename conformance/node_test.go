package conformance_test

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"
)

// The suite in client mode with the Node client under test
// (js/conformance/client.ts): connect-es's createClient over
// createWsplexTransport, through a wsplex session to cmd/wsplexgateway,
// whose gateway forwards each call to the runner's reference servers.
func TestNodeConformance(t *testing.T) {
	if testing.Short() {
		t.Skip("the suite with the Node client takes about half a minute")
	}
	js, err := filepath.Abs(filepath.Join("..", "js"))
	if err != nil {
		t.Fatal(err)
	}
	node, err := exec.LookPath("node")
	if err == nil {
		_, err = os.Stat(filepath.Join(js, "node_modules", ".bin", "tsc"))
	}
	if err != nil {
		if os.Getenv("CI") != "" {
			t.Fatalf("node and js/node_modules are needed, and CI must run this test: %v", err)
		}
		t.Skipf("needs node and js/node_modules (cd js && npm ci): %v", err)
	}

	// The client under test, compiled to js/dist/conformance/ by its own
	// tsconfig, apart from the output of npm run build.
	tsc := exec.CommandContext(t.Context(), node, filepath.Join(js, "node_modules", ".bin", "tsc"), "-p", filepath.Join(js, "conformance", "tsconfig.json"))
	tsc.Dir = js
	if out, err := tsc.CombinedOutput(); err != nil {
		t.Fatalf("%s: %v\n%s", tsc.Args, err, out)
	}
	client := filepath.Join(js, "dist", "conformance", "conformance", "client.js")

	// The runner, and the gateway with the race detector when this test
	// has it, as build does.
	bin := t.TempDir()
	build := func(args ...string) {
		t.Helper()
		cmd := exec.CommandContext(t.Context(), "go", append([]string{"build", "-o", bin + string(filepath.Separator)}, args...)...)
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("%s: %v\n%s", cmd.Args, err, out)
		}
	}
	build("connectrpc.com/conformance/cmd/connectconformance")
	if raceEnabled() {
		build("-race", "./cmd/wsplexgateway")
	} else {
		build("./cmd/wsplexgateway")
	}

	cmd := exec.CommandContext(t.Context(), filepath.Join(bin, "connectconformance"),
		"--mode", "client", "--conf", "node-client-config.yaml",
		"--", node, client, filepath.Join(bin, "wsplexgateway"))
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	cmd.WaitDelay = 10 * time.Second
	start := time.Now()
	err = cmd.Run()
	took := time.Since(start).Round(100 * time.Millisecond)
	if err != nil || strings.Contains(out.String(), "DATA RACE") {
		t.Fatalf("connectconformance --mode client (%v, %s): %v\n%s", took, cmd.Args, err, out.String())
	}
	total := regexp.MustCompile(`(?m)^Total cases: (\d+)$`).FindStringSubmatch(out.String())
	summary := regexp.MustCompile(`(?m)^\d+ passed, \d+ failed$`).FindString(out.String())
	if total == nil || summary == "" {
		t.Fatalf("no case counts in the runner's output:\n%s", out.String())
	}
	known := "0"
	if m := regexp.MustCompile(`Another (\d+) failed as expected`).FindStringSubmatch(out.String()); m != nil {
		known = m[1]
	}
	t.Logf("client mode, Node client, %v: %s cases, %s, %s known to fail", took, total[1], summary, known)
}
