package main

import (
	"bytes"
	"strings"
	"testing"

	"go.uber.org/goleak"
)

func TestChat(t *testing.T) {
	defer goleak.VerifyNone(t)
	var out bytes.Buffer
	if err := run(&out); err != nil {
		t.Fatal(err)
	}
	heard := `["alice: hello from alice" "bob: hello from bob" "carol: hello from carol"]`
	for _, user := range []string{"alice", "bob", "carol"} {
		if !strings.Contains(out.String(), user+" heard: "+heard) {
			t.Errorf("%s did not hear everyone:\n%s", user, out.String())
		}
	}
}
