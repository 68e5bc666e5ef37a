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

// lowerLatency keeps at most notSentLowat bytes that TCP has not sent yet
// in nc's send buffer (TCP_NOTSENT_LOWAT). Without it, the kernel queues
// megabytes of a bulk stream ahead of any frame written after them, such
// as a small reply on another stream; with it, those frames wait in the
// session's own queue, which lets small frames go first. Throughput does
// not change: what is in flight is bounded by the window, not by this.
// BenchmarkHeadOfLine: p99 2.6-6.3 ms without, 1.2-1.7 ms with.
func lowerLatency(nc net.Conn) {
	if tc, ok := nc.(*tls.Conn); ok {
		nc = tc.NetConn()
	}
	if tcp, ok := nc.(*net.TCPConn); ok {
		if rc, err := tcp.SyscallConn(); err == nil {
			rc.Control(func(fd uintptr) {
				_ = unix.SetsockoptInt(int(fd), unix.IPPROTO_TCP, unix.TCP_NOTSENT_LOWAT, notSentLowat)
			})
		}
	}
}

const notSentLowat = 128 << 10
