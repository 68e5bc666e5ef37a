package mux

import (
	"bytes"
	"net"
	"sync"
	"testing"
	"time"
)

// blockingConn records the messages written, holding the first write
// until release is closed.
type blockingConn struct {
	entered chan struct{} // closed when the first write begins
	release chan struct{}
	mu      sync.Mutex
	writes  [][]byte
	first   bool
}

func (c *blockingConn) WriteMessage(parts ...[]byte) error {
	c.mu.Lock()
	wait := !c.first
	c.first = true
	c.mu.Unlock()
	if wait {
		close(c.entered)
		<-c.release
	}
	c.mu.Lock()
	c.writes = append(c.writes, bytes.Join(parts, nil))
	c.mu.Unlock()
	return nil
}

func (c *blockingConn) Read([]byte) (int, error)           { select {} }
func (c *blockingConn) Close(int, string, time.Time) error { return nil }
func (c *blockingConn) Err() error                         { return nil }
func (c *blockingConn) LocalAddr() net.Addr                { return nil }
func (c *blockingConn) RemoteAddr() net.Addr               { return nil }

// Small frames go ahead of large frames queued for other streams; a
// stream's own frames keep their order.
func TestSmallFramesGoAheadOfBulk(t *testing.T) {
	conn := &blockingConn{entered: make(chan struct{}), release: make(chan struct{})}
	o := newSender(conn, 64<<10+64, time.Millisecond)
	o.control(makeHeader(typeWindow, 0, 9, 1), nil) // the flusher takes it and blocks writing it
	<-conn.entered
	big := make([]byte, 60<<10)
	reserve := func(n int) {
		if ok, err := o.reserve(headerSize+n, nil, nil); !ok || err != nil {
			t.Fatal(ok, err)
		}
	}
	reserve(len(big))
	o.data(makeHeader(typeData, 0, 1, uint32(len(big))), big, true) // stream 1: large
	reserve(3)
	o.data(makeHeader(typeData, 0, 3, 3), []byte("ccc"), true) // stream 3: small, goes first
	reserve(3)
	o.data(makeHeader(typeData, 0, 1, 3), []byte("aaa"), true) // stream 1: after its large frame
	o.control(makeHeader(typeWindow, flagFIN, 1, 0), nil)      // stream 1's FIN: last
	close(conn.release)
	o.drain(time.Now().Add(10 * time.Second))
	conn.mu.Lock()
	defer conn.mu.Unlock()
	all := bytes.Join(conn.writes[1:], nil)
	var ids []uint32
	for len(all) >= headerSize {
		var h header
		copy(h[:], all)
		ids = append(ids, h.id())
		all = all[headerSize:]
		if h.typ() == typeData {
			all = all[h.length():]
		}
	}
	want := []uint32{3, 1, 1, 1}
	if len(ids) != len(want) || ids[0] != 3 || ids[1] != 1 || ids[2] != 1 || ids[3] != 1 {
		t.Fatalf("frames of streams %v, want %v", ids, want)
	}
}
