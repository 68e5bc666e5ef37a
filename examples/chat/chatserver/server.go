// Package chatserver is the server of examples/chat: chat.v1.ChatService
// (proto/chat/v1/chat.proto), a connect service, over wsplex, with its
// rooms as topics (package topic), so that every server sharing a broker
// serves the same rooms, and the web page that uses it.
//
// examples/chat runs it alone with the in-process broker; the cluster
// command in module wsplexnats (wsplexnats/examples/chat) runs it on NATS.
package chatserver

import (
	"embed"
	"io/fs"
	"log/slog"
	"net/http"

	"connectrpc.com/connect/v2"

	"github.com/wsplex/wsplex/examples/chat/gen/chat/v1/chatv1connect"
	"github.com/wsplex/wsplex/mux"
	"github.com/wsplex/wsplex/rpc"
	"github.com/wsplex/wsplex/stream"
	"github.com/wsplex/wsplex/topic"
)

// Options configure a chat server. A nil *Options means defaults.
type Options struct {
	// Broker carries the rooms' events. Default: an in-process
	// topic.MemoryBroker, for one server alone.
	Broker topic.Broker
	// Logger receives the server's events. Default: discard.
	Logger *slog.Logger
}

// New returns the chat's mux.Handler: ChatService, each call a stream
// named for its procedure (rpc.Mount), and each room's topic at
// /chat/room/<name>, which clients may subscribe to but not publish on.
// Close or Shutdown the handler when done.
func New(opts *Options) (*mux.Handler, error) {
	var o Options
	if opts != nil {
		o = *opts
	}
	hub := topic.NewHub(&topic.Options{Broker: o.Broker, Logger: o.Logger})
	services := connect.NewServer()
	chatv1connect.RegisterChatServiceHandler(services, newChat(hub))
	routes := stream.NewRouter(&stream.Options{Logger: o.Logger})
	rpc.Mount(routes, services, nil)
	routes.Handle(Topic("{room}"), hub)
	return mux.NewHandler(func(sess *mux.Session) { routes.Serve(sess) }, &mux.HandlerOptions{Options: mux.Options{Logger: o.Logger}})
}

//go:embed web
var webFiles embed.FS

// NewWeb returns an http.Handler that serves the web page and, at
// /wsplex, the chat (New). Close or Shutdown the returned mux.Handler when
// done.
func NewWeb(opts *Options) (http.Handler, *mux.Handler, error) {
	chat, err := New(opts)
	if err != nil {
		return nil, nil, err
	}
	files, _ := fs.Sub(webFiles, "web")
	m := http.NewServeMux()
	m.Handle("/wsplex", chat)
	m.Handle("/", http.FileServerFS(files))
	return m, chat, nil
}
