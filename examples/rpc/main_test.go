package main

import (
	"bytes"
	"testing"

	"go.uber.org/goleak"
)

func TestRPC(t *testing.T) {
	defer goleak.VerifyNone(t)
	var out bytes.Buffer
	if err := run(&out); err != nil {
		t.Fatal(err)
	}
	want := `agent: the server asks "may I call you Ann?": yes
Greet: Hello, Ann!
Greet with no name: invalid_argument invalid_argument: name is empty
GreetAll: Hello, Ann, Bob, Cy!
Countdown: 3 2 1
Chat: Hi, Dee
Chat: Hi, Eve
`
	if out.String() != want {
		t.Errorf("output:\n%s\nwant:\n%s", out.String(), want)
	}
}
