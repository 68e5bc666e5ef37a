package stream

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"

	"github.com/wsplex/wsplex"
	"github.com/wsplex/wsplex/internal/wire"
	"github.com/wsplex/wsplex/mux"
	wsplexv1 "github.com/wsplex/wsplex/proto/wsplex/v1"
)

// Stream is one named stream: protobuf messages with Send and Receive, or
// raw bytes with Read and Write (it is a net.Conn), not both in one
// direction. Get one from Open, or as a handler's argument from a Router.
//
// Send and Write may be called concurrently with Receive and Read; each
// message is written whole. One goroutine at a time should receive.
// Every Stream must be closed; a Router closes the streams it serves.
type Stream struct {
	ms     *mux.Stream
	name   string
	md     wsplex.Metadata
	opts   Options
	opener bool

	// held: the user called Hold. headHeld: the open request waits for
	// the stream's first message (see Open).
	held, headHeld atomic.Bool

	readMu sync.Mutex // held by Receive, Read and Response

	// Opening side: the peer's answer, read before the first read.
	respRead bool
	respMD   wsplex.Metadata
	openErr  error

	// Accepting side: the router's path values, and whether the open was
	// answered: by the Router, or by the stream itself (deferred) with
	// respMD.
	pathValues []string // key, value, ...
	respondMu  sync.Mutex
	responded  bool
	deferred   bool
	detached   bool // the handler keeps the stream after it returns (Detach)

	dlMu sync.Mutex
	rdl  time.Time // the read deadline the user set, which Response restores
}

var _ net.Conn = (*Stream)(nil)

// Name returns the stream's name, such as "/chat/room/42".
func (s *Stream) Name() string { return s.name }

// Metadata returns the metadata of the open request.
func (s *Stream) Metadata() wsplex.Metadata { return s.md }

// PathValue returns the value of the wildcard key in the pattern the
// Router matched, as http.Request.PathValue does: for pattern
// "/chat/room/{id}" and name "/chat/room/42", PathValue("id") is "42". It
// returns "" on the opening side.
func (s *Stream) PathValue(key string) string {
	for i := 0; i+1 < len(s.pathValues); i += 2 {
		if s.pathValues[i] == key {
			return s.pathValues[i+1]
		}
	}
	return ""
}

// Context returns a context cancelled when the stream is closed or
// cancelled, reset with an error by either side, or its session ends. The
// peer's Close does not cancel it: the peer only stops reading.
func (s *Stream) Context() context.Context { return s.ms.Context() }

// Session returns the session carrying the stream.
func (s *Stream) Session() *mux.Session { return s.ms.Session() }

// LocalAddr returns the local address of the session's TCP connection.
func (s *Stream) LocalAddr() net.Addr { return s.ms.LocalAddr() }

// RemoteAddr returns the remote address of the session's TCP connection.
func (s *Stream) RemoteAddr() net.Addr { return s.ms.RemoteAddr() }

// SetDeadline sets the read and write deadlines, as net.Conn does.
func (s *Stream) SetDeadline(t time.Time) error {
	s.SetReadDeadline(t)
	return s.SetWriteDeadline(t)
}

// SetReadDeadline sets the deadline for Receive and Read. A Receive that
// times out consumes nothing: the next one returns the whole message.
func (s *Stream) SetReadDeadline(t time.Time) error {
	s.dlMu.Lock()
	s.rdl = t
	s.dlMu.Unlock()
	return s.ms.SetReadDeadline(t)
}

// SetWriteDeadline sets the deadline for Send and Write.
func (s *Stream) SetWriteDeadline(t time.Time) error { return s.ms.SetWriteDeadline(t) }

// Response waits for the peer's answer to an Open and returns its
// metadata. A refusal is a *wsplex.Error carrying the peer's code and
// message (wsplex.CodeNotFound for an unknown name). ctx bounds the wait;
// the read deadline set with SetReadDeadline still applies. Reads call it
// implicitly, so calling it is needed only to learn the answer before
// reading. On the accepting side it returns nil, nil.
func (s *Stream) Response(ctx context.Context) (wsplex.Metadata, error) {
	if !s.opener {
		return nil, nil
	}
	s.readMu.Lock()
	defer s.readMu.Unlock()
	if !s.respRead && ctx.Done() != nil {
		fired := make(chan struct{})
		stop := context.AfterFunc(ctx, func() {
			s.ms.SetReadDeadline(time.Unix(1, 0))
			close(fired)
		})
		defer func() {
			if !stop() {
				<-fired // it may still be running: let it finish first
				s.dlMu.Lock()
				s.ms.SetReadDeadline(s.rdl)
				s.dlMu.Unlock()
			}
		}()
	}
	err := s.awaitResponse()
	if err != nil && ctx.Err() != nil && isTimeout(err) {
		return nil, ctx.Err()
	}
	return s.respMD, err
}

// awaitResponse reads the open response once. readMu is held.
func (s *Stream) awaitResponse() error {
	if s.respRead {
		return s.openErr
	}
	var resp wsplexv1.OpenResponse
	if err := readMessage(s.ms, &resp, s.opts.MaxHeaderSize); err != nil {
		if isTimeout(err) {
			return err // not final: the answer may still come
		}
		s.respRead = true
		s.openErr = s.badResponse(err)
		return s.openErr
	}
	s.respRead = true
	s.respMD = wire.Metadata(resp.Metadata)
	if e := wire.Error(resp.GetStatus(), true); e != nil && e.Code != wsplex.CodeOK {
		e.Metadata = s.respMD
		s.openErr = e
	}
	return s.openErr
}

func (s *Stream) badResponse(err error) error {
	var tooBig *errTooBig
	switch {
	case err == io.EOF:
		return &wsplex.Error{Code: wsplex.CodeUnavailable, Message: "peer ended the stream without answering", Remote: true}
	case errors.As(err, &tooBig):
		return s.fail(wsplex.Errorf(wsplex.CodeResourceExhausted, "open response of %d bytes exceeds the %d-byte limit", tooBig.size, tooBig.limit))
	case isMalformed(err), err == io.ErrUnexpectedEOF:
		return s.fail(wsplex.Errorf(wsplex.CodeInvalidArgument, "malformed open response: %v", err))
	}
	return err // the stream was reset, the session ended, and the like
}

// fail resets the stream with e and returns e.
func (s *Stream) fail(e *wsplex.Error) error {
	s.ms.Reset(e)
	return e
}

// ResponseMetadata returns the metadata the accepting side answers the open
// with, for a handler to change before the answer leaves (see Answerer).
// On the opening side it returns the peer's answer's metadata, once
// Response or a read has received it.
func (s *Stream) ResponseMetadata() wsplex.Metadata { return s.respMD }

// Respond answers the open, on the accepting side, with CodeOK and
// ResponseMetadata, unless it was answered already; handlers that do not
// implement Answerer never need to call it. On the opening side it does
// nothing.
func (s *Stream) Respond() error {
	if s.opener {
		return nil
	}
	return s.respond(nil, s.respMD)
}

// respond writes the accepting side's answer, once.
func (s *Stream) respond(e *wsplex.Error, md wsplex.Metadata) error {
	s.respondMu.Lock()
	defer s.respondMu.Unlock()
	if s.responded {
		return nil
	}
	s.responded = true
	return writeDelimited(s.ms, &wsplexv1.OpenResponse{Status: wire.StatusProto(e), Metadata: wire.MetadataProto(md)})
}

func (s *Stream) beforeRead() error {
	if s.opener {
		return s.awaitResponse()
	}
	return nil // a Router answers before the handler runs
}

// Receive reads the next message into m. It returns io.EOF when the peer
// ended its side cleanly, a *wsplex.Error when the stream was refused or
// reset, and a *wsplex.Error with CodeResourceExhausted (after resetting
// the stream) when the peer sent a message over Options.MaxMessageSize. A
// Receive that fails with a timeout consumed nothing.
func (s *Stream) Receive(m proto.Message) error {
	s.readMu.Lock()
	defer s.readMu.Unlock()
	if err := s.beforeRead(); err != nil {
		return err
	}
	return s.readError(readMessage(s.ms, m, s.opts.MaxMessageSize))
}

// readError turns what reading a message failed with into the error a
// caller sees, resetting the stream for a message that is too big or
// malformed.
func (s *Stream) readError(err error) error {
	var tooBig *errTooBig
	switch {
	case err == nil, err == io.EOF:
		return err
	case errors.As(err, &tooBig):
		return s.fail(wsplex.Errorf(wsplex.CodeResourceExhausted, "received message of %d bytes exceeds the %d-byte limit", tooBig.size, tooBig.limit))
	case isMalformed(err), err == io.ErrUnexpectedEOF:
		return s.fail(wsplex.Errorf(wsplex.CodeInvalidArgument, "malformed message: %v", err))
	}
	return err
}

// Send writes m as one length-delimited message. A message over
// Options.MaxMessageSize is refused with a *wsplex.Error
// (CodeResourceExhausted) and the stream stays usable.
func (s *Stream) Send(m proto.Message) error {
	if size := proto.Size(m); size > s.opts.MaxMessageSize {
		return wsplex.Errorf(wsplex.CodeResourceExhausted, "message of %d bytes exceeds the %d-byte limit", size, s.opts.MaxMessageSize)
	}
	if err := s.answer(); err != nil {
		return err
	}
	err := writeDelimited(s.ms, m)
	s.afterWrite()
	return err
}

// SendBytes writes b, one message already encoded (by a codec other than
// protobuf's binary one, say), length-delimited, as Send would write it.
func (s *Stream) SendBytes(b []byte) error {
	if len(b) > s.opts.MaxMessageSize {
		return wsplex.Errorf(wsplex.CodeResourceExhausted, "message of %d bytes exceeds the %d-byte limit", len(b), s.opts.MaxMessageSize)
	}
	if err := s.answer(); err != nil {
		return err
	}
	bp := bufPool.Get().(*[]byte)
	buf := append(protowire.AppendVarint((*bp)[:0], uint64(len(b))), b...)
	_, err := s.ms.Write(buf)
	if cap(buf) <= 1<<20 {
		*bp = buf[:0]
		bufPool.Put(bp)
	}
	s.afterWrite()
	return err
}

// ReceiveBytes reads the next message and calls f with its encoded bytes,
// which are valid only during the call; f's error is returned. It reports
// the end of the stream and refusals as Receive does.
func (s *Stream) ReceiveBytes(f func(msg []byte) error) error {
	s.readMu.Lock()
	defer s.readMu.Unlock()
	if err := s.beforeRead(); err != nil {
		return err
	}
	var ferr error
	err := readMessageWith(s.ms, s.opts.MaxMessageSize, func(b []byte) error {
		ferr = f(b)
		return nil
	})
	if err = s.readError(err); err != nil {
		return err
	}
	return ferr
}

// answer sends the deferred answer before this side's first data.
func (s *Stream) answer() error {
	if !s.deferred {
		return nil
	}
	return s.Respond()
}

// Read reads raw bytes, after the open handshake.
func (s *Stream) Read(p []byte) (int, error) {
	s.readMu.Lock()
	defer s.readMu.Unlock()
	if err := s.beforeRead(); err != nil {
		return 0, err
	}
	return s.ms.Read(p)
}

// Write writes raw bytes.
func (s *Stream) Write(p []byte) (int, error) {
	if err := s.answer(); err != nil {
		return 0, err
	}
	n, err := s.ms.Write(p)
	s.afterWrite()
	return n, err
}

// afterWrite sends the open request held by Open with the first message
// written after it, unless the user holds the stream.
func (s *Stream) afterWrite() {
	if s.headHeld.Load() && !s.held.Load() && s.headHeld.CompareAndSwap(true, false) {
		s.ms.Flush()
	}
}

// Hold keeps what the stream writes (its open request or answer, its
// messages, its end) from leaving until Flush, CloseWrite, Close,
// CloseWithError, or a read that has to wait, so that it leaves in as few
// WebSocket messages as fit, usually one. A call with one request holds
// its open, its request and its half-close; a handler with one response
// holds its answer, the response and its status. Held data leaves within
// a millisecond even if nothing ends the hold, so a forgotten Flush costs
// latency, never a deadlock.
func (s *Stream) Hold() {
	s.held.Store(true)
	s.ms.Hold()
}

// Flush sends what the stream holds and ends the hold (see Hold).
func (s *Stream) Flush() {
	s.held.Store(false)
	s.headHeld.Store(false)
	s.ms.Flush()
}

// CloseWrite ends the sending side: the peer's Receive or Read returns
// io.EOF after the data sent before. Receiving goes on.
func (s *Stream) CloseWrite() error {
	if err := s.answer(); err != nil {
		return err
	}
	return s.ms.CloseWrite()
}

// Trailers returns the trailers the peer ended the stream with, once
// reading returned io.EOF or the peer's error; nil before, or if it sent
// none.
func (s *Stream) Trailers() wsplex.Metadata {
	if st := s.ms.PeerStatus(); st != nil {
		return st.Trailers
	}
	return nil
}

// Close ends the stream in both directions and releases it. A peer still
// sending is told to stop (its Send fails with wsplex.ErrPeerClosed); a
// peer still receiving reads io.EOF. Close is idempotent.
func (s *Stream) Close() error { return s.ms.Close() }

// CloseWithError ends the stream with the status of err, which the peer
// sees on its next read or write, and closes it: an *wsplex.Error in
// err's chain with its code, message, details and trailers; context errors
// as CodeCanceled and CodeDeadlineExceeded; anything else as CodeUnknown
// with err's text. On a stream whose open was not answered yet, the status
// is also the answer, with the error's Metadata. A nil err is Close; a
// *wsplex.Error with CodeOK ends the stream cleanly with its trailers (the
// peer reads io.EOF, then Trailers).
func (s *Stream) CloseWithError(err error) error {
	e := statusOf(err)
	if e == nil {
		return s.Close()
	}
	if !s.opener {
		if e.Code == wsplex.CodeOK {
			s.Respond()
		} else {
			md := e.Metadata
			if md == nil {
				md = s.respMD
			}
			s.respond(e, md)
		}
	}
	s.ms.Reset(e)
	return s.ms.Close()
}

// Detach, called by a Router's handler before it returns nil, keeps the
// stream open after the handler returns, for a handler that hands the
// stream on rather than serving it to the end on its goroutine: a stream
// that mostly waits, such as a topic subscription, then costs no goroutine
// while it waits. The Router then neither answers the open nor closes the
// stream: whoever holds it must, and at the latest when its Context ends
// (the peer reset it, or the session ended); until closed, it counts
// against the session's streams (mux.Options.MaxStreams). A handler that
// returns an error ends the stream as usual. On a stream not served by a
// Router, Detach does nothing.
func (s *Stream) Detach() { s.detached = true }

// Cancel ends the stream with CodeCanceled: the peer's pending and later
// calls fail and its handler's context is cancelled.
func (s *Stream) Cancel() error {
	return s.CloseWithError(wsplex.NewError(wsplex.CodeCanceled, "canceled"))
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

// writeDelimited writes m, length-delimited, in one Write, so that it
// leaves as one frame when the window allows. It marshals into a pooled
// buffer: protodelim.MarshalTo would allocate the encoding of every
// message and write it in two pieces.
func writeDelimited(w io.Writer, m proto.Message) error {
	bp := bufPool.Get().(*[]byte)
	b := protowire.AppendVarint((*bp)[:0], uint64(proto.Size(m)))
	b, err := proto.MarshalOptions{UseCachedSize: true}.MarshalAppend(b, m)
	if err == nil {
		_, err = w.Write(b)
	} else {
		err = fmt.Errorf("wsplex/stream: marshal: %w", err)
	}
	if cap(b) <= 1<<20 {
		*bp = b[:0]
		bufPool.Put(bp)
	}
	return err
}

var bufPool = sync.Pool{New: func() any { return new([]byte) }}
