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
	restart := startRestartable(t)
	out := jsinterop.Node(t, []string{
		"WSPLEX_URL=" + strings.Replace(srv.URL, "http://", "ws://", 1) + "/wsplex",
		// A server the tests may kill and start again (POST WSPLEX_RESTART_URL).
		"WSPLEX_RESTARTABLE_URL=ws://" + restart.addr + "/wsplex",
		"WSPLEX_RESTART_URL=" + restart.control(t).URL + "/restart",
	}, args...)
	t.Logf("%s", out)
	jsinterop.CheckNoneSkipped(t, out)
}

// TestBrowser loads the client into headless Chromium from this package's
// Go server and runs streams, server pushes and a refusal through it, then
// measures its speed: 64 KiB messages against plain WebSocket messages,
// unary calls through its connect-es transport against connect-web's fetch
// transport to the same service over HTTP/1.1 (what Chromium uses for
// plain http://127.0.0.1), and bidi round trips. It logs the speeds and
// asserts none: a loaded machine slows them.
func TestBrowser(t *testing.T) {
	jsinterop.Build(t)
	chromium := jsinterop.NeedChromium(t)
	dir := t.TempDir()
	jsinterop.Bundle(t, "e2e/page.ts", dir, "page.js")
	page := `<!doctype html><meta charset="utf-8"><title>wsplex test</title><script type="module" src="page.js"></script>`
	if err := os.WriteFile(filepath.Join(dir, "index.html"), []byte(page), 0o644); err != nil {
		t.Fatal(err)
	}
	// Cross-origin isolation gives the page a 5 µs timer instead of 100 µs,
	// fine enough for the latency of one call.
	files := http.FileServer(http.Dir(dir))
	srv := startServer(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Cross-Origin-Opener-Policy", "same-origin")
		w.Header().Set("Cross-Origin-Embedder-Policy", "require-corp")
		files.ServeHTTP(w, r)
	}))
	out := jsinterop.Node(t, []string{"CHROMIUM=" + chromium}, "dist/e2e/browser.js", srv.URL)

	var got struct {
		Echo       int
		PushDone   string
		Pushed     []string
		NotFound   string
		WsplexMBps []float64
		PlainMBps  []float64
		// Per round: unary Pings through the wsplex transport and through
		// connect-web's fetch transport, and bidi CumSum round trips.
		WsplexCallsPerSec   []float64
		WsplexP50Ms         []float64
		FetchCallsPerSec    []float64
		FetchP50Ms          []float64
		BidiPerSec          []float64
		CrossOriginIsolated bool
		PageErrors          []string
	}
	if err := json.Unmarshal(out, &got); err != nil {
		t.Fatalf("browser output %q: %v", out, err)
	}
	if got.Echo != len("from the browser") || got.PushDone != "pushed 3" ||
		!slices.Equal(got.Pushed, []string{"notify 0", "notify 1", "notify 2"}) ||
		got.NotFound != "not found" || len(got.PageErrors) != 0 {
		t.Fatalf("in the browser: %+v", got)
	}
	for _, xs := range [][]float64{got.WsplexMBps, got.PlainMBps, got.WsplexCallsPerSec, got.WsplexP50Ms,
		got.FetchCallsPerSec, got.FetchP50Ms, got.BidiPerSec} {
		if len(xs) != 5 {
			t.Fatalf("in the browser, not 5 rounds of each measure: %+v", got)
		}
	}
	t.Logf("64 KiB messages in Chromium, MB/s over 5 runs: wsplex stream %.0f (median %.0f), plain WebSocket %.0f (median %.0f); wsplex ÷ plain %.2f",
		got.WsplexMBps, median(got.WsplexMBps), got.PlainMBps, median(got.PlainMBps), median(got.WsplexMBps)/median(got.PlainMBps))
	wCalls, fCalls := median(got.WsplexCallsPerSec), median(got.FetchCallsPerSec)
	wP50, fP50 := median(got.WsplexP50Ms), median(got.FetchP50Ms)
	t.Logf("unary Ping in Chromium, medians of 5 rounds of 200 sequential calls (cross-origin isolated timer: %v): "+
		"wsplex transport %.0f calls/s, p50 %.3f ms; connect-web fetch over HTTP/1.1 %.0f calls/s, p50 %.3f ms; "+
		"wsplex ÷ connect-web: calls/s %.2f, p50 %.2f",
		got.CrossOriginIsolated, wCalls, wP50, fCalls, fP50, wCalls/fCalls, wP50/fP50)
	t.Logf("bidi CumSum round trips through the wsplex transport, per s over 5 rounds of 200: %.0f (median %.0f); connect-web cannot make them",
		got.BidiPerSec, median(got.BidiPerSec))
}

func median(xs []float64) float64 {
	s := slices.Clone(xs)
	slices.Sort(s)
	return s[len(s)/2]
}
