package reconnect_test

import (
	"context"
	"fmt"
	"io"
	"net/http/httptest"
	"strings"
	"time"

	"github.com/wsplex/wsplex/mux"
	"github.com/wsplex/wsplex/reconnect"
)

// A client that survives the loss of its session: OnConnect runs again on
// the next one, and Session hands that one out.
func Example() {
	// A server that echoes every stream.
	handler, _ := mux.NewHandler(func(sess *mux.Session) {
		for {
			st, err := sess.Accept(context.Background())
			if err != nil {
				return
			}
			go func() {
				defer st.Close()
				io.Copy(st, st)
				st.CloseWrite()
			}()
		}
	}, nil)
	srv := httptest.NewServer(handler)
	defer srv.Close()
	defer handler.Close()

	n := 0
	client, err := reconnect.New("ws"+strings.TrimPrefix(srv.URL, "http"), &reconnect.Options{
		MinDelay: 10 * time.Millisecond,
		MaxDelay: time.Second,
		OnConnect: func(ctx context.Context, sess *mux.Session) error {
			n++ // OnConnect runs on the client's goroutine, one call at a time
			fmt.Println("session", n)
			return nil // a real client would reopen its streams here
		},
	})
	if err != nil {
		fmt.Println(err)
		return
	}
	defer client.Close()

	echo := func(msg string) *mux.Session {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		sess, err := client.Session(ctx)
		if err != nil {
			fmt.Println(err)
			return nil
		}
		st, err := sess.Open(ctx)
		if err != nil {
			fmt.Println(err)
			return nil
		}
		defer st.Close()
		io.WriteString(st, msg)
		st.CloseWrite()
		b, err := io.ReadAll(st)
		if err != nil {
			fmt.Println(err)
			return nil
		}
		fmt.Println(string(b))
		return sess
	}

	sess := echo("hello")
	if sess == nil {
		return
	}
	// Lose the connection, as a network failure or a server restart would.
	sess.Close()
	echo("hello again")
	// Output:
	// session 1
	// hello
	// session 2
	// hello again
}
