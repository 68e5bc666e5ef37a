package conformance_test

import (
	"bytes"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime/debug"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// The suite in both roles: the runner's reference client against
// cmd/wsplexserver, and cmd/wsplexclient against its reference servers.
func TestConformance(t *testing.T) {
	if testing.Short() {
		t.Skip("the full suite takes about a minute")
	}
	bin := build(t)
	for _, tc := range []struct {
		mode, program, config, knownFailing, knownFlaky string
	}{
		{"client", "wsplexclient", "client-config.yaml", "client-known-failing.txt", ""},
		{"server", "wsplexserver", "server-config.yaml", "", "server-known-flaky.txt"},
	} {
		t.Run(tc.mode, func(t *testing.T) {
			args := []string{"--mode", tc.mode, "--conf", tc.config}
			if tc.knownFailing != "" {
				args = append(args, "--known-failing", "@"+tc.knownFailing)
			}
			if tc.knownFlaky != "" {
				args = append(args, "--known-flaky", "@"+tc.knownFlaky)
			}
			args = append(args, "--", filepath.Join(bin, tc.program))
			cmd := exec.CommandContext(t.Context(), filepath.Join(bin, "connectconformance"), args...)
			var out bytes.Buffer
			cmd.Stdout, cmd.Stderr = &out, &out
			cmd.WaitDelay = 10 * time.Second
			start := time.Now()
			err := cmd.Run()
			took := time.Since(start).Round(100 * time.Millisecond)
			if err != nil || strings.Contains(out.String(), "DATA RACE") {
				t.Fatalf("connectconformance --mode %s (%v, %s): %v\n%s", tc.mode, took, cmd.Args, err, out.String())
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
			t.Logf("%s mode, %v: %s cases, %s, %s known to fail", tc.mode, took, total[1], summary, known)
		})
	}
}

// build builds the suite's runner, and the programs under test into a
// temporary directory, which it returns. The programs under test get the
// race detector when this test has it, so that a data race in wsplex
// under the suite's load fails the test; the runner does not.
func build(t *testing.T) string {
	t.Helper()
	goTool, err := exec.LookPath("go")
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	run := func(args ...string) {
		t.Helper()
		cmd := exec.CommandContext(t.Context(), goTool, append([]string{"build", "-o", dir + string(filepath.Separator)}, args...)...)
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("%s: %v\n%s", cmd.Args, err, out)
		}
	}
	run("connectrpc.com/conformance/cmd/connectconformance")
	if raceEnabled() {
		run("-race", "./cmd/wsplexclient", "./cmd/wsplexserver")
	} else {
		run("./cmd/wsplexclient", "./cmd/wsplexserver")
	}
	return dir
}

// raceEnabled reports whether this test was built with the race detector.
func raceEnabled() bool {
	info, ok := debug.ReadBuildInfo()
	if !ok {
		return false
	}
	for _, s := range info.Settings {
		if s.Key == "-race" {
			return s.Value == "true"
		}
	}
	return false
}
