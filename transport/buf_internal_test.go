package transport

import "testing"

// TestDefaultMessageFitsPooledBuffer checks that a message of the default
// size is queued and delivered in a pooled buffer: a buffer pool smaller
// than the default message would allocate one for every message.
func TestDefaultMessageFitsPooledBuffer(t *testing.T) {
	allocs := testing.AllocsPerRun(100, func() { putBuf(getBuf(DefaultMessageSize)) })
	if allocs >= 1 {
		t.Fatalf("%v allocations per default-sized buffer, want none", allocs)
	}
}
