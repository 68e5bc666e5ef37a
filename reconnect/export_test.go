package reconnect

import "time"

// Backoff is the wait before retry n.
var Backoff = backoff

// NewWithDelay is New with the backoff replaced by delay, which learns each
// retry's n.
func NewWithDelay(rawURL string, opts *Options, delay func(n int) time.Duration) (*Client, error) {
	return newClient(rawURL, opts, delay)
}

// Delays returns MinDelay and MaxDelay after defaults.
func Delays(opts *Options) (lo, hi time.Duration, err error) {
	o, err := opts.withDefaults()
	return o.MinDelay, o.MaxDelay, err
}
