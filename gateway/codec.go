package gateway

import (
	"bytes"
	"context"
	"io"

	"connectrpc.com/connect/v2"
	"connectrpc.com/connect/v2/connectproto"
)

// message is a message in transit: its encoded bytes, never decoded.
type message struct {
	b []byte
}

// passCodec encodes and decodes a *message by copying its bytes, and
// any other message with the codec it wraps, so that one codec serves
// forwarded calls and local ones (and the status details that connect-go's
// gRPC protocol encodes with the "proto" codec).
type passCodec struct {
	connect.Codec
}

// Codecs returns the codecs a Handler and a Transport use: "proto" and
// "json", which pass forwarded messages through as bytes, so that a call
// keeps its codec from end to end, and encode other messages as
// connectproto's binary and JSON codecs do. Give them to rpc.NewHandler
// (rpc.Options.Codecs) when a connect.Server serves some procedures itself
// and forwards the others with Forward.
func Codecs() []connect.Codec {
	return []connect.Codec{
		passCodec{connectproto.NewBinaryCodec()},
		passCodec{connectproto.NewJSONCodec()},
	}
}

func (c passCodec) MarshalWrite(ctx context.Context, dst io.Writer, msg any) error {
	if m, ok := msg.(*message); ok {
		_, err := dst.Write(m.b)
		return err
	}
	return c.Codec.MarshalWrite(ctx, dst, msg)
}

func (c passCodec) UnmarshalRead(ctx context.Context, src io.Reader, msg any) error {
	if m, ok := msg.(*message); ok {
		buf := bytes.NewBuffer(m.b[:0])
		_, err := buf.ReadFrom(src)
		m.b = buf.Bytes()
		return err
	}
	return c.Codec.UnmarshalRead(ctx, src, msg)
}
