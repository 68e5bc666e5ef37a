package jsinterop_test

import (
	"bytes"
	"context"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/wsplex/wsplex/internal/jsinterop"
	"github.com/wsplex/wsplex/internal/netlab"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// jsDir is the TypeScript client's folder.
var jsDir, _ = filepath.Abs("../../js")

var (
	buildOnce sync.Once
	buildOut  []byte
	buildErr  error
)

// built compiles the client and its tests (npm run build) once per test
// binary. Without node_modules it skips, or fails under CI.
func built(t *testing.T) {
	t.Helper()
	netlab.Need(t, "node", "nodejs")
	if _, err := os.Stat(filepath.Join(jsDir, "node_modules")); err != nil {
		if os.Getenv("CI") != "" {
			t.Fatalf("js/node_modules is missing, and CI must run this test: cd js && npm ci")
		}
		t.Skip("js/node_modules is missing: cd js && npm ci to run this test")
	}
	buildOnce.Do(func() {
		cmd := exec.Command("npm", "run", "--silent", "build")
		cmd.Dir = jsDir
		buildOut, buildErr = cmd.CombinedOutput()
	})
	if buildErr != nil {
		t.Fatalf("npm run build: %v\n%s", buildErr, buildOut)
	}
}

func startServer(t *testing.T, files string) *httptest.Server {
	t.Helper()
	var fs = httptestFiles(files)
	s, err := jsinterop.NewServer(fs)
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(s)
	t.Cleanup(func() {
		s.Handler.Close()
		srv.Close()
	})
	return srv
}

// node runs node with args in js/ and returns its standard output, failing
// t with everything it printed if it fails.
func node(t *testing.T, env []string, args ...string) []byte {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 5*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "node", args...)
	cmd.Dir = jsDir
	cmd.Env = append(os.Environ(), env...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("node %s: %v\n%s\n%s", strings.Join(args, " "), err, stdout.Bytes(), stderr.Bytes())
	}
	return stdout.Bytes()
}

// TestNode runs the client's unit tests and its interop tests, in Node with
// the ws package, against this package's Go server.
func TestNode(t *testing.T) {
	built(t)
	srv := startServer(t, "")
	out := node(t, []string{"WSPLEX_URL=" + strings.Replace(srv.URL, "http://", "ws://", 1) + "/wsplex"},
		"--test", "--test-reporter=spec", "dist/test/")
	t.Logf("%s", out)
	checkNoneSkipped(t, out)
}

// httptestFiles serves dir, or nothing when dir is empty.
func httptestFiles(dir string) http.Handler {
	if dir == "" {
		return nil
	}
	return http.FileServer(http.Dir(dir))
}

// checkNoneSkipped fails t unless the Node test runner's summary says
// tests ran and none was skipped or cancelled.
func checkNoneSkipped(t *testing.T, out []byte) {
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
