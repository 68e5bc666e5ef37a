// Package transport turns a gorilla/websocket connection into a net.Conn.
//
// [New] wraps an established *websocket.Conn. Bytes written to the [Conn]
// travel as binary WebSocket messages and come out of the peer's Read as one
// ordered byte stream: message boundaries carry no meaning, so a reader never
// loses or repeats a byte across messages.
//
// All methods of a Conn may be called from many goroutines at once, as
// net.Conn promises. Writes are serialized; pings, pongs and the close frame
// interleave with data between frames.
//
// # Deadlines
//
// gorilla/websocket treats a timed-out read or write as fatal. Conn keeps its
// own deadlines instead: one goroutine reads the WebSocket and a Read waits for
// its output, and a Write hands a copy of its bytes to a writer goroutine, so
// an expired deadline returns an error matching os.ErrDeadlineExceeded (and
// net.Error.Timeout) while the connection stays usable once the deadline is
// moved. A Write that returned has queued its bytes, as a TCP write hands them
// to the kernel; Close flushes them.
//
// Framing layers that always read and need no deadlines (package mux) can
// skip both hops: Options.DirectRead reads the WebSocket on the caller's
// goroutine, and [Conn.WriteFrame] writes synchronously, one message per
// call.
//
// # Liveness
//
// The peer is pinged every Options.KeepAliveInterval when nothing arrived in
// that time, and the connection is closed with [ErrKeepAliveTimeout] when
// nothing at all (data, ping or pong) arrived for Options.KeepAliveTimeout. A
// link busy with incoming data is therefore never taken for dead, and the
// probe does not queue behind outgoing bulk data.
//
// # Limits
//
// Outgoing messages carry at most Options.MessageSize bytes, because proxies
// and load balancers cap message sizes. An incoming message larger than
// Options.ReadLimit ends the connection with close code 1009; a text message
// ends it with 1003. Incoming messages are read as streams, never buffered
// whole, so memory per connection stays bounded.
//
// # Closing
//
// Close flushes queued writes, sends a close frame with code 1000, waits up to
// Options.CloseTimeout for the peer's close frame and closes the TCP
// connection. A peer's normal closure (1000 or 1001) reads as io.EOF; any
// other ending reads as a descriptive error such as a [*CloseError].
package transport
