package gitserver

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/tls"
	"encoding/pem"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/gliderlabs/ssh"
	gossh "golang.org/x/crypto/ssh"

	"github.com/gitopsim/gitopsim/sim/clock"
	"github.com/gitopsim/gitopsim/sim/gitserver/internal/odb"
	"github.com/gitopsim/gitopsim/sim/internal/atomicfile"
	"github.com/gitopsim/gitopsim/sim/internal/graceful"
	"github.com/gitopsim/gitopsim/sim/internal/pki"
)

// Backend names for Options.Backend.
const (
	// Native is the Go protocol layer of this package.
	Native = "native"
	// Reference hands requests to the git binaries (git upload-pack,
	// git receive-pack, git http-backend); it needs git on PATH and a disk
	// store.
	Reference = "reference"
)

// AdminUser is the user whose key and token are written for people to use.
const AdminUser = "gitopsim"

// Options configures a Server.
type Options struct {
	// Workdir keeps the SSH host key, known_hosts, and the admin key and
	// token (under git/). Required.
	Workdir string
	// StateDir keeps repositories on disk, and with them the identities
	// (users, keys, tokens, deploy keys, public repos) and the SSH host
	// key; empty means in memory.
	StateDir string
	// StateKey encrypts the identities file (tokens are secrets); without
	// it the key is StateDir/state.key, made when missing.
	StateKey []byte
	// SSHAddr and HTTPSAddr to listen on; default 127.0.0.1:0 each.
	SSHAddr   string
	HTTPSAddr string
	// CA issues the HTTPS certificate; CAFile is its certificate on disk.
	// When nil, a CA is loaded from or created in Workdir.
	CA     *pki.CA
	CAFile string
	// Backend is Native (default) or Reference.
	Backend string
	// DefaultBranch of new repos; default "main".
	DefaultBranch string
	// Clock drives token expiry and event times; default Real.
	Clock clock.Clock
	// Logger for diagnostics; nil discards.
	Logger *slog.Logger
	// DisablePackCache makes every fetch plan and write its pack anew
	// (for benchmarks that measure the cold path).
	DisablePackCache bool
	// CacheBytes bounds the server's memory for caches, shared by all
	// repos: half for decoded objects (commits, trees, delta bases), half
	// for recent packs. Default 64 MiB.
	CacheBytes int
}

type repoMeta struct {
	public  bool
	down    bool
	latency time.Duration
}

// Server is the git server: one service, two fronts.
type Server struct {
	opts  Options
	log   *slog.Logger
	clock clock.Clock
	wall  clock.Clock
	store Store
	ids   *identityStore // nil without a state dir
	git   string         // path of the git binary, for the reference backend

	hostSigner gossh.Signer
	adminKey   []byte // PEM of the admin's private key
	adminToken string

	mu      sync.Mutex
	users   map[string]*user
	keys    map[string]*identity // by SHA256 fingerprint
	tokens  []*token
	meta    map[string]repoMeta
	down    bool
	latency time.Duration
	subs    map[int]chan PushEvent
	subSeq  int
	history []PushEvent

	objects  *odb.Cache
	packs    *packCache
	requests map[string]int64
	failures map[string]int64
	recent   []Failure

	sshSrv   *ssh.Server
	httpSrv  *http.Server
	sshL     net.Listener
	httpL    net.Listener
	sshAddr  string
	httpsURL string
	wg       sync.WaitGroup
}

// New validates opts, prepares the store and the keys; nothing listens
// until Start.
func New(opts Options) (*Server, error) {
	if opts.Workdir == "" {
		return nil, errors.New("gitserver: workdir is required")
	}
	wd, err := filepath.Abs(opts.Workdir)
	if err != nil {
		return nil, err
	}
	opts.Workdir = wd
	for _, a := range []*string{&opts.SSHAddr, &opts.HTTPSAddr} {
		if *a == "" {
			*a = "127.0.0.1:0"
		}
	}
	if opts.DefaultBranch == "" {
		opts.DefaultBranch = "main"
	}
	if opts.Clock == nil {
		opts.Clock = clock.Real()
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if opts.Backend == "" {
		opts.Backend = Native
	}
	if opts.CacheBytes <= 0 {
		opts.CacheBytes = 64 << 20
	}
	wall := clock.Real()
	s := &Server{
		opts: opts, log: opts.Logger.With("component", "git"), clock: opts.Clock, wall: wall,
		users: map[string]*user{}, keys: map[string]*identity{}, meta: map[string]repoMeta{}, subs: map[int]chan PushEvent{},
		objects: odb.NewCache(opts.CacheBytes / 2), packs: newPackCache(opts.CacheBytes / 2),
		requests: map[string]int64{}, failures: map[string]int64{},
	}
	// Only a state dir the caller chose keeps identities; the reference
	// backend's scratch repos dir is no state.
	durable := opts.StateDir != ""
	switch opts.Backend {
	case Native:
	case Reference:
		if s.git, err = exec.LookPath("git"); err != nil {
			return nil, errors.New("gitserver: the reference backend needs the git binary on PATH")
		}
		if opts.StateDir == "" {
			opts.StateDir = filepath.Join(wd, "git", "repos")
			s.opts.StateDir = opts.StateDir
		}
	default:
		return nil, fmt.Errorf("gitserver: unknown backend %q (valid: %s, %s)", opts.Backend, Native, Reference)
	}
	if opts.StateDir != "" {
		if s.store, err = newDiskStore(opts.StateDir, s.objects); err != nil {
			return nil, err
		}
	} else {
		s.store = newMemoryStore(s.objects)
	}
	if opts.CA == nil {
		s.opts.CAFile = filepath.Join(wd, "ca.crt")
		if s.opts.CA, err = pki.LoadOrCreateCA(s.opts.CAFile, filepath.Join(wd, "ca.key"), "gitopsim CA", wall.Now()); err != nil {
			return nil, fmt.Errorf("gitserver: %w", err)
		}
	}
	dir := filepath.Join(wd, "git")
	hostKey := filepath.Join(dir, "ssh_host_ed25519_key")
	if durable {
		if s.ids, err = newIdentityStore(opts.StateDir, opts.StateKey); err != nil {
			return nil, err
		}
		if err := s.ids.load(s); err != nil {
			return nil, err
		}
		// The host key goes with the state: configurations carry its
		// known_hosts line. One an older gitopsim kept in the work dir
		// moves in.
		if hostKey, err = stateCopy(opts.StateDir, hostKey); err != nil {
			return nil, fmt.Errorf("gitserver: host key: %w", err)
		}
	}
	if s.hostSigner, _, err = loadOrCreateSSHKey(hostKey); err != nil {
		return nil, fmt.Errorf("gitserver: host key: %w", err)
	}
	adminKey := filepath.Join(dir, "admin_ed25519")
	if durable {
		// The admin's key lives with the state too, or each start with a
		// fresh work dir would register one more that goes on working.
		if adminKey, err = stateCopy(opts.StateDir, adminKey); err != nil {
			return nil, fmt.Errorf("gitserver: admin key: %w", err)
		}
	}
	adminSigner, adminPEM, err := loadOrCreateSSHKey(adminKey)
	if err != nil {
		return nil, fmt.Errorf("gitserver: admin key: %w", err)
	}
	if durable {
		// Clients read it from the work dir (AdminKeyFile, endpoints.json).
		if err := atomicfile.WriteFile(s.AdminKeyFile(), adminPEM, 0o600); err != nil {
			return nil, fmt.Errorf("gitserver: admin key: %w", err)
		}
	}
	s.adminKey = adminPEM
	if !s.hasUser(AdminUser) {
		if err := s.AddUser(AdminUser, true); err != nil {
			return nil, err
		}
	}
	// A restart with the state dir knows the admin's key already.
	if id := s.identityForKey(adminSigner.PublicKey()); id == nil || id.user == nil || id.user.name != AdminUser {
		if _, err := s.AddUserKey(AdminUser, string(gossh.MarshalAuthorizedKey(adminSigner.PublicKey()))); err != nil {
			return nil, err
		}
	}
	tokPath := filepath.Join(dir, "admin-token")
	if b, err := os.ReadFile(tokPath); err == nil && strings.TrimSpace(string(b)) != "" {
		s.adminToken = strings.TrimSpace(string(b))
	} else if tok := s.firstAdminToken(); tok != "" {
		// A fresh work dir on a state dir: the admin's token is in the
		// identities already.
		s.adminToken = tok
		if err := atomicfile.WriteFile(tokPath, []byte(s.adminToken+"\n"), 0o600); err != nil {
			return nil, err
		}
	} else {
		if s.adminToken, err = s.AddToken(AdminUser, TokenOptions{}); err != nil {
			return nil, err
		}
		if err := atomicfile.WriteFile(tokPath, []byte(s.adminToken+"\n"), 0o600); err != nil {
			return nil, err
		}
	}
	if !s.hasToken(s.adminToken) {
		if _, err := s.AddToken(AdminUser, TokenOptions{Token: s.adminToken}); err != nil {
			return nil, err
		}
	}
	return s, nil
}

// stateCopy is where a file the work dir used to keep (at old) lives in
// the state dir; an older gitopsim's copy moves in.
func stateCopy(stateDir, old string) (string, error) {
	path := filepath.Join(stateDir, filepath.Base(old))
	if _, err := os.Stat(path); !errors.Is(err, os.ErrNotExist) {
		return path, nil // there, or an error loading it will name
	}
	b, err := os.ReadFile(old)
	switch {
	case errors.Is(err, os.ErrNotExist):
		return path, nil // nothing to move: a new one is made
	case err != nil:
		// Making a new key instead would change it without a word.
		return "", fmt.Errorf("move %s into the state dir: %w", old, err)
	}
	if err := atomicfile.WriteFile(path, b, 0o600); err != nil {
		return "", err
	}
	return path, nil
}

// firstAdminToken is the oldest token of the admin that does not expire,
// or "".
func (s *Server) firstAdminToken() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, t := range s.tokens {
		// gitopsim's own admin tokens never expire; one that does was
		// made by someone else, and must not become gitopsim's.
		if t.user == AdminUser && !t.readOnly && t.expires.IsZero() {
			return t.secret
		}
	}
	return ""
}

func (s *Server) hasUser(name string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.users[name] != nil
}

func (s *Server) hasToken(secret string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, t := range s.tokens {
		if t.secret == secret {
			return true
		}
	}
	return false
}

// loadOrCreateSSHKey keeps an Ed25519 key in OpenSSH PEM at path (0600),
// with the public half beside it (.pub).
func loadOrCreateSSHKey(path string) (gossh.Signer, []byte, error) {
	if b, err := os.ReadFile(path); err == nil {
		sg, err := gossh.ParsePrivateKey(b)
		return sg, b, err
	} else if !errors.Is(err, os.ErrNotExist) {
		return nil, nil, err
	}
	_, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return nil, nil, err
	}
	blk, err := gossh.MarshalPrivateKey(priv, "gitopsim")
	if err != nil {
		return nil, nil, err
	}
	b := pem.EncodeToMemory(blk)
	if err := atomicfile.WriteFile(path, b, 0o600); err != nil {
		return nil, nil, err
	}
	sg, err := gossh.NewSignerFromKey(priv)
	if err != nil {
		return nil, nil, err
	}
	if err := atomicfile.WriteFile(path+".pub", gossh.MarshalAuthorizedKey(sg.PublicKey()), 0o644); err != nil {
		return nil, nil, err
	}
	return sg, b, nil
}

// Start listens on both fronts and serves in the background until Stop.
func (s *Server) Start(ctx context.Context) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	sshL, err := listen(s.opts.SSHAddr, "git SSH", "--git-ssh-port")
	if err != nil {
		return err
	}
	httpL, err := listen(s.opts.HTTPSAddr, "git HTTPS", "--git-https-port")
	if err != nil {
		sshL.Close()
		return err
	}
	host, _, _ := net.SplitHostPort(httpL.Addr().String())
	leaf, err := s.opts.CA.IssueServer("gitopsim-git", []string{host, "127.0.0.1", "localhost", "::1"}, s.wall.Now())
	if err == nil {
		var cert tls.Certificate
		if cert, err = leaf.TLSCertificate(); err == nil {
			s.httpSrv = &http.Server{
				Handler:           http.HandlerFunc(s.serveHTTP),
				TLSConfig:         &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12},
				ReadHeaderTimeout: 30 * time.Second,
				ErrorLog:          slog.NewLogLogger(s.log.Handler(), slog.LevelDebug),
			}
		}
	}
	if err != nil {
		sshL.Close()
		httpL.Close()
		return fmt.Errorf("gitserver: certificate: %w", err)
	}
	s.sshSrv = &ssh.Server{
		Handler:          s.serveSSH,
		PublicKeyHandler: s.sshAuth,
		HostSigners:      []ssh.Signer{s.hostSigner},
		ConnCallback: func(ctx ssh.Context, conn net.Conn) net.Conn {
			if s.isDown() {
				conn.Close()
			}
			return conn
		},
	}
	s.sshL, s.httpL = sshL, httpL
	s.sshAddr = sshL.Addr().String()
	s.httpsURL = "https://" + httpL.Addr().String()
	if err := s.writeKnownHosts(); err != nil {
		sshL.Close()
		httpL.Close()
		return err
	}
	s.wg.Add(2)
	go func() {
		defer s.wg.Done()
		if err := s.sshSrv.Serve(sshL); err != nil && !errors.Is(err, ssh.ErrServerClosed) && !errors.Is(err, net.ErrClosed) {
			s.log.Error("ssh serve", "err", err)
		}
	}()
	go func() {
		defer s.wg.Done()
		if err := s.httpSrv.ServeTLS(httpL, "", ""); err != nil && !errors.Is(err, http.ErrServerClosed) {
			s.log.Error("https serve", "err", err)
		}
	}()
	s.log.Info("git server is serving", "ssh", s.SSHURL(), "https", s.httpsURL, "backend", s.opts.Backend)
	return nil
}

func listen(addr, what, flag string) (net.Listener, error) {
	l, err := net.Listen("tcp", addr)
	if err != nil {
		if errors.Is(err, syscall.EADDRINUSE) {
			return nil, fmt.Errorf("%s port %s is already in use (pick another with %s, or 0 for any free port): %w", what, addr, flag, err)
		}
		return nil, fmt.Errorf("%s: listen on %s: %w", what, addr, err)
	}
	return l, nil
}

// Stop closes both fronts and waits for them.
func (s *Server) Stop(ctx context.Context) error {
	var errs []error
	if s.sshSrv != nil {
		errs = append(errs, s.sshSrv.Close())
		// gliderlabs/ssh forgets a listener closed before Serve tracked
		// it, and its Accept would block forever: close it ourselves.
		_ = s.sshL.Close()
	}
	if s.httpSrv != nil {
		errs = append(errs, graceful.Shutdown(ctx, s.httpSrv, graceful.Grace, s.log))
	}
	s.wg.Wait()
	s.sshSrv, s.httpSrv = nil, nil
	s.mu.Lock()
	for id, ch := range s.subs {
		close(ch)
		delete(s.subs, id)
	}
	s.mu.Unlock()
	return errors.Join(errs...)
}

// SSHURL is ssh://git@127.0.0.1:port; a repo "team/app" is at
// SSHURL()+"/team/app.git".
func (s *Server) SSHURL() string { return "ssh://git@" + s.sshAddr }

// SSHAddr is the SSH listener's host:port.
func (s *Server) SSHAddr() string { return s.sshAddr }

// HTTPSURL is https://127.0.0.1:port.
func (s *Server) HTTPSURL() string { return s.httpsURL }

// CAFile is the CA certificate that the HTTPS front's certificate chains to.
func (s *Server) CAFile() string { return s.opts.CAFile }

// KnownHostsFile holds the known_hosts line of the SSH host key.
func (s *Server) KnownHostsFile() string { return filepath.Join(s.opts.Workdir, "git", "known_hosts") }

// KnownHosts is the known_hosts line for the SSH front.
func (s *Server) KnownHosts() string {
	host, port, _ := net.SplitHostPort(s.sshAddr)
	return fmt.Sprintf("[%s]:%s %s", host, port, strings.TrimSpace(string(gossh.MarshalAuthorizedKey(s.hostSigner.PublicKey()))))
}

// HostKey is the SSH host public key.
func (s *Server) HostKey() gossh.PublicKey { return s.hostSigner.PublicKey() }

// AdminKeyFile is the admin's private SSH key (0600).
func (s *Server) AdminKeyFile() string { return filepath.Join(s.opts.Workdir, "git", "admin_ed25519") }

// AdminToken is the admin's HTTPS token (user AdminUser).
func (s *Server) AdminToken() string { return s.adminToken }

func (s *Server) writeKnownHosts() error {
	return atomicfile.WriteFile(s.KnownHostsFile(), []byte(s.KnownHosts()+"\n"), 0o644)
}

// ---- faults

// SetDown takes the whole server down (SSH connections are dropped, HTTPS
// answers 503) or brings it back.
func (s *Server) SetDown(down bool) {
	s.mu.Lock()
	s.down = down
	s.mu.Unlock()
}

// SetLatency delays every request by d of wall time (0 turns it off).
func (s *Server) SetLatency(d time.Duration) {
	s.mu.Lock()
	s.latency = d
	s.mu.Unlock()
}

// SetRepoDown makes one repo refuse service, or serve again.
func (s *Server) SetRepoDown(repo string, down bool) {
	s.mu.Lock()
	m := s.meta[repo]
	m.down = down
	s.meta[repo] = m
	s.mu.Unlock()
}

// SetRepoLatency delays requests for one repo by d of wall time.
func (s *Server) SetRepoLatency(repo string, d time.Duration) {
	s.mu.Lock()
	m := s.meta[repo]
	m.latency = d
	s.meta[repo] = m
	s.mu.Unlock()
}

// Down reports whether the server, and which repos, refuse service now.
func (s *Server) Down() (server bool, repos []string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for name, m := range s.meta {
		if m.down {
			repos = append(repos, name)
		}
	}
	slices.Sort(repos)
	return s.down, repos
}

func (s *Server) isDown() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.down
}

// fault applies server and repo faults before a request is served.
func (s *Server) fault(ctx context.Context, repo string) error {
	s.mu.Lock()
	down, lat := s.down, s.latency
	m := s.meta[repo]
	s.mu.Unlock()
	if down {
		return errors.New("the git server is down (injected fault)")
	}
	if m.down {
		return fmt.Errorf("repository %s is unavailable (injected fault)", repo)
	}
	if d := lat + m.latency; d > 0 {
		return s.wall.Sleep(ctx, d)
	}
	return nil
}

// ---- push events

// Subscribe returns a channel of push events (buffered; a subscriber that
// falls 1024 events behind misses events rather than blocking pushes) and
// a function that ends the subscription.
func (s *Server) Subscribe() (<-chan PushEvent, func()) {
	ch := make(chan PushEvent, 1024)
	s.mu.Lock()
	s.subSeq++
	id := s.subSeq
	s.subs[id] = ch
	s.mu.Unlock()
	return ch, func() {
		s.mu.Lock()
		if c, ok := s.subs[id]; ok {
			close(c)
			delete(s.subs, id)
		}
		s.mu.Unlock()
	}
}

// Events returns every push event so far, oldest first.
func (s *Server) Events() []PushEvent {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]PushEvent(nil), s.history...)
}

func (s *Server) publish(events []PushEvent) {
	if len(events) == 0 {
		return
	}
	now := s.clock.Now().UTC().Format(time.RFC3339Nano)
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, e := range events {
		e.Time = now
		s.history = append(s.history, e)
		for _, ch := range s.subs {
			select {
			case ch <- e:
			default:
			}
		}
	}
}
