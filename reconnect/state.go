package reconnect

import "strconv"

// State is where a Client is in its dial loop.
type State int

const (
	// Connecting: a dial, or OnConnect, is under way.
	Connecting State = iota
	// Connected: Client.Session hands out a live session.
	Connected
	// Waiting: the last attempt failed, or the session ended; the client
	// waits out its backoff before dialing again.
	Waiting
	// Closed: Close was called; the client dials no more.
	Closed
)

// String returns "connecting", "connected", "waiting" or "closed".
func (s State) String() string {
	switch s {
	case Connecting:
		return "connecting"
	case Connected:
		return "connected"
	case Waiting:
		return "waiting"
	case Closed:
		return "closed"
	}
	return "State(" + strconv.Itoa(int(s)) + ")"
}
