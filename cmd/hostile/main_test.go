package main

import (
	"bytes"
	"io"
	"strings"
	"testing"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) {
	if runChildFromArgs() { // the test binary re-executed as the server
		return
	}
	goleak.VerifyTestMain(m)
}

// TestQuickRun checks that the harness works: every attack ran and was
// sampled, the honest session got its echoes throughout, and the server's
// answers were counted. Memory figures are only printed.
func TestQuickRun(t *testing.T) {
	var out bytes.Buffer
	results, err := run(&out, io.Discard, quickConfig())
	t.Log("\n" + out.String())
	if err != nil {
		t.Fatal(err)
	}
	if len(results) != len(attacks) {
		t.Fatalf("%d results for %d attacks", len(results), len(attacks))
	}
	byName := make(map[string]result)
	for _, r := range results {
		byName[r.name] = r
		if r.sent == 0 {
			t.Errorf("%s: sent nothing", r.name)
		}
		if r.samples == 0 {
			t.Errorf("%s: the server was never sampled", r.name)
		}
		if r.honest.ok == 0 || r.honest.failed > 0 {
			t.Errorf("%s: honest session: %v", r.name, r.honest)
		}
		if r.tally.readErr != nil {
			t.Errorf("%s: %v", r.name, r.tally.readErr)
		}
		if !strings.Contains(out.String(), r.name+" ") {
			t.Errorf("the table lacks %q", r.name)
		}
	}
	cfg := quickConfig()
	if r := byName["ping flood, replies read"]; r.tally.pingAcks == 0 {
		t.Errorf("ping flood: no answer counted")
	}
	// Whether the refusals say RESOURCE_EXHAUSTED (MaxStreams) or
	// UNAVAILABLE (the accept backlog) depends on how fast the server's
	// Router accepts.
	if r := byName["refused streams"]; len(r.tally.resets) == 0 {
		t.Errorf("refused streams: no reset counted of %d SYNs: %s", cfg.refused, r.serverDid())
	}
	if r := byName["idle streams"]; r.tally.acks == 0 {
		t.Errorf("idle streams: no ACK counted: %s", r.serverDid())
	}
	if r := byName["length prefixes"]; r.tally.window == 0 {
		t.Errorf("length prefixes: no window granted: %s", r.serverDid())
	}
}
