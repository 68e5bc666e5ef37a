package main

import (
	"strings"
	"testing"
)

func TestParseTakesMediansPerImplAndSize(t *testing.T) {
	in := `goos: linux
BenchmarkThroughput/tcp/1KiB-2         	   58135	      3569 ns/op	 100.00 MB/s	       0 B/op	       0 allocs/op
BenchmarkThroughput/tcp/1KiB-2         	   58135	      3569 ns/op	 300.00 MB/s	       0 B/op	       0 allocs/op
BenchmarkThroughput/tcp/1KiB-2         	   58135	      3569 ns/op	 200.00 MB/s	       0 B/op	       0 allocs/op
BenchmarkThroughput/wsplex-raw/1MiB-2  	     100	   1170956 ns/op	1048.576 MB/s
BenchmarkPingPong/tcp-2 	26589	13551 ns/op
`
	s, err := parse(strings.NewReader(in))
	if err != nil {
		t.Fatal(err)
	}
	if got := median(s["tcp"][1024]); got != 200*1e6/(1<<20) {
		t.Errorf("tcp 1KiB median %v", got)
	}
	if got := s["wsplex-raw"][1<<20]; len(got) != 1 || got[0] != 1000 {
		t.Errorf("wsplex-raw 1MiB %v, want 1000 MiB/s", got)
	}
	if len(s) != 2 {
		t.Errorf("series %v, want tcp and wsplex-raw only", s)
	}
}
