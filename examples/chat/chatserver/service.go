package chatserver

import (
	"context"
	"errors"
	"io"
	"slices"
	"strings"
	"sync"

	"connectrpc.com/connect/v2"
	"google.golang.org/protobuf/proto"

	"github.com/wsplex/wsplex"
	chatv1 "github.com/wsplex/wsplex/examples/chat/gen/chat/v1"
	"github.com/wsplex/wsplex/examples/chat/gen/chat/v1/chatv1connect"
	"github.com/wsplex/wsplex/rpc"
	"github.com/wsplex/wsplex/stream"
	"github.com/wsplex/wsplex/topic"
)

// chat is ChatService. A room is the topic /chat/room/<name>: every event
// is published to it, and every member's Join call relays it, so members
// on every server that shares the hub's broker are in one room, and a
// member that lost its call resumes from its last event.
type chat struct {
	chatv1connect.UnimplementedChatServiceHandler
	hub *topic.Hub

	mu      sync.Mutex
	members map[string]int // members on this server, by room
}

func newChat(hub *topic.Hub) *chat { return &chat{hub: hub, members: map[string]int{}} }

// Topic returns the topic of the room called name.
func Topic(room string) string { return "/chat/room/" + room }

func checkRoom(room string) error {
	if room == "" || strings.Contains(room, "/") {
		return connect.NewError(connect.CodeInvalidArgument, "a room's name is not empty and has no /")
	}
	if err := stream.CheckName(Topic(room)); err != nil {
		return connect.NewError(connect.CodeInvalidArgument, err.Error())
	}
	return nil
}

func (c *chat) publish(ctx context.Context, room string, ev *chatv1.ChatEvent) error {
	if _, err := c.hub.Publish(ctx, Topic(room), ev); err != nil {
		return connect.NewError(connect.CodeUnavailable, err.Error())
	}
	return nil
}

func (c *chat) ListRooms(ctx context.Context, req *chatv1.ListRoomsRequest) (*chatv1.ListRoomsResponse, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	res := &chatv1.ListRoomsResponse{}
	for name, n := range c.members {
		res.Rooms = append(res.Rooms, &chatv1.Room{Name: name, Members: int32(n)})
	}
	slices.SortFunc(res.Rooms, func(a, b *chatv1.Room) int { return strings.Compare(a.GetName(), b.GetName()) })
	return res, nil
}

func (c *chat) History(ctx context.Context, req *chatv1.HistoryRequest, s chatv1connect.ChatServiceHistoryServerStream) error {
	if err := checkRoom(req.GetRoom()); err != nil {
		return err
	}
	msgs, _, err := c.hub.History(ctx, Topic(req.GetRoom()))
	if err != nil {
		return connect.NewError(connect.CodeUnavailable, err.Error())
	}
	var lines []*chatv1.Line
	for _, m := range msgs {
		var ev chatv1.ChatEvent
		if proto.Unmarshal(m.Data, &ev) != nil {
			continue
		}
		switch e := ev.GetEvent().(type) {
		case *chatv1.ChatEvent_Line:
			lines = append(lines, e.Line)
		case *chatv1.ChatEvent_Cleared:
			lines = lines[:0]
		}
	}
	for _, l := range lines {
		if err := s.Send(l); err != nil {
			return err
		}
	}
	return nil
}

func (c *chat) Join(ctx context.Context, s chatv1connect.ChatServiceJoinServerStream) error {
	first, err := s.Receive()
	if errors.Is(err, io.EOF) {
		return nil
	} else if err != nil {
		return err
	}
	room, user := first.GetRoom(), first.GetUser()
	if user == "" {
		return connect.NewError(connect.CodeInvalidArgument, "the first request must name the room and the user")
	}
	if err := checkRoom(room); err != nil {
		return err
	}
	c.mu.Lock()
	c.members[room]++
	c.mu.Unlock()
	defer func() {
		c.mu.Lock()
		if c.members[room]--; c.members[room] == 0 {
			delete(c.members, room)
		}
		c.mu.Unlock()
		c.publish(context.WithoutCancel(ctx), room, &chatv1.ChatEvent{Event: &chatv1.ChatEvent_Left{Left: user}})
	}()
	if err := c.publish(ctx, room, &chatv1.ChatEvent{Event: &chatv1.ChatEvent_Joined{Joined: user}}); err != nil {
		return err
	}

	// A member that resumes gets what happened after since; a new one the
	// room's history, which ends with its own join. A position of no
	// epoch is one no broker made: it starts with all the history held.
	since, fresh := &topic.Position{}, true
	if p := first.GetSince(); p != nil {
		since, fresh = &topic.Position{Epoch: p.GetEpoch(), Offset: p.GetOffset()}, false
	}

	// One goroutine relays the room's events while this one reads the
	// member's lines, so a Confirm waiting for the page holds up no event.
	relayCtx, stop := context.WithCancel(ctx)
	relayed := make(chan error, 1)
	go func() { relayed <- c.relay(relayCtx, s, room, since, fresh) }()
	defer func() {
		stop()
		<-relayed
	}()

	lines := make(chan error, 1)
	go func() { lines <- c.read(ctx, s, room, user) }()
	select {
	case err := <-lines:
		return err
	case err := <-relayed:
		relayed <- err // for the deferred wait
		return err
	}
}

// relay sends the room's events to the member from since.
func (c *chat) relay(ctx context.Context, s chatv1connect.ChatServiceJoinServerStream, room string, since *topic.Position, fresh bool) error {
	for ev, err := range c.hub.Subscribe(ctx, Topic(room), since) {
		if err != nil {
			if ctx.Err() != nil {
				return nil // the call is over
			}
			return connect.NewError(connect.Code(wsplex.CodeOf(err)), err.Error())
		}
		out := &chatv1.ChatEvent{}
		if ev.Gap {
			if fresh {
				fresh = false
				continue // a new member asked for the history, not for what it missed
			}
			out.Event = &chatv1.ChatEvent_Missed{Missed: true}
		} else if err := ev.Unmarshal(out); err != nil {
			continue
		}
		fresh = false
		out.Position = &chatv1.Position{Epoch: ev.Position.Epoch, Offset: ev.Position.Offset}
		if err := s.Send(out); err != nil {
			return nil // the call is over; Receive fails too
		}
	}
	return nil
}

// read publishes the member's lines until it half-closes.
func (c *chat) read(ctx context.Context, s chatv1connect.ChatServiceJoinServerStream, room, user string) error {
	for {
		req, err := s.Receive()
		if errors.Is(err, io.EOF) {
			return nil
		} else if err != nil {
			return err
		}
		switch text := req.GetText(); text {
		case "":
		case "/clear":
			if err := c.clear(ctx, room, user); err != nil {
				return err
			}
		default:
			if err := c.publish(ctx, room, &chatv1.ChatEvent{Event: &chatv1.ChatEvent_Line{Line: &chatv1.Line{User: user, Text: text}}}); err != nil {
				return err
			}
		}
	}
}

// clear clears the history of room once the page of the user who asked
// says yes: it calls PageService, which the caller serves, on the session
// its Join call came on. A page that cannot answer (no PageService, or
// gone) fails the Join call.
func (c *chat) clear(ctx context.Context, room, user string) error {
	page := chatv1connect.NewPageServiceClient(connect.NewClient(rpc.NewTransport(rpc.Session(ctx), nil)))
	res, err := page.Confirm(ctx, &chatv1.ConfirmRequest{Question: "Clear the history of " + room + " for everyone?"})
	if err != nil {
		return err
	}
	if !res.GetYes() {
		return nil
	}
	return c.publish(ctx, room, &chatv1.ChatEvent{Event: &chatv1.ChatEvent_Cleared{Cleared: user}})
}
