package rpc_test

import (
	"strings"
	"testing"
	"time"

	"github.com/wsplex/wsplex/rpc"
)

// wsplex-timeout-ms rounds the time left up to a whole millisecond, never
// below one, and never past ten digits (SPEC.md §13.1).
func TestFormatTimeout(t *testing.T) {
	for _, tc := range []struct {
		left time.Duration
		want string
	}{
		{time.Second, "1000"},
		{time.Millisecond, "1"},
		{time.Millisecond + time.Nanosecond, "2"},
		{1500 * time.Microsecond, "2"},
		{200 * time.Microsecond, "1"}, // a fraction left is not nothing
		{0, "1"},
		{-time.Second, "1"},
		{9_999_999_999 * time.Millisecond, "9999999999"},
		{100 * 365 * 24 * time.Hour, "9999999999"}, // clamped to ten digits
	} {
		if got := rpc.FormatTimeout(tc.left); got != tc.want {
			t.Errorf("FormatTimeout(%v) = %q, want %q", tc.left, got, tc.want)
		}
	}
}

func TestParseTimeout(t *testing.T) {
	for _, tc := range []struct {
		s    string
		want time.Duration // 0: refused
	}{
		{"1", time.Millisecond},
		{"1000", time.Second},
		{"0000000001", time.Millisecond},
		{"9999999999", 9_999_999_999 * time.Millisecond},
		{"", 0},
		{"0", 0},
		{"00", 0},
		{"12345678901", 0},
		{"00000000001", 0}, // eleven digits, however small
		{"1s", 0},
		{"-1", 0},
		{"+1", 0},
		{" 1", 0},
	} {
		got, ok := rpc.ParseTimeout(tc.s)
		if ok != (tc.want != 0) || got != tc.want {
			t.Errorf("ParseTimeout(%q) = %v, %v, want %v", tc.s, got, ok, tc.want)
		}
	}
}

// What FormatTimeout writes ParseTimeout reads back, and what ParseTimeout
// accepts is 1 to 10 digits naming a positive number of milliseconds.
func FuzzTimeout(f *testing.F) {
	for _, s := range []string{"1", "0", "", "9999999999", "12345678901", "1s", "-1", "007"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		d, ok := rpc.ParseTimeout(s)
		if !ok {
			return
		}
		if len(s) < 1 || len(s) > 10 || strings.Trim(s, "0123456789") != "" || d <= 0 {
			t.Fatalf("ParseTimeout(%q) = %v, true", s, d)
		}
		if got := rpc.FormatTimeout(d); got != strings.TrimLeft(s, "0") {
			t.Fatalf("FormatTimeout(ParseTimeout(%q)) = %q", s, got)
		}
	})
}
