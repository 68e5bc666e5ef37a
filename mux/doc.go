// Package mux runs a yamux session over a WebSocket connection, so that one
// connection carries many independent, flow-controlled byte streams in both
// directions.
//
// A client calls [Dial] with a ws:// or wss:// URL; a server mounts a
// [Handler], which upgrades each request and passes the new [Session] to
// its serve func. Both sides negotiate the WebSocket subprotocol
// [Subprotocol]. On a Session, either side may [Session.Open] streams and
// [Session.Accept] the peer's. Each [Stream] is a net.Conn.
//
// Sessions, Streams and Handlers are safe for concurrent use. Sessions and
// Streams must be closed.
//
// # Wire
//
// yamux frames travel in binary WebSocket messages of at most
// Options.MessageSize bytes: a frame that answers the peer goes out at once
// unless a batch is already on its way, and a burst of small frames shares
// messages and syscalls; no frame is split unless it is larger than a
// message. wsplex adds one frame to yamux: a reset that carries a status,
// since yamux can only half-close a stream. SPEC.md in the repository root
// describes every byte.
//
// # Ending streams
//
// A stream ends cleanly with CloseWrite on both sides (each reads io.EOF),
// or with a status through [Stream.Reset], which both ends see as a
// [*ResetError]. [Stream.Close] ends it at once; if the peer may still be
// sending, it is told to stop. When a session ends, every stream fails with
// an error matching [ErrSessionClosed], and [Session.Err] says why.
//
// # Shutdown
//
// http.Server.Shutdown does not track upgraded connections. Call
// [Handler.Shutdown]: it refuses new sessions, tells peers to open no more
// streams, waits for open streams up to a deadline and closes the sessions.
package mux
