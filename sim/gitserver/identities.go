package gitserver

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"time"

	"github.com/gitopsim/gitopsim/sim/statedir"

	"github.com/gitopsim/gitopsim/sim/internal/atomicfile"
	"github.com/gitopsim/gitopsim/sim/internal/sealed"
)

// With a state dir, the identity API's data (users and their grants, user
// and deploy keys, tokens, which repos are public) lives in
// STATEDIR/identities.bin beside the repositories, written before each
// change returns, through atomicfile. Tokens are secrets, so the file is
// encrypted with AES-256-GCM under Options.StateKey (or STATEDIR/state.key).
// The SSH host key lives in the state dir too, so that known_hosts lines
// given to configurations stay true after a restart with a fresh work dir.

const (
	identitiesFile    = "identities.bin"
	identitiesMagic   = "GITOPSIM-GIT-IDENTITIES-1\n"
	identitiesVersion = 1
)

type identitiesDoc struct {
	Version int              `json:"version"`
	Users   []persistedUser  `json:"users"`
	Keys    []persistedKey   `json:"keys"`
	Tokens  []persistedToken `json:"tokens"`
	Public  []string         `json:"public"`
}

type persistedUser struct {
	Name  string          `json:"name"`
	Admin bool            `json:"admin,omitempty"`
	Repos map[string]bool `json:"repos,omitempty"`
}

type persistedKey struct {
	Fingerprint string `json:"fingerprint"`
	User        string `json:"user,omitempty"`
	DeployRepo  string `json:"deployRepo,omitempty"`
	Write       bool   `json:"write,omitempty"`
}

type persistedToken struct {
	User     string    `json:"user"`
	Secret   string    `json:"secret"`
	Expires  time.Time `json:"expires,omitzero"`
	ReadOnly bool      `json:"readOnly,omitempty"`
}

// identityStore is the encrypted identities file of a state dir.
type identityStore struct {
	path string
	box  *sealed.Box
}

func newIdentityStore(stateDir string, key []byte) (*identityStore, error) {
	if key == nil {
		k, err := statedir.ComponentKey(filepath.Join(stateDir, "state.key"), "", filepath.Join(stateDir, identitiesFile))
		if err != nil {
			return nil, fmt.Errorf("gitserver: %w", err)
		}
		key = k
	}
	box, err := sealed.New(key, identitiesMagic)
	if err != nil {
		return nil, fmt.Errorf("gitserver: state key: %w", err)
	}
	return &identityStore{path: filepath.Join(stateDir, identitiesFile), box: box}, nil
}

// load reads the file into the server's maps; a missing file is an empty
// state. A file that cannot be read is refused, naming it, and left alone.
func (st *identityStore) load(s *Server) error {
	b, err := os.ReadFile(st.path)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("gitserver: read %s: %w", st.path, err)
	}
	plain, err := st.box.Open(b)
	switch {
	case errors.Is(err, sealed.ErrForeign):
		return fmt.Errorf("gitserver: %s is not a gitopsim identities file; nothing was changed", st.path)
	case errors.Is(err, sealed.ErrTruncated):
		return fmt.Errorf("gitserver: %s is truncated; nothing was changed", st.path)
	case err != nil:
		return fmt.Errorf("gitserver: cannot decrypt %s with the state key (is it the key this state was written with?); nothing was changed", st.path)
	}
	defer clear(plain)
	var doc identitiesDoc
	if err := json.Unmarshal(plain, &doc); err != nil {
		return fmt.Errorf("gitserver: decode %s: %w; nothing was changed", st.path, err)
	}
	if doc.Version != identitiesVersion {
		return fmt.Errorf("gitserver: %s has version %d, this gitopsim reads %d", st.path, doc.Version, identitiesVersion)
	}
	for _, u := range doc.Users {
		repos := u.Repos
		if repos == nil {
			repos = map[string]bool{}
		}
		s.users[u.Name] = &user{name: u.Name, admin: u.Admin, repos: repos}
	}
	for _, k := range doc.Keys {
		switch {
		case k.DeployRepo != "":
			s.keys[k.Fingerprint] = &identity{deploy: &deployKey{fingerprint: k.Fingerprint, repo: k.DeployRepo, write: k.Write}}
		case s.users[k.User] != nil:
			s.keys[k.Fingerprint] = &identity{user: s.users[k.User]}
		}
	}
	for _, t := range doc.Tokens {
		s.tokens = append(s.tokens, &token{user: t.User, secret: t.Secret, expires: t.Expires, readOnly: t.ReadOnly})
	}
	for _, r := range doc.Public {
		m := s.meta[r]
		m.public = true
		s.meta[r] = m
	}
	return nil
}

// saveLocked writes the identities; s.mu held.
func (st *identityStore) saveLocked(s *Server) error {
	doc := identitiesDoc{Version: identitiesVersion}
	for _, u := range s.users {
		doc.Users = append(doc.Users, persistedUser{Name: u.name, Admin: u.admin, Repos: u.repos})
	}
	for fp, id := range s.keys {
		k := persistedKey{Fingerprint: fp}
		if id.deploy != nil {
			k.DeployRepo, k.Write = id.deploy.repo, id.deploy.write
		} else {
			k.User = id.user.name
		}
		doc.Keys = append(doc.Keys, k)
	}
	for _, t := range s.tokens {
		doc.Tokens = append(doc.Tokens, persistedToken{User: t.user, Secret: t.secret, Expires: t.expires, ReadOnly: t.readOnly})
	}
	for r, m := range s.meta {
		if m.public {
			doc.Public = append(doc.Public, r)
		}
	}
	sort.Slice(doc.Users, func(i, j int) bool { return doc.Users[i].Name < doc.Users[j].Name })
	sort.Slice(doc.Keys, func(i, j int) bool { return doc.Keys[i].Fingerprint < doc.Keys[j].Fingerprint })
	slices.Sort(doc.Public)
	plain, err := json.Marshal(doc)
	if err != nil {
		return err
	}
	defer clear(plain)
	out, err := st.box.Seal(plain)
	if err != nil {
		return err
	}
	return atomicfile.WriteFile(st.path, out, 0o600)
}

// persistLocked saves the identities when the server has a state dir; s.mu
// held. A failure is logged and returned: the change is in memory but not
// durable.
func (s *Server) persistLocked() error {
	if s.ids == nil {
		return nil
	}
	if err := s.ids.saveLocked(s); err != nil {
		s.log.Error("persist git identities; the change is undone", "file", s.ids.path, "err", err)
		s.reloadIdentitiesLocked()
		return fmt.Errorf("gitserver: the change could not be saved, so it was not made: %w", err)
	}
	return nil
}

// reloadIdentitiesLocked undoes changes that could not be saved: the
// identities go back to the file, which atomicfile left as it was; s.mu
// held.
func (s *Server) reloadIdentitiesLocked() {
	s.users, s.keys, s.tokens = map[string]*user{}, map[string]*identity{}, nil
	for r, m := range s.meta {
		m.public = false
		s.meta[r] = m
	}
	if err := s.ids.load(s); err != nil {
		s.log.Error("reload git identities after a failed write", "err", err)
	}
}
