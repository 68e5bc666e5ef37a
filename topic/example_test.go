package topic_test

import (
	"context"
	"fmt"
	"net/http/httptest"
	"strings"
	"time"

	"google.golang.org/protobuf/types/known/wrapperspb"

	"github.com/wsplex/wsplex/mux"
	"github.com/wsplex/wsplex/reconnect"
	"github.com/wsplex/wsplex/stream"
	"github.com/wsplex/wsplex/topic"
)

// A server serves topics with a Hub and publishes; a client subscribes
// through a reconnect.Client, so that its subscription resumes from its
// last position whenever the connection comes back.
func Example() {
	hub := topic.NewHub(nil)
	routes := stream.NewRouter(nil)
	routes.Handle("/news/{section}", hub)
	handler, _ := mux.NewHandler(func(sess *mux.Session) { routes.Serve(sess) }, nil)
	srv := httptest.NewServer(handler)
	defer srv.Close()
	defer handler.Close()

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	client, err := reconnect.New("ws"+strings.TrimPrefix(srv.URL, "http"), &reconnect.Options{MinDelay: 10 * time.Millisecond})
	if err != nil {
		fmt.Println(err)
		return
	}
	defer client.Close()

	// Publish the first message before the client subscribes, and
	// subscribe from the start of the topic's history.
	first, _ := hub.Publish(ctx, "/news/go", wrapperspb.String("Go 1.26 is out"))
	since := &topic.Position{Epoch: first.Epoch}
	n := 0
	for ev, err := range topic.Subscribe(ctx, client, "/news/go", &topic.SubscribeOptions{Since: since}) {
		if err != nil {
			fmt.Println(err)
			return
		}
		var headline wrapperspb.StringValue
		ev.Unmarshal(&headline)
		fmt.Println(ev.Position.Offset, headline.Value)
		if n++; n == 1 {
			hub.Publish(ctx, "/news/go", wrapperspb.String("wsplex gains topics"))
		} else {
			break // unsubscribes
		}
	}
	// Output:
	// 1 Go 1.26 is out
	// 2 wsplex gains topics
}
