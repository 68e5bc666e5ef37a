package wsconn_test

import (
	"net"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/wsplex/wsplex/internal/plextest"
	"github.com/wsplex/wsplex/internal/wsconn"
)

// A Conn over TCP keeps little unsent data in the kernel (TCP_NOTSENT_LOWAT),
// so that frames it writes later, such as a reply on another stream, need
// not wait behind megabytes of a bulk stream's data there.
func TestConnKeepsLittleUnsentDataInTheKernel(t *testing.T) {
	_, sws := plextest.RawPair(t)
	tcp := sws.NetConn().(*net.TCPConn)
	if got := notSentLowat(t, tcp); got == 128<<10 {
		t.Fatalf("TCP_NOTSENT_LOWAT is %d before wsconn.New", got)
	}
	wrap(t, sws, wsconn.Options{})
	if got := notSentLowat(t, tcp); got != 128<<10 {
		t.Fatalf("TCP_NOTSENT_LOWAT is %d, want 128 KiB", got)
	}
}

func notSentLowat(t *testing.T, tcp *net.TCPConn) int {
	t.Helper()
	rc, err := tcp.SyscallConn()
	if err != nil {
		t.Fatal(err)
	}
	var v int
	var gerr error
	if err := rc.Control(func(fd uintptr) {
		v, gerr = unix.GetsockoptInt(int(fd), unix.IPPROTO_TCP, unix.TCP_NOTSENT_LOWAT)
	}); err != nil || gerr != nil {
		t.Fatal(err, gerr)
	}
	return v
}
