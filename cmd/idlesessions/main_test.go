package main

import (
	"bytes"
	"strings"
	"testing"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) {
	if runClientFromEnv() { // the test binary re-executed as the client
		return
	}
	goleak.VerifyTestMain(m)
}

func TestServerReportsIdleCost(t *testing.T) {
	var out bytes.Buffer
	if err := server(&out, 20); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"sessions held by the server:  20 ", "server RSS:", "KiB per session", "goroutines:"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("report lacks %q:\n%s", want, out.String())
		}
	}
}
