// Package reconnect keeps a client's mux.Session up: when the session ends,
// it dials again, with backoff, until it is closed.
//
// A session from mux.Dial ends for good when its connection drops; mux
// never redials, because only the application knows what a new session
// must redo (open subscriptions again, resend what was lost). This package
// is opt-in for clients that want that loop. [New] starts a [Client], which
// dials in its own goroutine and calls [Options.OnConnect] on each new
// session before [Client.Session] hands it out, so the hook is the place to
// reopen streams. [Options.OnStateChange] is told each change of [State],
// with the error that caused it. Both hooks run on the client's goroutine,
// one call at a time. A Client must be closed.
//
// A Client is safe for concurrent use.
//
// # Backoff
//
// After a failed attempt (a refused or failed dial, an OnConnect error, or
// a session that ended) the client waits before dialing again, in state
// [Waiting]. The wait before retry n (from 0) is drawn uniformly from
// [0, min(MaxDelay, MinDelay·2ⁿ)) ("full jitter"), so clients that lost the
// same server do not all come back at once. n goes back to 0 once a session
// has stayed up for at least MaxDelay; a server that accepts sessions and
// drops them at once is thus retried with the same growing waits as one
// that refuses them. The client never gives up: it retries until Close,
// which OnStateChange may start (go c.Close()), for instance on a
// [mux.RefusedError]. Each
// dial is bounded by Options.Dial.HandshakeTimeout, and Close interrupts
// both a dial and a wait.
//
// # Streams of a lost session
//
// Streams are not carried over to the next session. When a session ends,
// every call on it and its streams fails with an error matching
// [mux.ErrSessionClosed] (and net.ErrClosed), and [mux.Session.Err] says
// why; nothing blocks. Get the next session from [Client.Session] and open
// streams again, or let OnConnect do it. A session from Client.Session may
// end at any time; its streams then fail in the same way.
package reconnect
