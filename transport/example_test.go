package transport_test

import (
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"

	"github.com/gorilla/websocket"

	"github.com/wsplex/wsplex/transport"
)

// New turns a gorilla WebSocket into a net.Conn: bytes flow as a stream,
// whatever the message boundaries.
func ExampleNew() {
	var up websocket.Upgrader
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ws, err := up.Upgrade(w, r, nil)
		if err != nil {
			return
		}
		c, _ := transport.New(ws, nil)
		defer c.Close()
		io.Copy(c, c) // echo until the client closes
	}))
	defer srv.Close()

	ws, _, err := websocket.DefaultDialer.Dial("ws"+strings.TrimPrefix(srv.URL, "http"), nil)
	if err != nil {
		fmt.Println(err)
		return
	}
	c, _ := transport.New(ws, &transport.Options{MessageSize: 4})
	defer c.Close()
	io.WriteString(c, "split into 4-byte messages") // still one byte stream
	buf := make([]byte, 26)
	io.ReadFull(c, buf)
	fmt.Println(string(buf))
	// Output: split into 4-byte messages
}
