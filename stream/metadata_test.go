package stream_test

import (
	"context"
	"testing"

	"google.golang.org/protobuf/types/known/wrapperspb"

	"github.com/wsplex/wsplex/stream"
)

func TestMetadataKeysAreCaseInsensitive(t *testing.T) {
	md := stream.Metadata{}
	md.Set("Authorization", "Bearer x")
	md.Add("X-Trace", "1")
	md.Add("x-trace", "2")
	if md.Get("AUTHORIZATION") != "Bearer x" || len(md.Values("X-TRACE")) != 2 {
		t.Fatalf("lookups: %v", md)
	}
	// Mixed-case keys written into the map directly arrive lowercased.
	direct := stream.Metadata{"X-Direct": {"d"}}
	routes := stream.NewRouter(nil)
	routes.HandleFunc("/md", func(ctx context.Context, s *stream.Stream) error {
		return s.Send(wrapperspb.String(s.Metadata()["x-direct"][0]))
	})
	s := open(t, serve(t, routes), "/md", direct)
	var got wrapperspb.StringValue
	if err := s.Receive(&got); err != nil || got.Value != "d" {
		t.Fatalf("got %q, %v", got.Value, err)
	}
}
