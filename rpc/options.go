package rpc

import (
	"connectrpc.com/connect/v2"
	"connectrpc.com/connect/v2/connectproto"
)

// Options configure a Transport or a Handler. A nil *Options means
// defaults.
type Options struct {
	// Codecs are the message encodings. A Transport's calls use the first;
	// a Handler serves calls in any of them, chosen by name (SPEC.md §13.1
	// names "proto" and "json"). Default: connectproto's binary codec, then
	// its JSON codec.
	Codecs []connect.Codec

	// MaxMessageSize bounds a message a Transport sends or receives; larger
	// ones fail the call with connect.CodeResourceExhausted. Default 4 MiB,
	// as stream.Options. A Handler reads messages within the limit of the
	// stream.Router that serves it.
	MaxMessageSize int
}

// protoCodec is the default binary codec, which calls encode and decode
// through the stream package directly, without a copy of each message.
var protoCodec = connectproto.NewBinaryCodec()

var defaultCodecs = []connect.Codec{protoCodec, connectproto.NewJSONCodec()}

func (o *Options) codecs() []connect.Codec {
	if o == nil || len(o.Codecs) == 0 {
		return defaultCodecs
	}
	return o.Codecs
}

func (o *Options) maxMessageSize() int {
	if o == nil {
		return 0
	}
	return o.MaxMessageSize
}
