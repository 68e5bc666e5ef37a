package mux

import (
	"bytes"
	"encoding/binary"
	"testing"

	"google.golang.org/protobuf/proto"

	wsplexv1 "github.com/wsplex/wsplex/proto/wsplex/v1"
)

func frame(typ byte, flags uint16, id uint32, body []byte) []byte {
	var h header
	h[1] = typ
	binary.BigEndian.PutUint16(h[2:4], flags)
	binary.BigEndian.PutUint32(h[4:8], id)
	binary.BigEndian.PutUint32(h[8:12], uint32(len(body)))
	return append(h[:], body...)
}

// FuzzScan builds a valid inbound byte stream from the fuzz input (data
// frames, window updates and wsplex reset frames), feeds it to scan in
// arbitrary pieces, and checks that yamux would see exactly the non-reset
// frames and that every reset reached its stream with its status.
func FuzzScan(f *testing.F) {
	f.Add([]byte{0, 5, 1, 2, 3, 4, 5, 2, 3, 1, 0, 7, 9, 9}, []byte{3, 1, 12})
	f.Add([]byte{2, 0, 2, 1, 1}, []byte{1})
	f.Fuzz(func(t *testing.T, spec, cuts []byte) {
		fc := &frameConn{streams: make(map[uint32]*streamState)}
		var in, want bytes.Buffer
		resets := map[uint32]string{}
		for i := 0; i+1 < len(spec); i += 2 {
			id := uint32(spec[i]>>2) + 1
			n := int(spec[i+1])
			body := bytes.Repeat([]byte{spec[i+1]}, n)
			var fr []byte
			switch spec[i] & 3 {
			case 0:
				fr = frame(typeData, flagSYN, id, body)
			case 1:
				fr = frame(typeWindow, 0, id, nil)
				binary.BigEndian.PutUint32(fr[8:], uint32(n))
			default:
				if _, dup := resets[id]; dup {
					continue
				}
				msg := string(bytes.Repeat([]byte("r"), n)) // proto3 strings are UTF-8
				reason, _ := proto.Marshal(&wsplexv1.Status{Code: wsplexv1.Code_CODE_CANCELED, Message: msg})
				fc.streams[id] = &streamState{}
				resets[id] = msg
				in.Write(frame(typeData, flagRST, id, reason))
				continue
			}
			in.Write(fr)
			want.Write(fr)
		}
		var got bytes.Buffer
		rest := in.Bytes()
		hold := []byte(nil)
		for len(rest) > 0 || len(hold) > 0 {
			k := len(rest)
			if len(cuts) > 0 {
				k = min(k, int(cuts[0])+1)
				cuts = cuts[1:]
			}
			// What Read does: held header bytes first, then new bytes.
			buf := append(append([]byte(nil), fc.hold[:fc.nhold]...), rest[:k]...)
			fc.nhold = 0
			rest = rest[k:]
			n, err := fc.scan(buf)
			if err != nil {
				t.Fatal(err)
			}
			got.Write(buf[:n])
			if k == 0 {
				break
			}
		}
		if fc.nhold != 0 {
			t.Fatalf("%d header bytes left over", fc.nhold)
		}
		if !bytes.Equal(got.Bytes(), want.Bytes()) {
			t.Fatalf("yamux would see %x, want %x", got.Bytes(), want.Bytes())
		}
		for id, msg := range resets {
			st := fc.streams[id]
			if st == nil || st.reset == nil || st.reset.Message != msg || st.reset.Code != wsplexv1.Code_CODE_CANCELED {
				t.Fatalf("stream %d: reset %+v, want message %q", id, st, msg)
			}
		}
	})
}

func TestScanRejectsOversizedReset(t *testing.T) {
	fc := &frameConn{streams: make(map[uint32]*streamState)}
	fr := frame(typeData, flagRST, 1, nil)
	binary.BigEndian.PutUint32(fr[8:], maxResetReason+1)
	if _, err := fc.scan(fr); err == nil {
		t.Fatal("oversized reset reason accepted")
	}
}

func TestScanPassesForeignBytesToYamux(t *testing.T) {
	fc := &frameConn{streams: make(map[uint32]*streamState)}
	in := []byte("GET / HTTP/1.1\r\n\r\n")
	n, err := fc.scan(in)
	if err != nil || n != len(in) {
		t.Fatalf("scan = %d, %v; want all bytes passed for yamux to reject", n, err)
	}
}
