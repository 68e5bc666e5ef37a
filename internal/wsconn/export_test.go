package wsconn

// TracksTCPProgress reports whether this platform can see a peer drain a
// TCP connection (see the package doc); without it a write is bounded by
// a socket deadline.
const TracksTCPProgress = tracksTCPProgress

// TracksProgress reports whether c's writes are bounded by the watchdog.
func TracksProgress(c *Conn) bool { return c.wd != nil }
