package gitserver

import (
	"crypto/rand"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"fmt"
	"strings"
	"time"

	gossh "golang.org/x/crypto/ssh"
)

// Errors of the identity API.
var (
	ErrUnknownUser = errors.New("unknown user")
	ErrKeyInUse    = errors.New("key already registered")
)

// identity is who a request speaks for.
type identity struct {
	user   *user      // a user (by key or token)
	deploy *deployKey // or a deploy key
	// readOnly is a token's scope.
	readOnly bool
}

func (id *identity) String() string {
	switch {
	case id == nil:
		return "anonymous"
	case id.deploy != nil:
		return "deploy key " + id.deploy.fingerprint + " of " + id.deploy.repo
	default:
		return id.user.name
	}
}

type user struct {
	name  string
	admin bool
	// repos this (non-admin) user may use, true meaning write.
	repos map[string]bool
}

type deployKey struct {
	fingerprint string
	repo        string
	write       bool
}

type token struct {
	user     string
	secret   string
	expires  time.Time // zero: never
	readOnly bool
}

// TokenOptions shape a token made by AddToken.
type TokenOptions struct {
	// Token is the secret; empty means generate one.
	Token string
	// Expires, on the simulator's clock; zero means never.
	Expires time.Time
	// ReadOnly tokens can fetch but not push.
	ReadOnly bool
}

// AddUser registers a user. Admins may read and write every repo and
// create repos by pushing to a new path.
func (s *Server) AddUser(name string, admin bool) error {
	if name == "" {
		return errors.New("gitserver: empty user name")
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.users[name]; ok {
		return fmt.Errorf("gitserver: user %q exists", name)
	}
	s.users[name] = &user{name: name, admin: admin, repos: map[string]bool{}}
	return s.persistLocked()
}

// Grant lets a non-admin user read (or, with write, push to) a repo.
func (s *Server) Grant(userName, repo string, write bool) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	u, ok := s.users[userName]
	if !ok {
		return fmt.Errorf("%w %q", ErrUnknownUser, userName)
	}
	u.repos[repo] = write
	return s.persistLocked()
}

// AddUserKey registers an SSH public key (authorized_keys format) for a
// user and returns its fingerprint.
func (s *Server) AddUserKey(userName, authorizedKey string) (string, error) {
	pub, _, _, _, err := gossh.ParseAuthorizedKey([]byte(authorizedKey))
	if err != nil {
		return "", fmt.Errorf("gitserver: user key: %w", err)
	}
	fp := gossh.FingerprintSHA256(pub)
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.users[userName]; !ok {
		return "", fmt.Errorf("%w %q", ErrUnknownUser, userName)
	}
	if _, ok := s.keys[fp]; ok {
		return "", fmt.Errorf("%w: %s", ErrKeyInUse, fp)
	}
	s.keys[fp] = &identity{user: s.users[userName]}
	return fp, s.persistLocked()
}

// AddDeployKey registers an SSH public key for one repo, read-only unless
// write, and returns its fingerprint.
func (s *Server) AddDeployKey(repo, authorizedKey string, write bool) (string, error) {
	pub, _, _, _, err := gossh.ParseAuthorizedKey([]byte(authorizedKey))
	if err != nil {
		return "", fmt.Errorf("gitserver: deploy key: %w", err)
	}
	fp := gossh.FingerprintSHA256(pub)
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.keys[fp]; ok {
		return "", fmt.Errorf("%w: %s", ErrKeyInUse, fp)
	}
	s.keys[fp] = &identity{deploy: &deployKey{fingerprint: fp, repo: repo, write: write}}
	return fp, s.persistLocked()
}

// RevokeKey removes a user or deploy key by fingerprint (SHA256:...) and
// reports whether it was known. An error means the change could not be
// saved in the state dir and was undone: the key still works.
func (s *Server) RevokeKey(fingerprint string) (bool, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	_, ok := s.keys[fingerprint]
	if !ok {
		return false, nil
	}
	delete(s.keys, fingerprint)
	return true, s.persistLocked()
}

// AddToken makes an HTTPS token for a user and returns it.
func (s *Server) AddToken(userName string, o TokenOptions) (string, error) {
	secret := o.Token
	if secret == "" {
		b := make([]byte, 20)
		if _, err := rand.Read(b); err != nil {
			return "", err
		}
		secret = "gst_" + base64.RawURLEncoding.EncodeToString(b)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.users[userName]; !ok {
		return "", fmt.Errorf("%w %q", ErrUnknownUser, userName)
	}
	s.tokens = append(s.tokens, &token{user: userName, secret: secret, expires: o.Expires, readOnly: o.ReadOnly})
	if err := s.persistLocked(); err != nil {
		return "", err
	}
	return secret, nil
}

// RevokeToken removes a token and reports whether it was known; an
// error means the change could not be saved and was undone.
func (s *Server) RevokeToken(secret string) (bool, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for i, t := range s.tokens {
		if t.secret == secret {
			s.tokens = append(s.tokens[:i], s.tokens[i+1:]...)
			return true, s.persistLocked()
		}
	}
	return false, nil
}

// ExpireToken makes a token expire now (on the simulator's clock) and
// reports whether it was known; an error means the change could not be
// saved and was undone.
func (s *Server) ExpireToken(secret string) (bool, error) {
	now := s.clock.Now()
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, t := range s.tokens {
		if t.secret == secret {
			t.expires = now
			return true, s.persistLocked()
		}
	}
	return false, nil
}

func (s *Server) identityForKey(pub gossh.PublicKey) *identity {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.keys[gossh.FingerprintSHA256(pub)]
}

// identityForToken checks basic-auth credentials; the error is what the
// client is told.
func (s *Server) identityForToken(userName, secret string) (*identity, error) {
	now := s.clock.Now()
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, t := range s.tokens {
		if subtle.ConstantTimeCompare([]byte(t.secret), []byte(secret)) != 1 {
			continue
		}
		if t.user != userName {
			break
		}
		if !t.expires.IsZero() && !now.Before(t.expires) {
			return nil, fmt.Errorf("the token of %s expired at %s", userName, t.expires.UTC().Format(time.RFC3339))
		}
		return &identity{user: s.users[t.user], readOnly: t.readOnly}, nil
	}
	return nil, errors.New("invalid username or token")
}

// authorize decides whether id may read (or write) repo; the error says
// why not, in words fit for the client.
func (s *Server) authorize(id *identity, repo string, write bool) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	public := s.meta[repo].public
	verb := "read"
	if write {
		verb = "push to"
	}
	switch {
	case id == nil:
		if !write && public {
			return nil
		}
		return fmt.Errorf("authentication required to %s %s", verb, repo)
	case id.deploy != nil:
		if id.deploy.repo != repo {
			return fmt.Errorf("deploy key %s belongs to %s and has no access to %s", id.deploy.fingerprint, id.deploy.repo, repo)
		}
		if write && !id.deploy.write {
			return fmt.Errorf("deploy key %s of %s is read-only: pushing needs a read-write deploy key", id.deploy.fingerprint, repo)
		}
		return nil
	}
	u := id.user
	if write && id.readOnly {
		return fmt.Errorf("the token of %s is read-only: pushing needs a read-write token", u.name)
	}
	if u.admin || (!write && public) {
		return nil
	}
	w, ok := u.repos[repo]
	switch {
	case !ok:
		return fmt.Errorf("%s has no access to %s", u.name, repo)
	case write && !w:
		return fmt.Errorf("%s may read but not push to %s", u.name, repo)
	}
	return nil
}

func (id *identity) isAdmin() bool {
	return id != nil && id.user != nil && id.user.admin && !id.readOnly
}

// trimUser keeps error messages on one line.
func oneLine(s string) string { return strings.ReplaceAll(s, "\n", " ") }
