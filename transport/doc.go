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
// to the kernel; Close sends them before its close frame.
//
// # Liveness
//
// The peer is pinged once nothing arrived from it for
// Options.KeepAliveInterval, and the connection ends with
// [ErrKeepAliveTimeout] once nothing at all (data, ping or pong) arrived for
// Options.KeepAliveTimeout, both timed from the last arrival. A link busy
// with incoming data is never taken for dead, and while the read goroutine
// waits for the application to Read what it has read, the peer's silence
// does not count.
//
// A peer that drains what is sent to it, however slowly, is alive; one that
// drains nothing for Options.WriteTimeout is not, and the connection ends
// with [ErrWriteTimeout]. On Linux, over TCP (or TLS over TCP), this is
// judged from the bytes the peer's TCP acknowledged (TCP_INFO), looked at
// every WriteTimeout while a write is in progress, so a slow link is never
// cut for being slow. Elsewhere each message must be written within
// WriteTimeout.
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
// Close sends what Writes queued, then a close frame with code 1000
// ([Conn.CloseWithCode] sends another), waits up to Options.CloseTimeout for
// the peer's close frame and closes the TCP connection. A peer's normal
// closure (1000 or 1001) reads as io.EOF; any other ending reads as a
// descriptive error such as a [*CloseError].
package transport
