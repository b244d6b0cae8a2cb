package arm

import (
	"net/http"
	"strings"
	"sync"
	"time"
)

// Fault makes matching requests fail, slow down, or both. Scenarios use it
// for "ARM is down for this route" and "ARM is slow" stories.
type Fault struct {
	// Route is a route name (see RouteNames); empty matches every request.
	Route string
	// Method matches the HTTP method; empty matches any.
	Method string
	// Status, when not zero, is answered instead of serving the request,
	// with Code (default: by status) and Message in the ARM envelope.
	Status  int
	Code    string
	Message string
	// Latency is added before the request is served (wall time: it is the
	// network that is slow, not the simulation).
	Latency time.Duration
	// Times limits how many requests the fault hits; 0 means until removed.
	Times int
}

type faultEntry struct {
	Fault
	hits int
}

type faults struct {
	mu   sync.Mutex
	list []*faultEntry
}

// InjectFault adds a fault and returns the function that removes it.
func (s *Server) InjectFault(f Fault) (remove func()) {
	e := &faultEntry{Fault: f}
	s.faults.mu.Lock()
	s.faults.list = append(s.faults.list, e)
	s.faults.mu.Unlock()
	return func() {
		s.faults.mu.Lock()
		defer s.faults.mu.Unlock()
		for i, x := range s.faults.list {
			if x == e {
				s.faults.list = append(s.faults.list[:i], s.faults.list[i+1:]...)
				return
			}
		}
	}
}

// ClearFaults removes every injected fault.
func (s *Server) ClearFaults() {
	s.faults.mu.Lock()
	s.faults.list = nil
	s.faults.mu.Unlock()
}

// RouteNames lists the names Fault.Route accepts.
func (s *Server) RouteNames() []string {
	var out []string
	for _, r := range s.router.routes {
		out = append(out, r.name)
	}
	return out
}

func (f *faults) check(c *call, route string) *Error {
	f.mu.Lock()
	var hit *faultEntry
	for _, e := range f.list {
		if (e.Route == "" || strings.EqualFold(e.Route, route)) && (e.Method == "" || strings.EqualFold(e.Method, c.r.Method)) &&
			(e.Times == 0 || e.hits < e.Times) {
			e.hits++
			hit = e
			break
		}
	}
	f.mu.Unlock()
	if hit == nil {
		return nil
	}
	if hit.Latency > 0 {
		if err := c.s.wall.Sleep(c.r.Context(), hit.Latency); err != nil {
			return errorf(http.StatusRequestTimeout, "RequestTimeout", "The request was cancelled while delayed by an injected fault.")
		}
	}
	if hit.Status == 0 {
		return nil
	}
	code, msg := hit.Code, hit.Message
	if code == "" {
		code = CodeInjectedFault
		switch hit.Status {
		case http.StatusServiceUnavailable:
			code = CodeServiceUnavailable
		case http.StatusInternalServerError:
			code = CodeInternalServerError
		case http.StatusTooManyRequests:
			code = "TooManyRequests"
		}
	}
	if msg == "" {
		msg = "The request failed because of a fault injected into the simulator (route '" + route + "')."
	}
	return &Error{Status: hit.Status, Code: code, Message: msg}
}
