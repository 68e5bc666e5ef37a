package topicbench

import (
	"fmt"
	"testing"
)

// TestFanout runs BenchmarkFanout's harness at a tiny size, so that it
// cannot rot: every system, on one node and on three.
func TestFanout(t *testing.T) {
	for _, nodes := range []int{1, 3} {
		t.Run(fmt.Sprintf("nodes=%d", nodes), func(t *testing.T) {
			for _, f := range fanoutFixtures(t, nodes, 3) {
				s, err := f.measureFanout("fanout", fanoutParams{pubs: 3, msgs: 10, size: 64})
				if err != nil {
					t.Fatalf("%s: %v", f.system, err)
				}
				if s.deliveriesPerSec <= 0 || s.p50 <= 0 || s.p99 < s.p50 {
					t.Errorf("%s: implausible sample %+v", f.system, s)
				}
			}
		})
	}
}

// TestIdle runs BenchmarkIdle's harness at a tiny size.
func TestIdle(t *testing.T) {
	for _, sys := range []string{sysWsplex, sysCentrifuge} {
		for _, shared := range []bool{false, true} {
			s := measureIdle(t, sys, 3, shared)
			if s.goroutines <= 0 {
				t.Errorf("%s, shared %v: no goroutines per client: %+v", sys, shared, s)
			}
		}
	}
}
