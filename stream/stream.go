package stream

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"strings"
	"sync"
	"time"

	"google.golang.org/protobuf/encoding/protodelim"
	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"

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
	md     Metadata
	opts   Options
	opener bool

	in reader // guarded by readMu

	readMu sync.Mutex // held by Receive, Read and Response

	// Opening side: the peer's answer, read before the first read.
	respRead bool
	respMD   Metadata
	openErr  error

	// Accepting side: the router's path values, and whether the open was
	// answered.
	pathValues []string // key, value, ...
	respondMu  sync.Mutex
	responded  bool
}

var _ net.Conn = (*Stream)(nil)

// Name returns the stream's name, such as "/chat/room/42".
func (s *Stream) Name() string { return s.name }

// Metadata returns the metadata of the open request.
func (s *Stream) Metadata() Metadata { return s.md }

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

// Context returns a context cancelled when the stream is closed or reset
// by either side, or its session ends.
func (s *Stream) Context() context.Context { return s.ms.Context() }

// Session returns the session carrying the stream.
func (s *Stream) Session() *mux.Session { return s.ms.Session() }

// LocalAddr returns the local address of the session's TCP connection.
func (s *Stream) LocalAddr() net.Addr { return s.ms.LocalAddr() }

// RemoteAddr returns the remote address of the session's TCP connection.
func (s *Stream) RemoteAddr() net.Addr { return s.ms.RemoteAddr() }

// SetDeadline sets the read and write deadlines, as net.Conn does.
func (s *Stream) SetDeadline(t time.Time) error { return s.ms.SetDeadline(t) }

// SetReadDeadline sets the deadline for Receive and Read.
func (s *Stream) SetReadDeadline(t time.Time) error { return s.ms.SetReadDeadline(t) }

// SetWriteDeadline sets the deadline for Send and Write.
func (s *Stream) SetWriteDeadline(t time.Time) error { return s.ms.SetWriteDeadline(t) }

// Response waits for the peer's answer to an Open and returns its
// metadata. A refusal is an *Error carrying the peer's code and message
// (errors.Is(err, ErrNotFound) for an unknown name). ctx bounds the wait.
// Reads call it implicitly, so calling it is needed only to learn the
// answer before reading. If ctx ends while it waits, the read deadline is
// cleared afterwards. On the accepting side it returns nil, nil.
func (s *Stream) Response(ctx context.Context) (Metadata, error) {
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
				s.ms.SetReadDeadline(time.Time{})
			}
		}()
	}
	err := s.awaitResponse()
	if err != nil && ctx.Err() != nil && errors.Is(err, errTimeout) {
		return nil, ctx.Err()
	}
	return s.respMD, err
}

var errTimeout = errors.New("timeout marker") // matched through isTimeout

// awaitResponse reads the open response once. readMu is held.
func (s *Stream) awaitResponse() error {
	if s.respRead {
		return s.openErr
	}
	var resp wsplexv1.OpenResponse
	br, err := s.in.buffered()
	if err == nil {
		err = protodelim.UnmarshalOptions{MaxSize: int64(s.opts.MaxHeaderSize)}.UnmarshalFrom(br, &resp)
		s.in.release()
	}
	if err != nil {
		if isTimeout(err) {
			return timeoutErr{err} // not final: the answer may still come
		}
		s.respRead = true
		s.openErr = s.badResponse(err)
		return s.openErr
	}
	s.respRead = true
	s.shrink()
	s.respMD = metadataFromProto(resp.Metadata)
	if st := resp.GetStatus(); st.GetCode() != CodeOK {
		s.openErr = &Error{Code: st.GetCode(), Message: st.GetMessage(), Metadata: s.respMD, Remote: true}
	}
	return s.openErr
}

// shrink drops the mux stream's receive buffer after the open handshake,
// if nothing else is in it: many streams go quiet after it (a
// subscription waits for pushes), and the buffer would keep the handshake's
// size, about a kilobyte, for the stream's life.
func (s *Stream) shrink() {
	if !s.in.holding() {
		s.ms.Shrink()
	}
}

func (s *Stream) badResponse(err error) error {
	var re *mux.ResetError
	var tooBig *protodelim.SizeTooLargeError
	switch {
	case errors.As(err, &re):
		return fromMux(err)
	case err == io.EOF:
		return &Error{Code: CodeUnavailable, Message: "peer ended the stream without answering", Remote: true}
	case errors.As(err, &tooBig):
		e := NewError(CodeResourceExhausted, "open response of %d bytes exceeds the %d-byte limit", tooBig.Size, tooBig.MaxSize)
		s.ms.Reset(e.Code, e.Message)
		return e
	case errors.Is(err, proto.Error), err == io.ErrUnexpectedEOF:
		e := NewError(CodeInvalidArgument, "malformed open response: %v", err)
		s.ms.Reset(e.Code, e.Message)
		return e
	}
	return err // session ended, and the like
}

// respond writes the accepting side's answer, once.
func (s *Stream) respond(st *wsplexv1.Status, md Metadata) error {
	s.respondMu.Lock()
	defer s.respondMu.Unlock()
	if s.responded {
		return nil
	}
	s.responded = true
	st = &wsplexv1.Status{Code: st.Code, Message: strings.ToValidUTF8(st.Message, "\uFFFD")}
	return writeDelimited(s.ms, &wsplexv1.OpenResponse{Status: st, Metadata: md.toProto()})
}

func (s *Stream) beforeRead() error {
	if s.opener {
		return s.awaitResponse()
	}
	return nil // a Router answers before the handler runs
}

// Receive reads the next message into m. It returns io.EOF when the peer
// ended its side cleanly, an *Error when the stream was refused or reset,
// and an *Error with CodeResourceExhausted (after resetting the stream) when
// the peer sent a message over Options.MaxMessageSize.
func (s *Stream) Receive(m proto.Message) error {
	s.readMu.Lock()
	defer s.readMu.Unlock()
	if err := s.beforeRead(); err != nil {
		return s.ioError(err)
	}
	br, err := s.in.buffered()
	if err == nil {
		err = readMessage(br, m, s.opts.MaxMessageSize)
		s.in.release()
		if err == nil {
			return nil
		}
	}
	var tooBig *protodelim.SizeTooLargeError
	switch {
	case err == io.EOF:
		return io.EOF
	case errors.As(err, &tooBig):
		e := NewError(CodeResourceExhausted, "received message of %d bytes exceeds the %d-byte limit", tooBig.Size, tooBig.MaxSize)
		s.ms.Reset(e.Code, e.Message)
		return e
	case errors.Is(err, proto.Error) || err == io.ErrUnexpectedEOF:
		e := NewError(CodeInvalidArgument, "malformed message: %v", err)
		s.ms.Reset(e.Code, e.Message)
		return e
	}
	return s.ioError(err)
}

// Send writes m as one length-delimited message. A message over
// Options.MaxMessageSize is refused with an *Error (CodeResourceExhausted)
// and the stream stays usable.
func (s *Stream) Send(m proto.Message) error {
	if size := proto.Size(m); size > s.opts.MaxMessageSize {
		return NewError(CodeResourceExhausted, "message of %d bytes exceeds the %d-byte limit", size, s.opts.MaxMessageSize)
	}
	return s.ioError(writeDelimited(s.ms, m))
}

// Read reads raw bytes, after the open handshake.
func (s *Stream) Read(p []byte) (int, error) {
	s.readMu.Lock()
	defer s.readMu.Unlock()
	if err := s.beforeRead(); err != nil {
		return 0, s.ioError(err)
	}
	n, err := s.in.Read(p)
	return n, s.ioError(err)
}

// Write writes raw bytes.
func (s *Stream) Write(p []byte) (int, error) {
	n, err := s.ms.Write(p)
	return n, s.ioError(err)
}

// CloseWrite ends the sending side: the peer's Receive or Read returns
// io.EOF after the data sent before. Receiving goes on.
func (s *Stream) CloseWrite() error {
	return s.ioError(s.ms.CloseWrite())
}

// Close ends the stream in both directions and releases it. A peer still
// sending is told to stop (its Send fails with ErrPeerClosed); a peer still
// receiving reads io.EOF. Close is idempotent.
func (s *Stream) Close() error {
	return s.ms.Close()
}

// CloseWithError ends the stream with the status of err (see CodeOf), which
// the peer sees as an *Error on its next read or write, and closes it. On a
// stream whose open was not answered yet, the status is also the answer.
// A nil err is Close.
func (s *Stream) CloseWithError(err error) error {
	code, msg := statusOf(err)
	if code == CodeOK {
		return s.Close()
	}
	if !s.opener {
		s.respond(&wsplexv1.Status{Code: code, Message: msg}, nil)
	}
	s.ms.Reset(code, msg)
	return s.ms.Close()
}

// Cancel ends the stream with CodeCanceled: the peer's pending and later
// calls fail and its handler's context is cancelled.
func (s *Stream) Cancel() error {
	return s.CloseWithError(&Error{Code: CodeCanceled, Message: "canceled"})
}

// ioError translates errors of the layers below into this package's.
func (s *Stream) ioError(err error) error {
	if err == nil || err == io.EOF {
		return err
	}
	if t, ok := err.(timeoutErr); ok {
		return t.err
	}
	return fromMux(err)
}

// timeoutErr marks a read timeout that left the answer unread.
type timeoutErr struct{ err error }

func (t timeoutErr) Error() string        { return t.err.Error() }
func (t timeoutErr) Is(target error) bool { return target == errTimeout }
func (t timeoutErr) Unwrap() error        { return t.err }

func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

// writeDelimited writes m, length-delimited as protodelim reads it, in one
// Write, so that it leaves as one yamux frame (when the window allows).
// It marshals into a pooled buffer: protodelim.MarshalTo would allocate
// the encoding of every message and write it in two pieces.
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
