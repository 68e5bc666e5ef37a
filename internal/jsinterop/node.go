package jsinterop

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/wsplex/wsplex/internal/netlab"
)

// JSDir is the TypeScript client's folder.
var JSDir = func() string {
	_, file, _, _ := runtime.Caller(0)
	return filepath.Join(filepath.Dir(file), "..", "..", "js")
}()

var (
	buildOnce sync.Once
	buildOut  []byte
	buildErr  error
)

// Build compiles the client, its tests and its browser scripts (npm run
// build) once per test binary. Without node or js/node_modules it skips
// t, or fails it under CI.
func Build(t testing.TB) {
	t.Helper()
	netlab.Need(t, "node", "nodejs")
	if _, err := os.Stat(filepath.Join(JSDir, "node_modules")); err != nil {
		if os.Getenv("CI") != "" {
			t.Fatalf("js/node_modules is missing, and CI must run this test: cd js && npm ci")
		}
		t.Skip("js/node_modules is missing: cd js && npm ci to run this test")
	}
	buildOnce.Do(func() {
		cmd := exec.Command("npm", "run", "--silent", "build")
		cmd.Dir = JSDir
		buildOut, buildErr = cmd.CombinedOutput()
	})
	if buildErr != nil {
		t.Fatalf("npm run build: %v\n%s", buildErr, buildOut)
	}
}

// NeedChromium returns the Chromium binary the browser tests drive, or
// skips t (fails it under CI) when it is not installed.
func NeedChromium(t testing.TB) string {
	t.Helper()
	if p := os.Getenv("CHROMIUM"); p != "" {
		return p
	}
	return netlab.Need(t, "chromium", "chromium")
}

// Node runs node with args in js/ and returns its standard output. If node
// fails, it fails t with everything node printed.
func Node(t testing.TB, env []string, args ...string) []byte {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "node", args...)
	cmd.Dir = JSDir
	cmd.Env = append(os.Environ(), env...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("node %s: %v\n%s\n%s", strings.Join(args, " "), err, stdout.Bytes(), stderr.Bytes())
	}
	return stdout.Bytes()
}

// Bundle bundles the TypeScript entry point (relative to js/) for the
// browser with esbuild, into dir/name.
func Bundle(t testing.TB, entry, dir, name string) {
	t.Helper()
	cmd := exec.Command(filepath.Join(JSDir, "node_modules", ".bin", "esbuild"), entry,
		"--bundle", "--format=esm", "--target=es2022", "--outfile="+filepath.Join(dir, name))
	cmd.Dir = JSDir
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("esbuild %s: %v\n%s", entry, err, out)
	}
}

// CheckNoneSkipped fails t unless the Node test runner's summary in out
// says tests ran and none was skipped, cancelled or left to do.
func CheckNoneSkipped(t testing.TB, out []byte) {
	t.Helper()
	count := func(what string) int {
		m := regexp.MustCompile(`(?m)^\S* ?` + what + ` (\d+)$`).FindSubmatch(out)
		if m == nil {
			t.Fatalf("no %q in the Node test summary", what)
		}
		n, _ := strconv.Atoi(string(m[1]))
		return n
	}
	if count("tests") == 0 || count("skipped") != 0 || count("cancelled") != 0 || count("todo") != 0 {
		t.Fatalf("Node tests did not all run")
	}
}
