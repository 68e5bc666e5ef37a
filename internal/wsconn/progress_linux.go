package wsconn

import (
	"crypto/tls"
	"net"

	"golang.org/x/sys/unix"
)

const tracksTCPProgress = true

// bytesAcked returns a func that reports how many bytes the peer of nc has
// acknowledged (TCP_INFO's tcpi_bytes_acked), or nil if nc is not a TCP
// connection whose TCP_INFO can be read. A TLS connection is looked
// through.
func bytesAcked(nc net.Conn) func() (uint64, error) {
	if tc, ok := nc.(*tls.Conn); ok {
		nc = tc.NetConn()
	}
	tcp, ok := nc.(*net.TCPConn)
	if !ok {
		return nil
	}
	rc, err := tcp.SyscallConn()
	if err != nil {
		return nil
	}
	acked := func() (uint64, error) {
		var info *unix.TCPInfo
		var gerr error
		err := rc.Control(func(fd uintptr) {
			info, gerr = unix.GetsockoptTCPInfo(int(fd), unix.IPPROTO_TCP, unix.TCP_INFO)
		})
		if err == nil {
			err = gerr
		}
		if err != nil {
			return 0, err
		}
		return info.Bytes_acked, nil
	}
	if _, err := acked(); err != nil {
		return nil
	}
	return acked
}
