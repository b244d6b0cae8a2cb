package arm

import (
	"cmp"
	"context"
	"crypto/rand"
	"crypto/tls"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/gitopsim/gitopsim/sim/statedir"

	"github.com/gitopsim/gitopsim/sim/clock"
	"github.com/gitopsim/gitopsim/sim/internal/atomicfile"
	"github.com/gitopsim/gitopsim/sim/internal/graceful"
	"github.com/gitopsim/gitopsim/sim/internal/pki"
	"github.com/gitopsim/gitopsim/sim/internal/sealed"
)

// Defaults for Options. The ids are fixed so that transcripts of virtual
// runs are reproducible; they are valid GUIDs, as clients expect.
const (
	DefaultTenantID       = "7a0c1e5d-3b2f-4c6a-9e8d-0000000000a1"
	DefaultSubscriptionID = "5f8e2d1c-4b3a-4e6f-8a9b-0000000000b1"
	DefaultClientID       = "c3d2e1f0-a9b8-4c7d-8e6f-0000000000c1"
	DefaultLocation       = "eastus"
	defaultPageSize       = 100
	defaultTokenLifetime  = time.Hour
	maxBodyBytes          = 4 << 20
	// retryAfterMs is what LRO responses ask clients to wait: short, so an
	// SDK PollUntilDone takes milliseconds rather than its 30 s default.
	retryAfterMs = "20"
)

// Options configures a Server.
type Options struct {
	// Addr to listen on; default "127.0.0.1:0".
	Addr string
	// Workdir keeps the issuer's signing key, the generated client secret
	// and, when CA is nil, the CA. Required.
	Workdir string
	// CA issues the serving certificate; CAFile is its certificate on disk,
	// for clients. When nil, a CA is loaded from or created in Workdir.
	CA     *pki.CA
	CAFile string
	// Clock drives token expiry and every ARM-side timer; default Real.
	Clock clock.Clock
	// Logger for diagnostics; nil discards.
	Logger *slog.Logger
	// RequestLog receives one JSON line per request, secrets redacted;
	// nil means <Workdir>/arm/requests.jsonl.
	RequestLog io.Writer

	TenantID       string
	SubscriptionID string
	ClientID       string
	// ClientSecret of the client; empty means one generated and kept in
	// Workdir.
	ClientSecret   string
	ClientObjectID string
	// TokenLifetime of issued tokens on Clock; default 1h.
	TokenLifetime time.Duration
	// TokenClock, when set, is the clock tokens are issued and checked
	// on instead of Clock. Clients time their tokens on the wall clock,
	// so a simulator whose clock a presenter pauses and jumps issues them
	// on the wall clock, or a jump of two days would expire every
	// client's token at once.
	TokenClock clock.Clock
	// PageSize caps LIST pages; default 100. Small values make paging
	// testable.
	PageSize int
	// StateKey is the 32-byte key the state file is encrypted with, and
	// StateKeyFile where it is kept (for messages): gitopsim up passes its
	// state dir's (package statedir). Without StateKey the key is
	// StateDir/state.key, made when missing; a key an older gitopsim kept in
	// the work dir (arm/state.key) is moved there.
	StateKey     []byte
	StateKeyFile string
	// StateDir, when set, makes state survive a restart: every change is
	// saved there, encrypted, before it is acknowledged. Empty means in
	// memory only.
	StateDir string
	// Faults are injected from the start (see Fault); more can be added
	// and removed while serving with InjectFault.
	Faults []Fault
}

// Server is the ARM provider and token issuer on one HTTPS listener.
type Server struct {
	opts    Options
	log     *slog.Logger
	clock   clock.Clock
	wall    clock.Clock
	issuer  *issuer
	router  router
	store   *store
	faults  faults
	sealed  *sealed.Box // encrypts the state file; nil without a state dir
	keyFile string      // where its key is kept, for messages
	durable durability  // which changes are on disk (durable.go)
	savedMu sync.Mutex
	savedAt time.Time // when the state was last written (savedMu)
	// providers are the hosted providers, by name; providerState holds
	// their snapshots as loaded, until each is hosted. Both under
	// store.mu.
	providers     map[string]Provider
	providerState map[string]json.RawMessage

	watchMu  sync.Mutex
	watchers []func(ResourceChange)
	noticers []func(Notice)

	agentTokens agentTokens

	reqLogMu sync.Mutex
	reqLog   io.Writer
	reqFile  *os.File

	mu       sync.Mutex
	listener net.Listener
	srv      *http.Server
	url      string
	done     chan struct{}
}

// New validates opts, loads or creates the CA, the issuer key and the
// client secret, and builds the routes. Nothing listens until Start.
func New(opts Options) (*Server, error) {
	if opts.Workdir == "" {
		return nil, errors.New("arm: workdir is required")
	}
	wd, err := filepath.Abs(opts.Workdir)
	if err != nil {
		return nil, fmt.Errorf("arm: workdir: %w", err)
	}
	opts.Workdir = wd
	dir := filepath.Join(wd, "arm")
	if opts.Addr == "" {
		opts.Addr = "127.0.0.1:0"
	}
	if opts.Clock == nil {
		opts.Clock = clock.Real()
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	wall := clock.Real()
	if opts.CA == nil {
		opts.CAFile = filepath.Join(wd, "ca.crt")
		opts.CA, err = pki.LoadOrCreateCA(opts.CAFile, filepath.Join(wd, "ca.key"), "gitopsim CA", wall.Now())
		if err != nil {
			return nil, fmt.Errorf("arm: %w", err)
		}
	}
	if opts.TenantID == "" {
		opts.TenantID = DefaultTenantID
	}
	if opts.SubscriptionID == "" {
		opts.SubscriptionID = DefaultSubscriptionID
	}
	if opts.ClientID == "" {
		opts.ClientID = DefaultClientID
	}
	if opts.ClientObjectID == "" {
		opts.ClientObjectID = opts.ClientID
	}
	if opts.TokenLifetime <= 0 {
		opts.TokenLifetime = defaultTokenLifetime
	}
	if opts.PageSize <= 0 {
		opts.PageSize = defaultPageSize
	}
	if opts.ClientSecret == "" {
		opts.ClientSecret, err = loadOrCreateSecret(filepath.Join(dir, "client-secret"))
		if err != nil {
			return nil, err
		}
	}
	key, err := loadOrCreateKey(filepath.Join(dir, "issuer.key"))
	if err != nil {
		return nil, fmt.Errorf("arm: %w", err)
	}
	s := &Server{
		opts:  opts,
		log:   opts.Logger.With("component", "arm"),
		clock: opts.Clock,
		wall:  wall,
		store: newStore(opts.SubscriptionID),

		providers:     map[string]Provider{},
		providerState: map[string]json.RawMessage{},
	}
	s.durable.init()
	s.issuer = &issuer{s: s, key: key}
	s.routes()
	for _, f := range opts.Faults {
		s.InjectFault(f)
	}
	if opts.StateDir != "" {
		if s.opts.StateDir, err = filepath.Abs(opts.StateDir); err != nil {
			return nil, fmt.Errorf("arm: state dir: %w", err)
		}
		if err := os.MkdirAll(s.opts.StateDir, 0o700); err != nil {
			return nil, fmt.Errorf("arm: state dir: %w", err)
		}
		k := opts.StateKey
		s.keyFile = opts.StateKeyFile
		if k == nil {
			s.keyFile = filepath.Join(s.opts.StateDir, stateKeyFile)
			if k, err = statedir.ComponentKey(s.keyFile, stateKeyPath(wd), filepath.Join(s.opts.StateDir, stateFile)); err != nil {
				return nil, fmt.Errorf("arm: %w", err)
			}
		}
		if s.sealed, err = sealed.New(k, stateMagic); err != nil {
			return nil, fmt.Errorf("arm: state key %s: %w", cmp.Or(s.keyFile, "(given)"), err)
		}
		if err := s.loadState(); err != nil {
			return nil, err
		}
	}
	return s, nil
}

func loadOrCreateSecret(path string) (string, error) {
	if b, err := os.ReadFile(path); err == nil {
		if s := strings.TrimSpace(string(b)); s != "" {
			return s, nil
		}
	} else if !errors.Is(err, os.ErrNotExist) {
		return "", fmt.Errorf("arm: client secret: %w", err)
	}
	buf := make([]byte, 30)
	if _, err := rand.Read(buf); err != nil {
		return "", fmt.Errorf("arm: client secret: %w", err)
	}
	secret := base64.RawURLEncoding.EncodeToString(buf)
	if err := atomicfile.WriteFile(path, []byte(secret+"\n"), 0o600); err != nil {
		return "", fmt.Errorf("arm: %w", err)
	}
	return secret, nil
}

// Start listens and serves in the background until Stop. Like every
// component started by sim.Sim, ctx bounds only the start-up. Accessors are
// valid once it returns.
func (s *Server) Start(ctx context.Context) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.listener != nil {
		return errors.New("arm: already started")
	}
	l, err := net.Listen("tcp", s.opts.Addr)
	if err != nil {
		if errors.Is(err, syscall.EADDRINUSE) {
			return fmt.Errorf("ARM provider port %s is already in use (pick another with --arm-port, or 0 for any free port): %w", s.opts.Addr, err)
		}
		return fmt.Errorf("arm: listen on %s: %w", s.opts.Addr, err)
	}
	host, _, _ := net.SplitHostPort(l.Addr().String())
	leaf, err := s.opts.CA.IssueServer("gitopsim-arm", []string{host, "127.0.0.1", "localhost", "::1"}, s.wall.Now())
	if err != nil {
		l.Close()
		return fmt.Errorf("arm: serving certificate: %w", err)
	}
	cert, err := leaf.TLSCertificate()
	if err != nil {
		l.Close()
		return fmt.Errorf("arm: serving certificate: %w", err)
	}
	if s.opts.RequestLog != nil {
		s.reqLog = s.opts.RequestLog
	} else {
		path := filepath.Join(s.opts.Workdir, "arm", "requests.jsonl")
		f, err := os.OpenFile(path, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
		if err != nil {
			l.Close()
			return fmt.Errorf("arm: request log: %w", err)
		}
		s.reqFile, s.reqLog = f, f
	}
	s.listener = l
	s.url = "https://" + l.Addr().String()
	s.srv = &http.Server{
		Handler:           s,
		TLSConfig:         &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12},
		ReadHeaderTimeout: 30 * time.Second,
		ErrorLog:          slog.NewLogLogger(s.log.Handler(), slog.LevelDebug),
	}
	s.done = make(chan struct{})
	srv, done := s.srv, s.done
	go func() {
		defer close(done)
		if err := srv.ServeTLS(l, "", ""); err != nil && !errors.Is(err, http.ErrServerClosed) {
			s.log.Error("serve", "err", err)
		}
	}()
	s.log.Info("ARM provider is serving", "url", s.url, "subscription", s.opts.SubscriptionID)
	return nil
}

// Stop closes the listener and waits for in-flight requests.
func (s *Server) Stop(ctx context.Context) error {
	s.mu.Lock()
	srv, done, f := s.srv, s.done, s.reqFile
	s.srv, s.reqFile = nil, nil
	s.mu.Unlock()
	if srv == nil {
		return nil
	}
	err := graceful.Shutdown(ctx, srv, graceful.Grace, s.log)
	<-done
	if f != nil {
		s.reqLogMu.Lock()
		_ = f.Close()
		s.reqLogMu.Unlock()
	}
	return err
}

// URL is the server's base URL (https://127.0.0.1:port), valid after Start.
func (s *Server) URL() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.url
}

// CAFile is the CA certificate clients must trust.
func (s *Server) CAFile() string { return s.opts.CAFile }

// TenantID, SubscriptionID, ClientID and ClientSecret are the credentials
// endpoints.json publishes.
func (s *Server) TenantID() string       { return s.opts.TenantID }
func (s *Server) SubscriptionID() string { return s.opts.SubscriptionID }
func (s *Server) ClientID() string       { return s.opts.ClientID }
func (s *Server) ClientSecret() string   { return s.opts.ClientSecret }

// AuthorityHost is the azidentity authority host (the issuer is served at
// the root of this server, as MSAL requires).
func (s *Server) AuthorityHost() string { return s.URL() + "/" }

// call is one request on its way through a handler.
type call struct {
	s          *Server
	w          http.ResponseWriter
	r          *http.Request
	route      *route
	vars       map[string]string
	apiVersion string
	now        time.Time
	who        *principal
	// logBody is the redacted request body for the request log.
	logBody json.RawMessage
	// held keeps the answer of a request to a server with a state dir
	// until commit, the generation of its change (0: none), is on disk.
	held   *heldResponse
	commit uint64
}

// ServeHTTP runs the layers: recovery, request log, faults, auth, router.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	s.serveAs(w, r, nil)
}

// serveAs serves a request; a non-nil as is the principal of an
// in-process call (Dispatch), which carries no token.
func (s *Server) serveAs(w http.ResponseWriter, r *http.Request, as *principal) {
	began := s.wall.Now()
	rec := &statusRecorder{ResponseWriter: w, status: http.StatusOK}
	c := &call{s: s, w: rec, r: r, now: s.clock.Now(), who: as}
	defer func() {
		if p := recover(); p != nil {
			s.log.Error("handler panic", "method", r.Method, "path", r.URL.Path, "panic", fmt.Sprint(p))
			if !rec.wrote {
				writeError(rec, errorf(http.StatusInternalServerError, CodeInternalServerError, "The server encountered an internal error; the request log has details."))
			}
		}
		s.logRequest(c, rec, s.wall.Since(began))
	}()
	if s.opts.StateDir != "" {
		c.held = newHeldResponse()
		c.w = c.held
	}
	var failuresBefore uint64
	if c.held != nil {
		failuresBefore = s.durable.failureCount()
	}
	e := s.serve(c)
	read := c.held != nil && c.commit == 0 && as == nil
	if read {
		// A read from outside waits for the changes it may have seen.
		c.commit = s.durable.unwritten()
	}
	switch {
	case c.commit > 0 && !s.awaitDurable(c.commit) && !read:
		// The handler's answer is dropped: the change it reports is undone.
		writeError(rec, errNotSaved())
	case read && s.durable.failureCount() != failuresBefore:
		// It may have seen what was undone meanwhile.
		writeError(rec, errReadUndone())
	default:
		if c.held != nil {
			c.held.flushTo(rec)
		}
		if e != nil {
			writeError(rec, e)
		}
	}
	if c.route != nil && !c.route.dataPlane && rec.status >= 200 && rec.status < 300 {
		switch r.Method {
		case http.MethodPut, http.MethodPatch, http.MethodDelete:
			s.notify(ResourceChange{ID: "/" + strings.Join(splitPath(r.URL.EscapedPath()), "/"), Method: r.Method, Status: rec.status, Time: c.now})
		}
	}
}

func (s *Server) serve(c *call) *Error {
	segs := splitPath(c.r.URL.EscapedPath())
	rt, vars := s.router.find(segs)
	version, hasVersion := queryValue(c.r.URL.Query(), "api-version")
	c.apiVersion = version
	if rt == nil {
		if e := s.faults.check(c, ""); e != nil {
			return e
		}
		if !issuerPath(segs) {
			if _, e := s.issuer.authenticate(c.r, s.tokenNow(c.now)); e != nil {
				return e
			}
		}
		return notFound(segs, version)
	}
	c.route, c.vars = rt, vars
	if e := s.faults.check(c, rt.name); e != nil {
		return e
	}
	if !rt.public && c.who == nil {
		who, e := s.issuer.authenticate(c.r, s.tokenNow(c.now))
		if e != nil {
			return e
		}
		c.who = who
	}
	h, ok := rt.methods[c.r.Method]
	if !ok && c.r.Method == http.MethodHead {
		h, ok = rt.methods[http.MethodGet]
	}
	if !ok {
		return methodNotAllowed(rt, c.r.Method)
	}
	if e := checkAPIVersion(rt, version, hasVersion); e != nil {
		return e
	}
	return h(c)
}

// issuerPath lets unmatched paths under the issuer's tenant prefix, or
// under its ADFS door, fail with 404 rather than 401.
func issuerPath(segs []string) bool {
	if len(segs) >= 1 && strings.EqualFold(segs[0], "adfs") {
		return true
	}
	return len(segs) >= 2 && (strings.EqualFold(segs[1], "v2.0") || strings.EqualFold(segs[1], "oauth2"))
}

// statusRecorder remembers what a handler wrote, for the request log.
type statusRecorder struct {
	http.ResponseWriter
	status int
	wrote  bool
}

func (r *statusRecorder) WriteHeader(code int) {
	if !r.wrote {
		r.status, r.wrote = code, true
	}
	r.ResponseWriter.WriteHeader(code)
}

func (r *statusRecorder) Write(b []byte) (int, error) {
	r.wrote = true
	return r.ResponseWriter.Write(b)
}

// requestLogEntry is one line of the request log. It never holds a header,
// a token, a form body or a protected setting.
type requestLogEntry struct {
	Time       string          `json:"time"`
	Method     string          `json:"method"`
	Path       string          `json:"path"`
	APIVersion string          `json:"apiVersion,omitempty"`
	Route      string          `json:"route,omitempty"`
	Status     int             `json:"status"`
	ErrorCode  string          `json:"errorCode,omitempty"`
	Client     string          `json:"client,omitempty"`
	RequestID  string          `json:"clientRequestId,omitempty"`
	Body       json.RawMessage `json:"body,omitempty"`
	Millis     float64         `json:"ms"`
}

func (s *Server) logRequest(c *call, rec *statusRecorder, took time.Duration) {
	e := requestLogEntry{
		Time:       c.now.UTC().Format(time.RFC3339Nano),
		Method:     c.r.Method,
		Path:       c.r.URL.Path,
		APIVersion: c.apiVersion,
		Status:     rec.status,
		ErrorCode:  rec.Header().Get("x-ms-error-code"),
		RequestID:  c.r.Header.Get("x-ms-client-request-id"),
		Body:       c.logBody,
		Millis:     float64(took.Microseconds()) / 1000,
	}
	if c.route != nil {
		e.Route = c.route.name
	}
	if c.who != nil {
		e.Client = c.who.ClientID
	}
	b, err := json.Marshal(e)
	if err != nil {
		return
	}
	s.reqLogMu.Lock()
	defer s.reqLogMu.Unlock()
	if s.reqLog != nil {
		_, _ = s.reqLog.Write(append(b, '\n'))
	}
}

// tokenNow is the time tokens are issued and checked at (TokenClock).
func (s *Server) tokenNow(now time.Time) time.Time {
	if s.opts.TokenClock != nil {
		return s.opts.TokenClock.Now()
	}
	return now
}
