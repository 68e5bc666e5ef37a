package wsplexnats

import (
	"errors"
	"log/slog"
	"strings"
	"time"
)

// Options configure a Broker. A nil *Options, and the zero value of each
// field, mean the defaults. Every Broker that shares a stream must be given
// the same Stream, Subject and history settings: NewBroker writes them into
// the stream's configuration, and the last one to start wins.
type Options struct {
	// Stream names the JetStream stream that holds the topics. Default
	// "WSPLEX_TOPICS".
	Stream string
	// Subject is the prefix of the stream's subjects: topic t is stored on
	// Subject + "." + base64url(t). It must not overlap another stream's
	// subjects. Default "wsplex.topic".
	Subject string
	// HistorySize is how many of a topic's latest messages the stream
	// keeps (MaxMsgsPerSubject) for subscribers that resume. Default 100;
	// it must not be negative: the broker needs at least a topic's last
	// message to chain the next one to it.
	HistorySize int
	// HistoryTTL is how long the stream keeps a message (MaxAge). Default
	// 5 minutes; negative keeps messages until HistorySize newer ones
	// replace them. A topic quiet for longer than HistoryTTL loses its
	// whole history, and with it the link to its next message: see the
	// package doc, # History.
	HistoryTTL time.Duration
	// MemoryStorage keeps the stream in the NATS servers' memory instead
	// of on disk: faster, but a restarted server loses the history, and
	// the stream, once recreated, starts a new epoch.
	MemoryStorage bool
	// Replicas is the stream's replication factor in a NATS cluster.
	// Default 1.
	Replicas int
	// Logger receives the broker's events: consumers failing at Warn,
	// consumers started and stopped at Debug. Default: discard.
	Logger *slog.Logger
}

const (
	defaultStream      = "WSPLEX_TOPICS"
	defaultSubject     = "wsplex.topic"
	defaultHistorySize = 100
	defaultHistoryTTL  = 5 * time.Minute
)

// withDefaults returns a copy of o with the defaults filled in, or an error
// for an invalid field.
func (o *Options) withDefaults() (Options, error) {
	var c Options
	if o != nil {
		c = *o
	}
	if c.Stream == "" {
		c.Stream = defaultStream
	}
	if c.Subject == "" {
		c.Subject = defaultSubject
	}
	if c.HistorySize == 0 {
		c.HistorySize = defaultHistorySize
	}
	if c.HistoryTTL == 0 {
		c.HistoryTTL = defaultHistoryTTL
	}
	if c.HistoryTTL < 0 {
		c.HistoryTTL = 0 // JetStream's "no age limit"
	}
	if c.Replicas == 0 {
		c.Replicas = 1
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	switch {
	case strings.ContainsAny(c.Stream, " \t\r\n.*>/\\"):
		return c, errors.New("wsplex/nats: Stream name must not contain whitespace, '.', '*', '>', '/' or '\\'")
	case !validPrefix(c.Subject):
		return c, errors.New("wsplex/nats: Subject must be dot-separated tokens without wildcards or whitespace")
	case c.HistorySize < 0:
		return c, errors.New("wsplex/nats: negative HistorySize")
	case c.Replicas < 0:
		return c, errors.New("wsplex/nats: negative Replicas")
	}
	return c, nil
}

// validPrefix reports whether s is a literal NATS subject: non-empty
// tokens without wildcards or whitespace.
func validPrefix(s string) bool {
	for tok := range strings.SplitSeq(s, ".") {
		if tok == "" || tok == "*" || tok == ">" || strings.ContainsAny(tok, " \t\r\n") {
			return false
		}
	}
	return true
}
