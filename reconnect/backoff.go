package reconnect

import (
	"math/rand/v2"
	"time"
)

// backoff returns the wait before retry n (from 0): uniformly random in
// [0, min(hi, lo·2ⁿ)), or 0 if that bound is not positive.
func backoff(n int, lo, hi time.Duration) time.Duration {
	bound := lo
	for i := 0; i < n && bound < hi; i++ {
		if bound > hi/2 {
			bound = hi
			break
		}
		bound *= 2
	}
	bound = min(bound, hi)
	if bound <= 0 {
		return 0
	}
	return rand.N(bound)
}
