package mux_test

import (
	"context"
	"fmt"
	"io"
	"net/http/httptest"
	"strings"

	"github.com/wsplex/wsplex/mux"
)

// Either side of a session may open streams; here the server opens one to
// the client.
func Example() {
	handler, _ := mux.NewHandler(func(sess *mux.Session) {
		s, err := sess.Open(context.Background())
		if err != nil {
			return
		}
		defer s.Close()
		io.WriteString(s, "pushed by the server")
		s.CloseWrite()
		io.ReadAll(s) // wait until the client is done
	}, nil)
	srv := httptest.NewServer(handler)
	defer srv.Close()
	defer handler.Close()

	sess, err := mux.Dial(context.Background(), "ws"+strings.TrimPrefix(srv.URL, "http"), nil)
	if err != nil {
		fmt.Println(err)
		return
	}
	defer sess.Close()
	s, err := sess.Accept(context.Background())
	if err != nil {
		fmt.Println(err)
		return
	}
	b, _ := io.ReadAll(s)
	s.Close()
	fmt.Printf("%s (stream %d)\n", b, s.ID())
	// Output: pushed by the server (stream 2)
}
