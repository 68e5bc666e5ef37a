package stream

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"runtime/debug"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/wsplex/wsplex"
	"github.com/wsplex/wsplex/internal/wire"
	"github.com/wsplex/wsplex/mux"
	wsplexv1 "github.com/wsplex/wsplex/proto/wsplex/v1"
	"github.com/wsplex/wsplex/transport"
)

// Handler serves one stream. ServeStream runs on its own goroutine; ctx is
// the stream's context, cancelled when the stream is cancelled or reset or
// the session ends. The returned error sets the status the stream ends
// with, as Stream.CloseWithError sends it: nil ends it cleanly, a
// *wsplex.Error with its code.
type Handler interface {
	ServeStream(ctx context.Context, s *Stream) error
}

// A Handler that also implements Answerer answers the open itself: the
// Router runs it before answering, so that the answer can carry what the
// handler decides, as an RPC's response headers do. The stream answers
// with CodeOK and its ResponseMetadata on the handler's first Send, Write,
// CloseWrite or Respond, or when the handler returns; a handler that
// returns an error before answering answers with that error. Without
// Answerer, the Router answers CodeOK (with Options.OnOpen's metadata)
// before the handler runs, so that an opener waiting for the answer before
// it writes does not wait for a handler that reads first.
type Answerer interface {
	// AnswersOpen reports whether the handler answers the open itself.
	AnswersOpen() bool
}

// HandlerFunc adapts a func to Handler.
type HandlerFunc func(ctx context.Context, s *Stream) error

// ServeStream calls f(ctx, s).
func (f HandlerFunc) ServeStream(ctx context.Context, s *Stream) error { return f(ctx, s) }

// Router routes the streams a peer opens to handlers by name. Patterns are
// those of http.ServeMux without method or host: "/chat/room/42" matches
// only that name, "/chat/room/{id}" any one segment (read it with
// Stream.PathValue), "/files/{path...}" the rest, and a pattern ending in
// "/" every name below it; the most specific pattern wins.
//
// A Router may serve many sessions at once, and Handle may be called while
// it serves.
type Router struct {
	opts Options
	m    *http.ServeMux
}

// NewRouter returns an empty Router. A nil opts means defaults.
func NewRouter(opts *Options) *Router {
	return &Router{opts: opts.withDefaults(), m: http.NewServeMux()}
}

// Handle registers h for pattern. Like http.ServeMux.Handle, it panics if
// the pattern is invalid or conflicts with another: both are programming
// errors.
func (r *Router) Handle(pattern string, h Handler) {
	if !strings.HasPrefix(pattern, "/") {
		panic("wsplex/stream: pattern " + pattern + " must start with \"/\"")
	}
	r.m.HandleFunc(pattern, func(w http.ResponseWriter, req *http.Request) {
		if mw, ok := w.(*matchWriter); ok {
			mw.h, mw.req = h, req
		}
	})
}

// HandleFunc registers f for pattern.
func (r *Router) HandleFunc(pattern string, f func(ctx context.Context, s *Stream) error) {
	r.Handle(pattern, HandlerFunc(f))
}

// Serve accepts the streams the peer of sess opens and serves each on its
// own goroutine until the session ends, then waits for the handlers to
// return. It returns nil when the session was closed by either side, and
// otherwise the error that ended it.
func (r *Router) Serve(sess *mux.Session) error {
	var wg sync.WaitGroup
	defer wg.Wait()
	w := &workers{next: make(chan *mux.Stream), quit: make(chan struct{}), wg: &wg, idleFor: workerIdle}
	defer close(w.quit)
	for {
		ms, err := sess.Accept(context.Background())
		if err != nil {
			<-sess.Done()
			if errors.Is(sess.Err(), mux.ErrSessionClosed) || errors.Is(sess.Err(), transport.ErrPeerClosed) {
				return nil
			}
			return sess.Err()
		}
		select {
		case w.next <- ms: // an idle worker takes it
		default:
			wg.Add(1)
			go r.work(w, ms)
		}
	}
}

// Each stream is served on a goroutine of its own. A goroutine that has
// served one waits, up to maxIdleWorkers of them for workerIdle, for the
// next: a fresh goroutine grows its stack on every stream it serves,
// which cost a small RPC call a tenth of its time.
const (
	maxIdleWorkers = 8
	workerIdle     = time.Second
)

// workers are a session's goroutines that serve streams.
type workers struct {
	next    chan *mux.Stream // an idle worker receives
	quit    chan struct{}    // closed when Serve returns
	idle    atomic.Int32
	wg      *sync.WaitGroup
	idleFor time.Duration // workerIdle
	idled   func()        // for tests: called when a worker starts to wait
}

// work serves ms, then the streams handed to it while it waits.
func (r *Router) work(w *workers, ms *mux.Stream) {
	defer w.wg.Done()
	var t *time.Timer
	for {
		r.serveStream(ms)
		if w.idle.Add(1) > maxIdleWorkers {
			w.idle.Add(-1)
			return
		}
		if w.idled != nil {
			w.idled()
		}
		if t == nil {
			t = time.NewTimer(w.idleFor)
		} else {
			t.Reset(w.idleFor)
		}
		select {
		case ms = <-w.next:
			w.idle.Add(-1)
		case <-t.C:
			w.idle.Add(-1)
			return
		case <-w.quit:
			w.idle.Add(-1)
			t.Stop()
			return
		}
	}
}

func (r *Router) serveStream(ms *mux.Stream) {
	detached := false
	defer func() {
		if !detached {
			ms.Close()
		}
	}()
	log := r.opts.Logger
	ms.SetReadDeadline(time.Now().Add(r.opts.OpenTimeout))
	s := &Stream{ms: ms, opts: r.opts}
	req, refusal := readOpenRequest(ms, r.opts.MaxHeaderSize)
	if refusal != nil {
		log.Debug("wsplex/stream: refused open request", "remote", ms.RemoteAddr(), "code", refusal.Code, "err", refusal.Message)
		refuse(ms, refusal)
		return
	}
	if req == nil {
		return // the peer left before asking
	}
	ms.SetReadDeadline(time.Time{})
	name := req.GetName()
	h, values := r.match(name)
	if h == nil {
		log.Debug("wsplex/stream: no handler", "stream", name, "remote", ms.RemoteAddr())
		if _, ok := req.Metadata["wsplex-rpc"]; ok {
			// An RPC call (SPEC.md §13.1): an unknown procedure.
			refuse(ms, wsplex.Errorf(wsplex.CodeUnimplemented, "no service for procedure %q", name))
		} else {
			refuse(ms, wsplex.Errorf(wsplex.CodeNotFound, "no handler for stream %q", name))
		}
		return
	}
	s.name, s.md, s.pathValues = name, wire.Metadata(req.Metadata), values
	s.respMD = wsplex.Metadata{}
	if r.opts.OnOpen != nil {
		md, err := r.opts.OnOpen(s.Context(), s)
		if err != nil {
			log.Debug("wsplex/stream: OnOpen refused stream", "stream", name, "remote", ms.RemoteAddr(), "err", err)
			refuse(ms, statusOf(err))
			return
		}
		for k, v := range md {
			s.respMD[k] = v
		}
	}
	if a, ok := h.(Answerer); ok && a.AnswersOpen() {
		s.deferred = true
	} else if err := s.Respond(); err != nil && !errors.Is(err, wsplex.ErrPeerClosed) {
		// A peer that closed the stream already (SPEC.md §5, a CodeOK
		// reset) reads no answer, but what it sent is still served.
		return
	}
	detached = r.run(h, s)
}

// run calls the handler and ends the stream with its outcome. A panic
// resets only this stream.
func (r *Router) run(h Handler, s *Stream) (detached bool) {
	defer func() {
		if p := recover(); p != nil {
			r.opts.Logger.Error("wsplex/stream: handler panicked", "stream", s.name, "remote", s.RemoteAddr(),
				"panic", fmt.Sprint(p), "stack", string(debug.Stack()))
			s.CloseWithError(wsplex.NewError(wsplex.CodeInternal, "handler panicked"))
		}
	}()
	if err := h.ServeStream(s.Context(), s); err != nil {
		s.CloseWithError(err)
		return false
	}
	if s.detached {
		return true // its holder ends it
	}
	s.Respond()
	s.CloseWrite()
	s.Close()
	return false
}

// readOpenRequest decodes the open request at the start of a stream. It
// returns the request, or the status to refuse it with, or neither when
// the peer left before sending one.
func readOpenRequest(ms peeker, limit int) (*wsplexv1.OpenRequest, *wsplex.Error) {
	var req wsplexv1.OpenRequest
	if err := readMessage(ms, &req, limit); err != nil {
		return nil, classifyBadRequest(err, limit)
	}
	if err := CheckName(req.GetName()); err != nil {
		return nil, wsplex.NewError(wsplex.CodeInvalidArgument, err.Error())
	}
	return &req, nil
}

// classifyBadRequest turns a failed open-request read into a refusal, or
// nil when there is nobody left to answer.
func classifyBadRequest(err error, limit int) *wsplex.Error {
	var tooBig *errTooBig
	switch {
	case errors.As(err, &tooBig):
		return wsplex.Errorf(wsplex.CodeResourceExhausted, "open request of %d bytes exceeds the %d-byte limit", tooBig.size, limit)
	case isTimeout(err):
		return wsplex.NewError(wsplex.CodeDeadlineExceeded, "no open request in time")
	case isMalformed(err), err == io.ErrUnexpectedEOF:
		return wsplex.NewError(wsplex.CodeInvalidArgument, "malformed open request: "+err.Error())
	}
	return nil // the peer left (EOF, reset, session closed)
}

// refuse answers an open with a failure status and resets the stream, so
// that the opener's reads and writes fail at once.
func refuse(ms *mux.Stream, e *wsplex.Error) {
	ms.SetWriteDeadline(time.Now().Add(time.Second))
	writeDelimited(ms, &wsplexv1.OpenResponse{Status: wire.StatusProto(e), Metadata: wire.MetadataProto(e.Metadata)})
	ms.Reset(e)
}

// match finds the handler for name with http.ServeMux's matching rules,
// and the values of the pattern's wildcards as key, value pairs. The
// stream keeps those rather than the whole matched request.
func (r *Router) match(name string) (Handler, []string) {
	req := &http.Request{Method: http.MethodGet, URL: &url.URL{Path: name}, RequestURI: name, Host: "wsplex"}
	var mw matchWriter
	r.m.ServeHTTP(&mw, req)
	if mw.h == nil {
		return nil, nil
	}
	var values []string
	for _, seg := range strings.Split(mw.req.Pattern, "/") {
		key, ok := strings.CutPrefix(seg, "{")
		if !ok || key == "$}" {
			continue
		}
		key = strings.TrimSuffix(strings.TrimSuffix(key, "}"), "...")
		values = append(values, key, mw.req.PathValue(key))
	}
	return mw.h, values
}

// matchWriter receives the matched handler from the ServeMux; whatever a
// not-found or redirect handler writes to it is dropped.
type matchWriter struct {
	h      Handler
	req    *http.Request
	header http.Header
}

func (w *matchWriter) Header() http.Header {
	if w.header == nil {
		w.header = http.Header{}
	}
	return w.header
}
func (w *matchWriter) Write(p []byte) (int, error) { return len(p), nil }
func (w *matchWriter) WriteHeader(int)             {}
