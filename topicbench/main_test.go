package topicbench

import (
	"fmt"
	"os"
	"testing"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) {
	if role := os.Getenv(roleEnv); role != "" { // this binary re-executed as a node or broker
		os.Exit(runRole(role))
	}
	goleak.VerifyTestMain(m, goleak.Cleanup(func(code int) {
		if s := summary(); s != "" {
			fmt.Print(s)
		}
		os.Exit(code)
	}))
}
