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
// hashicorp/yamux runs each stream's life: SYN, ACK, FIN, RST, the accept
// backlog and Go Away. The session moves the data itself, between the
// WebSocket and each stream's buffer, and adds one frame to yamux: a reset
// that ends a stream with a status (frame type 4, which any other yamux
// rejects loudly). Frames leave in binary WebSocket messages of at most
// Options.MessageSize bytes; a reply goes out at once, and a burst of
// small frames shares messages and syscalls. SPEC.md in the repository
// root describes every byte.
//
// # Ending streams
//
// A stream ends cleanly with CloseWrite on both sides (each reads io.EOF),
// or with a status through [Stream.Reset], which both ends see as a
// *wsplex.Error. [Stream.Close] ends it at once; if the peer may still be
// sending, it is told to stop, and its writes fail with
// wsplex.ErrPeerClosed while its reads end cleanly and its context lives.
// When a session ends, every stream fails with an error matching
// [ErrSessionClosed], and [Session.Err] says why.
//
// # Deadlines
//
// Stream deadlines hold as net.Conn's do: a Write waiting for the peer's
// window, or for room in the session's output queue, returns at its
// deadline having queued exactly what it reports, and the stream stays
// usable. What a Write queued is sent, unless the session ends.
//
// # What a peer can make this side hold
//
// Whatever the peer sends, one session holds at most:
//
//   - Options.SessionWindow (64 MiB) of stream data received and not yet
//     read. A stream's window starts at 256 KiB and grows, up to
//     Options.WindowSize, only while its reader keeps up and within half
//     of SessionWindow over all streams; data beyond SessionWindow resets
//     the stream it arrives on with CodeResourceExhausted.
//   - Options.MaxStreams (4096) streams the peer opened, each about 1 KB
//     of state while idle; a stream beyond the limit, beyond 256 waiting to
//     be accepted, or opened while the session holds its whole window, is
//     refused at once and costs nothing after.
//   - One message (64 KiB) queued for writing and one being written, plus
//     small control frames: window updates, FINs, resets, and at most 16
//     answers to the peer's pings.
//   - 16 KiB of a reset frame's status being read, and the read buffers:
//     1 KiB here, 4 KiB of yamux's, 1 KiB of the WebSocket's.
//
// Goroutines: three per session (yamux's receive and send goroutines, and a
// flusher while frames are queued), none per stream. The application's own
// goroutines, such as one per stream a stream.Router serves, come on top.
//
// # Shutdown
//
// http.Server.Shutdown does not track upgraded connections. Call
// [Handler.Shutdown]: it refuses new sessions, tells peers to open no more
// streams, waits for open streams up to a deadline and closes the sessions.
package mux
