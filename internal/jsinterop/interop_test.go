package jsinterop_test

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"go.uber.org/goleak"

	"github.com/wsplex/wsplex/internal/jsinterop"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func startServer(t *testing.T, files http.Handler) *httptest.Server {
	t.Helper()
	s, err := jsinterop.NewServer(files)
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

// TestNode runs the client's unit tests and its interop tests, in Node with
// the ws package, against this package's Go server.
func TestNode(t *testing.T) {
	jsinterop.Build(t)
	srv := startServer(t, nil)
	// The test files, not the generated code beside them (dist/test/gen/).
	files, err := filepath.Glob(filepath.Join(jsinterop.JSDir, "dist", "test", "*.test.js"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no test files in js/dist/test (%v)", err)
	}
	args := []string{"--test", "--test-reporter=spec", "--test-timeout=60000"}
	for _, f := range files {
		args = append(args, filepath.Join("dist", "test", filepath.Base(f)))
	}
	out := jsinterop.Node(t, []string{"WSPLEX_URL=" + strings.Replace(srv.URL, "http://", "ws://", 1) + "/wsplex"}, args...)
	t.Logf("%s", out)
	jsinterop.CheckNoneSkipped(t, out)
}

// TestBrowser loads the client into headless Chromium from this package's
// Go server and runs streams, server pushes and a refusal through it, then
// measures its throughput against plain WebSocket messages.
func TestBrowser(t *testing.T) {
	jsinterop.Build(t)
	chromium := jsinterop.NeedChromium(t)
	dir := t.TempDir()
	jsinterop.Bundle(t, "e2e/page.ts", dir, "page.js")
	page := `<!doctype html><meta charset="utf-8"><title>wsplex test</title><script type="module" src="page.js"></script>`
	if err := os.WriteFile(filepath.Join(dir, "index.html"), []byte(page), 0o644); err != nil {
		t.Fatal(err)
	}
	srv := startServer(t, http.FileServer(http.Dir(dir)))
	out := jsinterop.Node(t, []string{"CHROMIUM=" + chromium}, "dist/e2e/browser.js", srv.URL)

	var got struct {
		Echo       int
		PushDone   string
		Pushed     []string
		NotFound   string
		WsplexMBps []float64
		PlainMBps  []float64
		PageErrors []string
	}
	if err := json.Unmarshal(out, &got); err != nil {
		t.Fatalf("browser output %q: %v", out, err)
	}
	if got.Echo != len("from the browser") || got.PushDone != "pushed 3" ||
		!slices.Equal(got.Pushed, []string{"notify 0", "notify 1", "notify 2"}) ||
		got.NotFound != "not found" || len(got.PageErrors) != 0 {
		t.Fatalf("in the browser: %+v", got)
	}
	t.Logf("64 KiB messages in Chromium, MB/s over 5 runs: wsplex stream %.0f (median %.0f), plain WebSocket %.0f (median %.0f)",
		got.WsplexMBps, median(got.WsplexMBps), got.PlainMBps, median(got.PlainMBps))
}

func median(xs []float64) float64 {
	s := slices.Clone(xs)
	slices.Sort(s)
	return s[len(s)/2]
}
