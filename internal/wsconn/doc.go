// Package wsconn is the WebSocket engine under package transport and
// package mux: a [Conn] owns a gorilla *websocket.Conn and carries a byte
// stream in binary messages.
//
// [New] takes an established *websocket.Conn. [Conn.Read] reads the
// peer's binary messages as one stream, on the caller's goroutine: no
// goroutine and no copy stand between the socket and the caller, and
// pings, pongs and the close frame are handled while a Read is in
// progress, so a user keeps reading (mux's yamux receive goroutine always
// does; transport.Conn has a read goroutine). [Conn.WriteMessage] writes
// synchronously, one message (split at Options.MessageSize) per call, so a
// framing layer decides what shares a message. Read may be called by one
// goroutine at a time; every other method is safe for concurrent use.
//
// There are no deadlines: gorilla/websocket leaves a connection corrupt
// after a timed-out read or write, so a layer that needs deadlines, such
// as transport.Conn, keeps its own above this one.
//
// # Liveness
//
// The peer is pinged once nothing arrived for Options.KeepAliveInterval,
// and the connection ends with [ErrKeepAliveTimeout] once nothing at all
// (data, ping or pong) arrived for Options.KeepAliveTimeout, both timed
// from the last arrival. Only time spent in Read counts: while nobody
// reads, the peer cannot be heard, so a caller that is busy elsewhere does
// not make it dead.
//
// A peer that drains what is written to it, however slowly, is alive; one
// that drains nothing for Options.WriteTimeout is not, and the write in
// progress ends the connection with [ErrWriteTimeout]. A fixed bound on
// each write would cut slow but live links, because the kernel wakes a
// blocked writer only after a third of the send buffer (megabytes, when
// autotuned) has drained; and gorilla leaves a connection corrupt after a
// timed-out write. So on Linux, over TCP or TLS over TCP, writes have no
// socket deadline: while one is in progress, a watchdog reads the
// socket's TCP_INFO every WriteTimeout and ends the connection when the
// peer acknowledged no byte and no write finished since its last look,
// between one and two WriteTimeouts after the peer stopped. Elsewhere (other
// systems, other transports such as net.Pipe) each message, ping and pong
// must be written within WriteTimeout, as a socket deadline enforces.
//
// # Limits
//
// An incoming message larger than Options.ReadLimit ends the connection
// with close code 1009 and [ErrMessageTooBig]; a text message ends it with
// 1003 and [ErrTextMessage]. Incoming messages are read as streams, never
// buffered whole.
//
// # Closing
//
// [Conn.Close] sends a close frame with the caller's code, waits for the
// peer's close frame until the caller's deadline (reading it itself if no
// Read is in progress) and closes the TCP connection. A peer's normal
// closure (1000 or 1001) reads as io.EOF and leaves [ErrPeerClosed] in
// [Conn.Err]; any other ending reads as a descriptive error such as a
// [*CloseError].
package wsconn
