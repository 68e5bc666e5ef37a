package main

import (
	"context"
	"errors"
	"io"
	"slices"
	"strings"
	"sync"

	"connectrpc.com/connect/v2"

	chatv1 "github.com/wsplex/wsplex/examples/chat/gen/chat/v1"
	"github.com/wsplex/wsplex/examples/chat/gen/chat/v1/chatv1connect"
	"github.com/wsplex/wsplex/rpc"
)

// Limits of the chat: lines a room keeps for History, and events a member
// may fall behind by before it misses some.
const (
	historySize = 100
	memberQueue = 256
)

// chat is ChatService. Its methods may be called concurrently.
type chat struct {
	chatv1connect.UnimplementedChatServiceHandler

	mu    sync.Mutex
	rooms map[string]*room
}

func newChat() *chat { return &chat{rooms: map[string]*room{}} }

// room is one room's members and recent lines, guarded by chat.mu.
type room struct {
	members map[*member]bool
	history []*chatv1.Line
}

// member is one Join call: the events the room sends it wait in its
// queue until the call sends them.
type member struct {
	user   string
	events chan *chatv1.ChatEvent
}

// broadcast queues ev for every member of r. A member whose queue is full
// misses ev rather than holding up the room. Call it with chat.mu held.
func (r *room) broadcast(ev *chatv1.ChatEvent) {
	for m := range r.members {
		select {
		case m.events <- ev:
		default:
		}
	}
}

// room returns the room called name, made if there is none. Call it with
// c.mu held.
func (c *chat) room(name string) *room {
	r := c.rooms[name]
	if r == nil {
		r = &room{members: map[*member]bool{}}
		c.rooms[name] = r
	}
	return r
}

func (c *chat) ListRooms(ctx context.Context, req *chatv1.ListRoomsRequest) (*chatv1.ListRoomsResponse, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	res := &chatv1.ListRoomsResponse{}
	for name, r := range c.rooms {
		res.Rooms = append(res.Rooms, &chatv1.Room{Name: name, Members: int32(len(r.members))})
	}
	slices.SortFunc(res.Rooms, func(a, b *chatv1.Room) int { return strings.Compare(a.GetName(), b.GetName()) })
	return res, nil
}

func (c *chat) History(ctx context.Context, req *chatv1.HistoryRequest, s chatv1connect.ChatServiceHistoryServerStream) error {
	c.mu.Lock()
	var lines []*chatv1.Line
	if r := c.rooms[req.GetRoom()]; r != nil {
		lines = slices.Clone(r.history)
	}
	c.mu.Unlock()
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
	name, user := first.GetRoom(), first.GetUser()
	if name == "" || user == "" {
		return connect.NewError(connect.CodeInvalidArgument, "the first request must name the room and the user")
	}
	m := &member{user: user, events: make(chan *chatv1.ChatEvent, memberQueue)}
	c.mu.Lock()
	r := c.room(name)
	r.members[m] = true
	r.broadcast(&chatv1.ChatEvent{Event: &chatv1.ChatEvent_Joined{Joined: user}}) // m hears its own join first
	c.mu.Unlock()
	defer func() {
		c.mu.Lock()
		delete(r.members, m)
		r.broadcast(&chatv1.ChatEvent{Event: &chatv1.ChatEvent_Left{Left: user}})
		if len(r.members) == 0 && len(r.history) == 0 {
			delete(c.rooms, name)
		}
		c.mu.Unlock()
	}()

	// One goroutine sends the member's events while this one reads its
	// lines, so a Confirm waiting for the page holds up no event.
	done := make(chan struct{})
	sent := make(chan struct{})
	go func() {
		defer close(sent)
		for {
			select {
			case ev := <-m.events:
				if s.Send(ev) != nil {
					return // the call is over; Receive fails too
				}
			case <-done:
				return
			}
		}
	}()
	defer func() {
		close(done)
		<-sent
	}()

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
			if err := c.clear(ctx, name, user); err != nil {
				return err
			}
		default:
			c.mu.Lock()
			line := &chatv1.Line{User: user, Text: text}
			r.history = append(r.history, line)
			if len(r.history) > historySize {
				r.history = slices.Delete(r.history, 0, len(r.history)-historySize)
			}
			r.broadcast(&chatv1.ChatEvent{Event: &chatv1.ChatEvent_Line{Line: line}})
			c.mu.Unlock()
		}
	}
}

// clear clears the history of the room called name once the page of the
// user who asked says yes: it calls PageService, which the caller serves,
// on the session its Join call came on. A page that cannot answer
// (no PageService, or gone) fails the Join call.
func (c *chat) clear(ctx context.Context, name, user string) error {
	page := chatv1connect.NewPageServiceClient(connect.NewClient(rpc.NewTransport(rpc.Session(ctx), nil)))
	res, err := page.Confirm(ctx, &chatv1.ConfirmRequest{Question: "Clear the history of " + name + " for everyone?"})
	if err != nil {
		return err
	}
	if !res.GetYes() {
		return nil
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	r := c.room(name)
	r.history = nil
	r.broadcast(&chatv1.ChatEvent{Event: &chatv1.ChatEvent_Cleared{Cleared: user}})
	return nil
}
