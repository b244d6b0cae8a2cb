package arm

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"time"
)

// Provider is a resource provider that lives in a package of its own and
// is hosted by the Server: its routes go through the same listener, TLS,
// authentication, request log, faults, api-version checks and error
// envelope as the providers of this package, and its state is persisted
// in the same encrypted snapshot.
type Provider interface {
	// Name identifies the provider in logs and in the state snapshot
	// ("Microsoft.Authorization"); it must not change between releases.
	Name() string
	// Routes are the URL patterns the provider serves.
	Routes() []Route
	// Snapshot returns the provider's state for persistence. It is called
	// with the Server's store lock held: it must not call back into the
	// Server.
	Snapshot() (json.RawMessage, error)
	// Restore loads a snapshot made by Snapshot, once, before any request.
	Restore(json.RawMessage) error
}

// Route is one URL pattern of a hosted provider, in the ARM grammar of
// this package: literal segments match case-insensitively, "{name}"
// segments capture the caller's spelling.
type Route struct {
	Name    string
	Pattern string
	// APIVersions are the accepted api-versions (lower-case); nil accepts
	// any, but one is still required.
	APIVersions []string
	Methods     map[string]Handler
}

// Handler serves one request of a hosted provider. It writes the response
// with the Request's methods, or returns an *Error, which the Server
// writes in ARM's envelope.
type Handler func(*Request) *Error

// Request is one call to a hosted provider's route.
type Request struct {
	c *call
}

// Context is the request's context: it ends when the caller goes away.
func (r *Request) Context() context.Context { return r.c.r.Context() }

// Method is the HTTP method.
func (r *Request) Method() string { return r.c.r.Method }

// Var is a captured path segment ("{name}" in the pattern).
func (r *Request) Var(name string) string { return r.c.vars[name] }

// APIVersion is the request's api-version, as sent.
func (r *Request) APIVersion() string { return r.c.apiVersion }

// Query is a query parameter, by case-insensitive name ($filter, $top).
func (r *Request) Query(name string) (string, bool) { return queryValue(r.c.r.URL.Query(), name) }

// Now is the time on the simulator's clock when the request arrived.
func (r *Request) Now() time.Time { return r.c.now }

// Caller is the authenticated principal's object id.
func (r *Request) Caller() string {
	if r.c.who == nil {
		return ""
	}
	return r.c.who.ObjectID
}

// Body reads the request body (at most the Server's body limit) and
// records it, as given by redact, for the request log: redact sees the
// raw body and returns what may be logged (nil: nothing).
func (r *Request) Body(redact func(json.RawMessage) json.RawMessage) (json.RawMessage, *Error) {
	raw, e := readBody(r.c)
	if e != nil {
		return nil, e
	}
	if redact != nil {
		r.c.logBody = redact(raw)
	} else {
		r.c.logBody = raw
	}
	return raw, nil
}

// Header is the response header, to set before writing.
func (r *Request) Header() http.Header { return r.c.w.Header() }

// JSON writes a response body.
func (r *Request) JSON(status int, v any) { writeJSON(r.c.w, status, v) }

// Empty writes a response without a body.
func (r *Request) Empty(status int) { r.c.w.WriteHeader(status) }

// Page writes one page of a list with an absolute nextLink, as this
// package's lists do; keep names the query parameters the next page must
// repeat ($filter, $expand). size <= 0 is the Server's page size.
func (r *Request) Page(items []any, size int, keep ...string) *Error {
	if size <= 0 {
		size = r.c.s.opts.PageSize
	}
	kept := url.Values{}
	for _, k := range keep {
		if v, ok := r.Query(k); ok {
			kept.Set(k, v)
		}
	}
	return r.c.s.writePageOf(r.c, items, size, kept)
}

// URL is the absolute URL of a path on this server, for Location headers
// and links.
func (r *Request) URL(path string) string { return r.c.s.URL() + "/" + strings.TrimLeft(path, "/") }

// Host adds a provider's routes to the Server and restores its state from
// the snapshot loaded at New. Call it before Start. A pattern that an
// existing route already serves is an error.
func (s *Server) Host(p Provider) error {
	s.store.mu.Lock()
	defer s.store.mu.Unlock()
	name := p.Name()
	if _, dup := s.providers[name]; dup {
		return fmt.Errorf("arm: provider %s is hosted twice", name)
	}
	for _, rt := range p.Routes() {
		methods := map[string]handler{}
		for m, h := range rt.Methods {
			methods[m] = func(c *call) *Error { return h(&Request{c: c}) }
		}
		r := newRoute(rt.Name, rt.Pattern, rt.APIVersions, methods)
		if r.versions == nil {
			r.anyVersion = true
		}
		for _, old := range s.router.routes {
			if samePattern(old.segments, r.segments) {
				return fmt.Errorf("arm: provider %s: route %s (%s) is already served by %s", name, rt.Name, rt.Pattern, old.name)
			}
		}
		s.router.add(r)
	}
	if raw, ok := s.providerState[name]; ok {
		if err := p.Restore(raw); err != nil {
			return fmt.Errorf("arm: restore %s: %w", name, err)
		}
	}
	s.providers[name] = p
	return nil
}

// samePattern reports whether two patterns match the same paths.
func samePattern(a, b []string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		va, vb := strings.HasPrefix(a[i], "{"), strings.HasPrefix(b[i], "{")
		if va != vb || (!va && !strings.EqualFold(a[i], b[i])) {
			return false
		}
	}
	return true
}

// Persist writes the state of the Server and of every hosted provider, as
// an acknowledged change of this package does. A provider calls it after
// a change and before it answers, without holding its own lock (Snapshot
// takes it). Without a state dir it does nothing.
func (s *Server) Persist() *Error { return s.persistNow() }

// Dispatch runs a request through this Server's routes in process, as the
// principal with the given object id, without a token: what Azure does
// when it acts for a managed identity (a policy's deployment). The
// request is logged and validated like any other.
func (s *Server) Dispatch(ctx context.Context, method, path string, body []byte, objectID string) (int, json.RawMessage) {
	req := httptest.NewRequestWithContext(ctx, method, s.URL()+path, bytes.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	rec := httptest.NewRecorder()
	s.serveAs(rec, req, &principal{ClientID: objectID, ObjectID: objectID})
	out, _ := io.ReadAll(rec.Result().Body)
	return rec.Code, out
}

// ResourceChange is an acknowledged write (PUT, PATCH or DELETE answered
// 2xx) to any ARM route of the Server, hosted providers' included: what
// Azure Policy reacts to when a resource is created or updated. The
// agents' data plane (heartbeats, compliance reports) makes none.
type ResourceChange struct {
	// ID is the request path: the resource id as the caller spelled it.
	ID     string
	Method string
	// Status is the answer's status code: 201 for a PUT that created.
	Status int
	// Time is on the simulator's clock.
	Time time.Time
}

// Watch calls f after every acknowledged write, in the request's
// goroutine and outside the Server's locks; f must return quickly (work
// belongs on the clock).
func (s *Server) Watch(f func(ResourceChange)) {
	s.watchMu.Lock()
	defer s.watchMu.Unlock()
	s.watchers = append(s.watchers, f)
}

func (s *Server) notify(ch ResourceChange) {
	s.watchMu.Lock()
	ws := append([]func(ResourceChange){}, s.watchers...)
	s.watchMu.Unlock()
	for _, f := range ws {
		f(ch)
	}
}
