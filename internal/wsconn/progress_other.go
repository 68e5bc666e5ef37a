//go:build !linux

package wsconn

import "net"

const tracksTCPProgress = false

// bytesAcked returns nil: only Linux tells how much the peer acknowledged.
func bytesAcked(net.Conn) func() (uint64, error) { return nil }

// lowerLatency does nothing: TCP_NOTSENT_LOWAT is Linux's (and Darwin's,
// under another number).
func lowerLatency(net.Conn) {}
