package mux

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"path"
	"runtime/debug"
	"strings"
	"sync"

	"github.com/gorilla/websocket"

	"github.com/wsplex/wsplex/internal/wsconn"
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

	// Authenticate, if set, sees every upgrade request before the upgrade
	// (after the origin check). An error refuses the request: one made by
	// Refuse chooses the status and body; any other error gets 401
	// Unauthorized, and its text is logged, not sent. The info it returns
	// travels in the session's context, and so in every stream's: read it
	// with AuthInfo. BearerToken finds a token wherever a client may put
	// one.
	Authenticate func(r *http.Request) (info any, err error)

	// MaxSessions caps the sessions served at once, counting upgrades
	// under way; requests over the cap get 503 Service Unavailable with a
	// Retry-After header. A session stops counting once it has ended and
	// its connection is closed, even if its serve func has not returned:
	// a serve func should return when Session.Done is closed. Default
	// 10,000.
	MaxSessions int
}

// Refuse returns an error for HandlerOptions.Authenticate that refuses the
// upgrade with status (such as http.StatusForbidden) and message as the
// response body. A status outside 400-599 is sent as 500.
func Refuse(status int, message string) error {
	return &RefusedError{StatusCode: status, Message: message}
}

// RefusedError is an error that refuses an upgrade with an HTTP status. Dial
// returns one, wrapped, when a server refuses its upgrade.
type RefusedError struct {
	StatusCode int
	Message    string // the response body, trimmed
}

func (e *RefusedError) Error() string {
	if e.Message == "" {
		return fmt.Sprintf("upgrade refused: %d %s", e.StatusCode, http.StatusText(e.StatusCode))
	}
	return fmt.Sprintf("upgrade refused: %d %s: %s", e.StatusCode, http.StatusText(e.StatusCode), e.Message)
}

type authInfoKey struct{}

// AuthInfo returns the info HandlerOptions.Authenticate returned for the
// session that ctx belongs to (a session's, a stream's or a stream
// handler's context), or nil.
func AuthInfo(ctx context.Context) any {
	return ctx.Value(authInfoKey{})
}

// BearerToken returns the bearer token a client sent with r, looking in
// turn at the Authorization header ("Bearer <token>"), at a WebSocket
// subprotocol made by TokenProtocol, and at the access_token query
// parameter; "" if there is none. Browsers cannot set headers on a
// WebSocket, so they must use one of the last two; see docs/deploying.md
// for the trade-offs.
func BearerToken(r *http.Request) string {
	if scheme, tok, ok := strings.Cut(r.Header.Get("Authorization"), " "); ok && strings.EqualFold(scheme, "Bearer") {
		return strings.TrimSpace(tok)
	}
	for _, p := range websocket.Subprotocols(r) {
		if enc, ok := strings.CutPrefix(p, tokenProtocolPrefix); ok {
			if tok, err := base64.RawURLEncoding.DecodeString(enc); err == nil {
				return string(tok)
			}
		}
	}
	return r.URL.Query().Get("access_token")
}

// Handler is an http.Handler that upgrades requests to WebSocket sessions
// and passes each to its serve func. Reading the request is the
// http.Server's job: set its ReadHeaderTimeout, or clients that connect and
// stall hold a connection and a goroutine each until they go. Because http.Server.Shutdown neither
// closes nor waits for upgraded connections, call Handler.Shutdown (for
// instance from http.Server.RegisterOnShutdown) or Handler.Close.
type Handler struct {
	serve    func(*Session)
	opts     Options
	patterns []string
	auth     func(*http.Request) (any, error)
	max      int
	up       websocket.Upgrader

	mu       sync.Mutex
	sessions map[*Session]struct{}
	closing  bool
	active   int            // upgrades under way and sessions not yet ended
	wg       sync.WaitGroup // upgrades under way and serve funcs running
}

var _ http.Handler = (*Handler)(nil)

// NewHandler returns a Handler that calls serve with each new server-side
// session, on a goroutine of its own, and closes the session when serve
// returns. ServeHTTP returns once the session has started, so that the
// http.Server releases the request; serve must not keep using the request.
// A panic in serve is logged (at Error) and closes its session only. It returns an error for invalid options.
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
	if ho.MaxSessions < 0 {
		return nil, errors.New("wsplex/mux: negative MaxSessions")
	}
	if ho.MaxSessions == 0 {
		ho.MaxSessions = defaultMaxSessions
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
		auth:     ho.Authenticate,
		max:      ho.MaxSessions,
		sessions: make(map[*Session]struct{}),
	}
	h.up = websocket.Upgrader{
		Subprotocols:      []string{Subprotocol},
		CheckOrigin:       h.checkOrigin,
		HandshakeTimeout:  DefaultHandshakeTimeout, // for writing the response
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
// from a disallowed origin get 403, requests Authenticate refuses get its
// status, and a handler shutting down or at MaxSessions answers 503.
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
	if !h.checkOrigin(r) {
		http.Error(w, "wsplex: request origin not allowed", http.StatusForbidden)
		return
	}
	if h.isClosing() {
		http.Error(w, ErrHandlerClosed.Error(), http.StatusServiceUnavailable)
		return
	}
	// The session's context does not keep the request's: its values would
	// cost every idle session 2.5 KB. Authenticate returns what handlers
	// need from the request.
	base := context.Background()
	if h.auth != nil {
		info, err := h.auth(r)
		if err != nil {
			var re *RefusedError
			if !errors.As(err, &re) {
				h.opts.Logger.Debug("wsplex/mux: authentication failed", "remote", r.RemoteAddr, "err", err)
				re = &RefusedError{StatusCode: http.StatusUnauthorized, Message: "wsplex: unauthenticated"}
			}
			status := re.StatusCode
			if status < 400 || status > 599 {
				status = http.StatusInternalServerError
			}
			http.Error(w, re.Message, status)
			return
		}
		base = context.WithValue(base, authInfoKey{}, info)
	}
	// The cap is checked after authentication, so that clients that fail
	// it cannot take slots.
	h.mu.Lock()
	switch {
	case h.closing:
		h.mu.Unlock()
		http.Error(w, ErrHandlerClosed.Error(), http.StatusServiceUnavailable)
		return
	case h.active >= h.max:
		h.mu.Unlock()
		h.opts.Logger.Debug("wsplex/mux: refusing session over limit", "remote", r.RemoteAddr, "limit", h.max)
		w.Header().Set("Retry-After", "1")
		http.Error(w, fmt.Sprintf("wsplex: server at its limit of %d sessions", h.max), http.StatusServiceUnavailable)
		return
	}
	h.active++
	h.wg.Add(1)
	h.mu.Unlock()
	s := h.upgrade(w, r, base)
	if s == nil {
		return
	}
	h.opts.Logger.Debug("wsplex/mux: session started", "remote", s.RemoteAddr())
	// Returning lets the http.Server drop what it keeps for the request
	// while its handler runs: its goroutine, and 8 KB of buffers that the
	// hijacked connection no longer uses.
	go h.run(s)
}

// upgrade answers the upgrade and starts the session. It returns nil if it
// did not (the client got an answer, or the Handler is closing), after
// undoing what ServeHTTP counted. The session gives its slot back when it
// ends, and run calls h.wg.Done.
func (h *Handler) upgrade(w http.ResponseWriter, r *http.Request, base context.Context) *Session {
	release := func() {
		h.mu.Lock()
		h.active--
		h.mu.Unlock()
	}
	ws, err := h.up.Upgrade(w, r, nil)
	if err != nil {
		release()
		h.wg.Done()
		return nil // the Upgrader has answered
	}
	conn, err := wsconn.New(ws, h.opts.transport())
	if err != nil {
		ws.Close() // unreachable: options were validated by NewHandler
		release()
		h.wg.Done()
		return nil
	}
	s := newSession(base, conn, false, h.opts, release)
	h.mu.Lock()
	if h.closing {
		h.mu.Unlock()
		s.Close()
		h.wg.Done()
		return nil
	}
	h.sessions[s] = struct{}{}
	h.mu.Unlock()
	return s
}

// run calls the serve func, then closes the session. A panic in the serve
// func is logged and ends only its session, as net/http does for handlers.
func (h *Handler) run(s *Session) {
	defer h.wg.Done()
	defer s.Close()
	defer func() {
		h.mu.Lock()
		delete(h.sessions, s)
		h.mu.Unlock()
	}()
	defer func() {
		if v := recover(); v != nil && v != http.ErrAbortHandler {
			h.opts.Logger.Error("wsplex/mux: serve func panicked", "remote", s.RemoteAddr(), "panic", v, "stack", string(debug.Stack()))
		}
	}()
	h.serve(s)
}

// Shutdown stops accepting sessions (new requests get 503), tells every
// session's peer to open no more streams, waits until their streams are
// closed or ctx is done, then closes all sessions and waits for the serve
// funcs to return, or for ctx. It returns ctx's error if ctx ended first;
// serve funcs still running then see their sessions closed.
func (h *Handler) Shutdown(ctx context.Context) error {
	sessions := h.stop()
	var wg sync.WaitGroup
	for _, s := range sessions {
		wg.Go(func() { _ = s.Drain(ctx) })
	}
	wg.Wait()
	for _, s := range sessions {
		_ = s.Close()
	}
	served := make(chan struct{})
	go func() {
		h.wg.Wait()
		close(served)
	}()
	select {
	case <-served:
	case <-ctx.Done():
	}
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

func (h *Handler) isClosing() bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.closing
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
// write buffer the size of a default message (64 KiB + 64 bytes) lets one
// leave as one frame and one syscall, while idle connections hold no write
// buffer.
const defaultMaxSessions = 10000

const (
	readBufferSize  = 1 << 10
	writeBufferSize = wsconn.DefaultMessageSize
)

var writeBufferPool = &sync.Pool{}
