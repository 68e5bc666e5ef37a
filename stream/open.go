package stream

import (
	"context"
	"errors"
	"fmt"

	"google.golang.org/protobuf/proto"

	"github.com/wsplex/wsplex"
	"github.com/wsplex/wsplex/internal/wire"
	"github.com/wsplex/wsplex/mux"
	wsplexv1 "github.com/wsplex/wsplex/proto/wsplex/v1"
)

// OpenOptions configure Open. A nil *OpenOptions means defaults.
type OpenOptions struct {
	Options

	// Metadata travels with the open request.
	Metadata wsplex.Metadata
}

// Open opens a stream called name on sess and writes the open request,
// which leaves with the first message written, or within a millisecond if
// none is (see Stream.Hold). It does not wait for the peer's answer: the
// caller may Send at once, and the answer arrives with the first Receive
// or Read, or from Response. A name
// no handler serves then gives a *wsplex.Error with CodeNotFound and the
// peer's message. ctx bounds the opening only. Open fails with a
// *wsplex.Error with CodeUnavailable when the peer is shutting down.
func Open(ctx context.Context, sess *mux.Session, name string, opts *OpenOptions) (*Stream, error) {
	var oo OpenOptions
	if opts != nil {
		oo = *opts
	}
	o := oo.Options.withDefaults()
	if err := CheckName(name); err != nil {
		return nil, err
	}
	req := &wsplexv1.OpenRequest{Name: name, Metadata: wire.MetadataProto(oo.Metadata)}
	if size := proto.Size(req); size > o.MaxHeaderSize {
		return nil, fmt.Errorf("wsplex/stream: open request of %d bytes exceeds MaxHeaderSize %d", size, o.MaxHeaderSize)
	}
	ms, err := sess.Open(ctx)
	if errors.Is(err, mux.ErrGoAway) {
		return nil, &wsplex.Error{Code: wsplex.CodeUnavailable, Message: "peer accepts no new streams", Remote: true}
	}
	if err != nil {
		return nil, err
	}
	// The open request waits, for at most a millisecond, for the first
	// message, so that both leave in one WebSocket message.
	ms.Hold()
	if err := writeDelimited(ms, req); err != nil {
		ms.Close()
		return nil, err
	}
	md := oo.Metadata.Clone()
	if md == nil {
		md = wsplex.Metadata{}
	}
	s := &Stream{ms: ms, name: name, md: md, opts: o, opener: true}
	s.headHeld.Store(true)
	return s, nil
}
