package gitserver

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"maps"
	"net"
	"strings"
	"syscall"
	"time"
)

// internalError is a failure of gitopsim itself while serving a request.
type internalError struct{ err error }

func (e *internalError) Error() string { return e.err.Error() }
func (e *internalError) Unwrap() error { return e.err }

// unpackError is a pushed pack that could not be stored. Git clients send
// valid packs, so it is most likely ours to fix.
type unpackError struct{ err error }

func (e *unpackError) Error() string { return "unpack: " + e.err.Error() }
func (e *unpackError) Unwrap() error { return e.err }

// clientWriteError is a write to the client that failed: it went away.
type clientWriteError struct{ err error }

func (e *clientWriteError) Error() string { return "client went away: " + e.err.Error() }
func (e *clientWriteError) Unwrap() error { return e.err }

// clientWriter marks write errors as the client's going away.
type clientWriter struct{ w io.Writer }

func (c clientWriter) Write(p []byte) (int, error) {
	n, err := c.w.Write(p)
	if err != nil {
		err = &clientWriteError{err}
	}
	return n, err
}

// Failure kinds.
const (
	// FailProtocol: the client sent what the protocol does not allow, or
	// asked for what this server does not do; it got an ERR line.
	FailProtocol = "protocol"
	// FailDisconnect: the client went away in the middle of the exchange.
	FailDisconnect = "disconnect"
	// FailUnpack: a pushed pack could not be stored.
	FailUnpack = "unpack"
	// FailInternal: gitopsim failed.
	FailInternal = "internal"
)

// classify names the kind of a failed request and the level to log it at.
func classify(err error) (string, slog.Level) {
	var pe *protocolError
	var ue *unpackError
	var ie *internalError
	var we *clientWriteError
	switch {
	case errors.As(err, &ie):
		return FailInternal, slog.LevelError
	case errors.As(err, &ue):
		return FailUnpack, slog.LevelError
	case errors.As(err, &pe), errors.Is(err, errPktFormat) && !errors.Is(err, io.ErrUnexpectedEOF):
		return FailProtocol, slog.LevelWarn
	case errors.As(err, &we), errors.Is(err, io.ErrUnexpectedEOF), errors.Is(err, io.EOF),
		errors.Is(err, context.Canceled), errors.Is(err, net.ErrClosed),
		errors.Is(err, syscall.EPIPE), errors.Is(err, syscall.ECONNRESET):
		return FailDisconnect, slog.LevelWarn
	}
	return FailInternal, slog.LevelError
}

// Failure is one git request that did not complete.
type Failure struct {
	// Time is on the simulator's clock.
	Time     time.Time
	Protocol string // "ssh" or "https"
	Service  string // UploadPack or ReceivePack
	Repo     string
	Who      string
	// Kind is FailProtocol, FailDisconnect, FailUnpack or FailInternal.
	Kind  string
	Error string
}

// Stats counts the requests the server has served since it started.
type Stats struct {
	// Requests by "<protocol> <service>", as "ssh git-upload-pack".
	Requests map[string]int64
	// Failures by "<protocol> <service> <kind>".
	Failures map[string]int64
	// Recent failures, oldest first (the last maxRecentFailures).
	Recent []Failure
	// PackCacheBytes and PackCacheEntries are the shared pack cache's use.
	PackCacheBytes, PackCacheEntries int
}

const maxRecentFailures = 100

// request names a git request for logs and counters.
type request struct {
	proto, service, repo, who string
}

// finish counts a served request and logs its failure: WARN for what the
// client did (a bad request, a hang-up), ERROR for what gitopsim did.
func (s *Server) finish(r request, err error) {
	key := r.proto + " " + r.service
	s.mu.Lock()
	s.requests[key]++
	if err == nil {
		s.mu.Unlock()
		return
	}
	kind, level := classify(err)
	s.failures[key+" "+kind]++
	s.recent = append(s.recent, Failure{Time: s.clock.Now(), Protocol: r.proto, Service: r.service, Repo: r.repo, Who: r.who, Kind: kind, Error: err.Error()})
	if len(s.recent) > maxRecentFailures {
		s.recent = s.recent[len(s.recent)-maxRecentFailures:]
	}
	s.mu.Unlock()
	s.log.Log(context.Background(), level, "git request failed",
		"protocol", r.proto, "service", r.service, "repo", r.repo, "who", r.who, "kind", kind, "err", err)
}

// Stats returns the request and failure counters.
func (s *Server) Stats() Stats {
	s.mu.Lock()
	st := Stats{Requests: maps.Clone(s.requests), Failures: maps.Clone(s.failures), Recent: append([]Failure(nil), s.recent...)}
	s.mu.Unlock()
	st.PackCacheBytes, st.PackCacheEntries = s.packs.usage()
	return st
}

// truncLine shortens text to fit in n bytes, at a rune boundary.
func truncLine(text string, n int) string {
	if len(text) <= n {
		return text
	}
	const more = "..."
	cut := n - len(more)
	for cut > 0 && !utf8Start(text[cut]) {
		cut--
	}
	return strings.ToValidUTF8(text[:cut], "") + more
}

func utf8Start(b byte) bool { return b&0xC0 != 0x80 }
