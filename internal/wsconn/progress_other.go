//go:build !linux

package wsconn

import "net"

const tracksTCPProgress = false

// bytesAcked returns nil: only Linux tells how much the peer acknowledged.
func bytesAcked(net.Conn) func() (uint64, error) { return nil }
