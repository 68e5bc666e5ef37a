package jsinterop

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
	"sync"

	"google.golang.org/protobuf/types/known/wrapperspb"

	"github.com/wsplex/wsplex"
	"github.com/wsplex/wsplex/stream"
	"github.com/wsplex/wsplex/topic"
)

// The topic hubs of the test server (SPEC.md §14), each on its own route:
//
//   - "topics" on /topics/{name}: default options; clients may publish to
//     /topics/pub-*, and OnOpen refuses /topics/secret with
//     CodePermissionDenied;
//   - "short" on /short/{name}: a history of 3 messages, to lose some;
//   - "slow" on /slow/{name}: 4 messages may wait for a subscriber, and a
//     history of 4, so that one that stops reading overflows.
var hubOptions = map[string]struct {
	queue, history int
}{
	"topics": {},
	"short":  {history: 3},
	"slow":   {queue: 4, history: 4},
}

// secretTopic is the topic OnOpen refuses.
const secretTopic = "/topics/secret"

// watchedHub is a topic.Hub that says when a subscription starts or
// ends, so that a test can wait for its Stats to change instead of
// polling them.
type watchedHub struct {
	*topic.Hub
	mu      sync.Mutex
	changed chan struct{} // closed and replaced when a stream of the hub ends
}

func newWatchedHub(opts *topic.Options) *watchedHub {
	h := &watchedHub{changed: make(chan struct{})}
	o := *opts
	o.Broker = watchedBroker{o.Broker, h}
	h.Hub = topic.NewHub(&o)
	return h
}

// change wakes whoever waits for the hub's Stats to change.
func (h *watchedHub) change() {
	h.mu.Lock()
	close(h.changed)
	h.changed = make(chan struct{})
	h.mu.Unlock()
}

// watchedBroker tells its hub when a subscription starts and stops: a
// Hub's Stats count a subscription from before Broker.Subscribe until
// before its stop, so they have changed when these calls return.
type watchedBroker struct {
	topic.Broker
	h *watchedHub
}

func (b watchedBroker) Subscribe(ctx context.Context, name string, since *topic.Position, deliver func(*topic.Message, error)) (topic.Position, func(), error) {
	start, stop, err := b.Broker.Subscribe(ctx, name, since, deliver)
	b.h.change()
	if err != nil {
		return start, stop, err
	}
	return start, func() { stop(); b.h.change() }, nil
}

// waitSubscriptions waits until the hub serves n subscriptions.
func (h *watchedHub) waitSubscriptions(ctx context.Context, n int64) error {
	for {
		h.mu.Lock()
		changed := h.changed
		h.mu.Unlock()
		if h.Stats().Subscriptions == n {
			return nil
		}
		select {
		case <-changed:
		case <-ctx.Done():
			return fmt.Errorf("%d subscriptions, want %d: %w", h.Stats().Subscriptions, n, ctx.Err())
		}
	}
}

// mountTopics registers the hubs on routes and returns them by name.
func mountTopics(routes *stream.Router) map[string]*watchedHub {
	hubs := map[string]*watchedHub{}
	for name, o := range hubOptions {
		opts := &topic.Options{
			QueueSize: o.queue,
			Broker:    topic.NewMemoryBroker(&topic.MemoryOptions{HistorySize: o.history}),
		}
		if name == "topics" {
			opts.AllowPublish = func(ctx context.Context, s *stream.Stream) error {
				if !strings.HasPrefix(s.Name(), "/topics/pub-") {
					return wsplex.Errorf(wsplex.CodePermissionDenied, "clients may not publish to %q", s.Name())
				}
				return nil
			}
		}
		h := newWatchedHub(opts)
		hubs[name] = h
		routes.Handle("/"+name+"/{name}", h)
	}
	return hubs
}

// authorizeTopic is the Router's OnOpen: it refuses secretTopic.
func authorizeTopic(ctx context.Context, s *stream.Stream) (wsplex.Metadata, error) {
	if s.Name() == secretTopic {
		return nil, wsplex.NewError(wsplex.CodePermissionDenied, "not for you")
	}
	return nil, nil
}

// topicControl serves /topic-control, where the Node tests make the
// server act on its hubs. Each StringValue received is a command, answered
// with a StringValue:
//
//	publish HUB TOPIC FROM TO [PAD]  publishes StringValues "m<FROM>" to
//	                                 "m<TO>", each followed by PAD bytes of
//	                                 "x", and answers "EPOCH OFFSET" of the last
//	stats HUB                        answers "SUBSCRIPTIONS OVERFLOWS"
//	wait-subs HUB N                  answers "ok" once HUB serves N subscriptions
func (s *Server) topicControl(ctx context.Context, st *stream.Stream) error {
	for {
		var cmd wrapperspb.StringValue
		if err := st.Receive(&cmd); errors.Is(err, io.EOF) {
			return nil
		} else if err != nil {
			return err
		}
		answer, err := s.topicCommand(ctx, strings.Fields(cmd.Value))
		if err != nil {
			return wsplex.Errorf(wsplex.CodeInvalidArgument, "%q: %v", cmd.Value, err)
		}
		if err := st.Send(wrapperspb.String(answer)); err != nil {
			return err
		}
	}
}

func (s *Server) topicCommand(ctx context.Context, args []string) (string, error) {
	if len(args) < 2 {
		return "", errors.New("no command")
	}
	h := s.hubs[args[1]]
	if h == nil {
		return "", fmt.Errorf("no hub %q", args[1])
	}
	switch {
	case args[0] == "publish" && (len(args) == 5 || len(args) == 6):
		from, err1 := strconv.Atoi(args[3])
		to, err2 := strconv.Atoi(args[4])
		pad := 0
		var err3 error
		if len(args) == 6 {
			pad, err3 = strconv.Atoi(args[5])
		}
		if err := errors.Join(err1, err2, err3); err != nil || pad < 0 || pad > 1<<20 {
			return "", fmt.Errorf("bad numbers")
		}
		var last topic.Position
		for i := from; i <= to; i++ {
			p, err := h.Publish(ctx, args[2], wrapperspb.String(fmt.Sprintf("m%d", i)+strings.Repeat("x", pad)))
			if err != nil {
				return "", err
			}
			last = p
		}
		return last.Epoch + " " + strconv.FormatUint(last.Offset, 10), nil
	case args[0] == "stats" && len(args) == 2:
		st := h.Stats()
		return fmt.Sprintf("%d %d", st.Subscriptions, st.Overflows), nil
	case args[0] == "wait-subs" && len(args) == 3:
		n, err := strconv.ParseInt(args[2], 10, 64)
		if err != nil {
			return "", err
		}
		if err := h.waitSubscriptions(ctx, n); err != nil {
			return "", err
		}
		return "ok", nil
	}
	return "", errors.New("unknown command")
}
