package mux

import (
	"context"
	"errors"
	"net/http"
	"net/url"
	"path"
	"strings"
	"sync"

	"github.com/gorilla/websocket"

	"github.com/wsplex/wsplex/transport"
)

// HandlerOptions configure a Handler. A nil *HandlerOptions means all
// defaults.
type HandlerOptions struct {
	Options

	// OriginPatterns lists the hosts, besides the request's own, whose web
	// pages may connect: patterns in path.Match syntax matched against the
	// Origin header's host, such as "app.example.com" or "*.example.com".
	// "*" allows every origin. Requests without an Origin header (non-browser
	// clients) are always allowed. By default only same-origin pages may
	// connect, which stops other sites from riding a user's cookies.
	OriginPatterns []string
}

// Handler is an http.Handler that upgrades requests to WebSocket sessions
// and passes each to its serve func. Because http.Server.Shutdown neither
// closes nor waits for upgraded connections, call Handler.Shutdown (for
// instance from http.Server.RegisterOnShutdown) or Handler.Close.
type Handler struct {
	serve    func(*Session)
	opts     Options
	patterns []string
	up       websocket.Upgrader

	mu       sync.Mutex
	sessions map[*Session]struct{}
	closing  bool
	wg       sync.WaitGroup // ServeHTTP calls that passed the closing check
}

var _ http.Handler = (*Handler)(nil)

// NewHandler returns a Handler that calls serve with each new server-side
// session, on the request's goroutine, and closes the session when serve
// returns. It returns an error for invalid options.
func NewHandler(serve func(*Session), opts *HandlerOptions) (*Handler, error) {
	if serve == nil {
		return nil, errors.New("wsplex/mux: nil serve func")
	}
	var ho HandlerOptions
	if opts != nil {
		ho = *opts
	}
	o, err := ho.Options.withDefaults()
	if err != nil {
		return nil, err
	}
	for _, p := range ho.OriginPatterns {
		if _, err := path.Match(p, ""); err != nil {
			return nil, errors.New("wsplex/mux: bad origin pattern " + p)
		}
	}
	h := &Handler{
		serve:    serve,
		opts:     o,
		patterns: append([]string(nil), ho.OriginPatterns...),
		sessions: make(map[*Session]struct{}),
	}
	h.up = websocket.Upgrader{
		Subprotocols:      []string{Subprotocol},
		CheckOrigin:       h.checkOrigin,
		ReadBufferSize:    readBufferSize,
		WriteBufferSize:   writeBufferSize,
		WriteBufferPool:   writeBufferPool,
		EnableCompression: o.Compression,
		Error: func(w http.ResponseWriter, _ *http.Request, status int, reason error) {
			http.Error(w, "wsplex: "+reason.Error(), status)
		},
	}
	return h, nil
}

// ServeHTTP upgrades the request. Requests that are not WebSocket upgrades
// get 426, clients that do not offer the wsplex subprotocol get 400, pages
// from a disallowed origin get 403, and a handler shutting down answers 503.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if !websocket.IsWebSocketUpgrade(r) {
		w.Header().Set("Upgrade", "websocket")
		http.Error(w, "wsplex: this endpoint accepts only WebSocket upgrades with subprotocol "+Subprotocol,
			http.StatusUpgradeRequired)
		return
	}
	if !offers(r, Subprotocol) {
		http.Error(w, "wsplex: client must offer the WebSocket subprotocol "+Subprotocol, http.StatusBadRequest)
		return
	}
	h.mu.Lock()
	if h.closing {
		h.mu.Unlock()
		http.Error(w, ErrHandlerClosed.Error(), http.StatusServiceUnavailable)
		return
	}
	h.wg.Add(1)
	h.mu.Unlock()
	defer h.wg.Done()

	ws, err := h.up.Upgrade(w, r, nil)
	if err != nil {
		return // the Upgrader has answered
	}
	conn, err := transport.New(ws, h.opts.transport())
	if err != nil {
		ws.Close() // unreachable: options were validated by NewHandler
		return
	}
	s := newSession(conn, false, h.opts)
	defer s.Close()

	h.mu.Lock()
	if h.closing {
		h.mu.Unlock()
		return
	}
	h.sessions[s] = struct{}{}
	h.mu.Unlock()
	defer func() {
		h.mu.Lock()
		delete(h.sessions, s)
		h.mu.Unlock()
	}()
	h.opts.Logger.Debug("wsplex/mux: session started", "remote", s.RemoteAddr())
	h.serve(s)
}

// Shutdown stops accepting sessions (new requests get 503), tells every
// session's peer to open no more streams, waits until their streams are
// closed or ctx is done, then closes all sessions and waits for the serve
// funcs to return. It returns ctx's error if ctx ended first.
func (h *Handler) Shutdown(ctx context.Context) error {
	sessions := h.stop()
	var wg sync.WaitGroup
	for _, s := range sessions {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_ = s.Drain(ctx)
		}()
	}
	wg.Wait()
	for _, s := range sessions {
		_ = s.Close()
	}
	h.wg.Wait()
	return ctx.Err()
}

// Close stops accepting sessions, closes every session at once and waits
// for the serve funcs to return.
func (h *Handler) Close() error {
	for _, s := range h.stop() {
		_ = s.Close()
	}
	h.wg.Wait()
	return nil
}

func (h *Handler) stop() []*Session {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.closing = true
	out := make([]*Session, 0, len(h.sessions))
	for s := range h.sessions {
		out = append(out, s)
	}
	return out
}

func (h *Handler) checkOrigin(r *http.Request) bool {
	origin := r.Header.Get("Origin")
	if origin == "" {
		return true
	}
	u, err := url.Parse(origin)
	if err != nil || u.Host == "" {
		return false
	}
	host := strings.ToLower(u.Host)
	if host == strings.ToLower(r.Host) {
		return true
	}
	for _, p := range h.patterns {
		if ok, _ := path.Match(strings.ToLower(p), host); ok {
			return true
		}
	}
	return false
}

// offers reports whether the request lists proto in Sec-WebSocket-Protocol.
func offers(r *http.Request, proto string) bool {
	for _, v := range r.Header.Values("Sec-WebSocket-Protocol") {
		for _, p := range strings.Split(v, ",") {
			if strings.TrimSpace(p) == proto {
				return true
			}
		}
	}
	return false
}

// Buffer sizes: reads larger than the read buffer bypass it, and a pooled
// write buffer of 64 KiB lets a default-sized message leave as one frame
// and one syscall, while idle connections hold no write buffer.
const (
	readBufferSize  = 1 << 10
	writeBufferSize = 64 << 10
)

var writeBufferPool = &sync.Pool{}
