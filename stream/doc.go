// Package stream gives the streams of a mux.Session names, metadata and
// protobuf message framing.
//
// The opening side calls [Open] with a name such as "/chat/room/42" and
// metadata; the accepting side serves a [Router], which maps names to
// [Handler]s with http.ServeMux's patterns ("/chat/room/{id}"). Either side
// of a session may open streams and serve a Router, so a server can push
// streams to its clients.
//
// A [Stream] carries length-delimited protobuf messages ([Stream.Send],
// [Stream.Receive]) or raw bytes ([Stream.Read], [Stream.Write]: it is a
// net.Conn). The opener may send at once; the peer's answer arrives with
// the first read, or from [Stream.Response]. A refused stream reads as an
// [*Error] whose code matches a sentinel such as [ErrNotFound].
//
// # Ending
//
// A stream ends cleanly when both sides call CloseWrite or a handler
// returns nil (the other side reads io.EOF), or with a status: a handler's
// returned error, [Stream.CloseWithError] or [Stream.Cancel]. Both ends see
// the status as an *Error, after the messages sent before it. A handler's
// context is cancelled when its stream is cancelled, reset or closed, or its
// session ends.
//
// # Bad input
//
// A malformed, oversized or timed-out open request, an invalid name, an
// oversized or malformed message, and a panicking handler each end only
// their own stream, with a status saying why; the session and its other
// streams go on.
package stream
