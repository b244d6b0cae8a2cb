package arm

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"os"
	"path/filepath"

	"github.com/gitopsim/gitopsim/sim/internal/atomicfile"
	"github.com/gitopsim/gitopsim/sim/internal/sealed"
)

// State persistence: with Options.StateDir, every acknowledged change is
// written before its response (by group commit, durable.go), as one snapshot file encrypted with
// AES-256-GCM under a key kept with the state (Options.StateKey, or
// StateDir/state.key), through atomicfile, so a crash leaves either the
// previous or the new state, never a torn one.

const (
	stateFile    = "arm-state.bin"
	stateKeyFile = "state.key"
	stateMagic   = "GITOPSIM-ARM-STATE-1\n"
	stateVersion = 1
)

type snapshot struct {
	Version       int              `json:"version"`
	Subscriptions []*subscription  `json:"subscriptions"`
	Groups        []*resourceGroup `json:"groups"`
	Clusters      []*cluster       `json:"clusters"`
	Configs       []*configuration `json:"configs"`
	Ops           []*operation     `json:"ops"`
	OpSeq         int              `json:"opSeq"`
	GenSeq        int64            `json:"genSeq"`
	// Providers are the snapshots of hosted providers, by name.
	Providers map[string]json.RawMessage `json:"providers,omitempty"`
}

// stateKeyPath is where gitopsim before state format 1 kept the key: in
// the work dir, apart from the state it opens.
func stateKeyPath(workdir string) string { return filepath.Join(workdir, "arm", "state.key") }

// loadState fills the store from the state dir, if it holds a snapshot.
func (s *Server) loadState() error {
	path := filepath.Join(s.opts.StateDir, stateFile)
	b, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("arm: read state: %w", err)
	}
	plain, err := s.sealed.Open(b)
	switch {
	case errors.Is(err, sealed.ErrForeign):
		return fmt.Errorf("arm: %s is not a gitopsim ARM state file; nothing was changed", path)
	case errors.Is(err, sealed.ErrTruncated):
		return fmt.Errorf("arm: %s is truncated; nothing was changed", path)
	case err != nil:
		return fmt.Errorf("arm: cannot decrypt %s with the key in %s (is it the key this state was written with?); nothing was changed", path, s.keyFile)
	}
	if err := s.applyState(plain, path); err != nil {
		return err
	}
	s.durable.lastGood = plain
	return nil
}

// applyState fills the empty store and the providers' saved state from a
// decrypted snapshot; from names it in messages.
func (s *Server) applyState(plain []byte, from string) error {
	var snap snapshot
	if err := json.Unmarshal(plain, &snap); err != nil {
		return fmt.Errorf("arm: decode state %s: %w; nothing was changed", from, err)
	}
	if snap.Version != stateVersion {
		return fmt.Errorf("arm: %s has state version %d, this gitopsim reads %d; use the gitopsim that wrote it, or another --state-dir", from, snap.Version, stateVersion)
	}
	st := s.store
	for _, x := range snap.Subscriptions {
		st.subscriptions[key(x.ID)] = x
	}
	for _, x := range snap.Groups {
		st.groups[key(x.ID)] = x
	}
	for _, x := range snap.Clusters {
		st.clusters[key(x.ID)] = x
	}
	for _, x := range snap.Configs {
		st.configs[key(x.ID)] = x
	}
	for _, x := range snap.Ops {
		st.ops[key(x.Name)] = x
		if !x.Done {
			st.pending[key(x.Name)] = x
		}
	}
	st.opSeq = snap.OpSeq
	st.genSeq = snap.GenSeq
	for name, raw := range snap.Providers {
		s.providerState[name] = raw
	}
	for _, c := range snap.Configs {
		st.genSeq = max(st.genSeq, c.Generation)
	}
	s.log.Info("ARM state restored", "from", from, "resourceGroups", len(snap.Groups), "clusters", len(snap.Clusters), "configurations", len(snap.Configs))
	return nil
}

// commitLocked numbers a request's change so that its answer waits until
// the change is on disk (group commit, see durable.go); store lock held.
// Without a state dir it does nothing.
func (s *Server) commitLocked(c *call) *Error {
	if s.opts.StateDir == "" {
		return nil
	}
	c.commit = s.durable.next()
	return nil
}

// numberLocked numbers a change made outside a request; 0 without a
// state dir. Store lock held.
func (s *Server) numberLocked() uint64 {
	if s.opts.StateDir == "" {
		return 0
	}
	return s.durable.next()
}

// persistNow makes the changes made so far durable, for a hosted
// provider's Persist; store lock not held.
func (s *Server) persistNow() *Error {
	s.store.mu.Lock()
	g := s.numberLocked()
	s.store.mu.Unlock()
	if g > 0 && !s.awaitDurable(g) {
		return errNotSaved()
	}
	return nil
}

// errNotSaved is the answer to a change that could not be written.
func errNotSaved() *Error {
	return errorf(http.StatusInternalServerError, CodeInternalServerError, "The change could not be saved, so it was not made. Check the state dir (is the disk full?).")
}

// errReadUndone is the answer to a read that may have seen a change that
// was then undone: the client retries, as it does any 503.
func errReadUndone() *Error {
	return errorf(http.StatusServiceUnavailable, CodeServiceUnavailable, "A change this read may have seen could not be saved and was undone; retry the request.")
}

// rollbackLocked undoes changes that could not be saved: the store, and
// every hosted provider, go back to the state file, which atomicfile left
// as it was before the failed write. Store lock held.
func (s *Server) rollbackLocked() {
	st := s.store
	notices, opSeq, genSeq := st.notices, st.opSeq, st.genSeq
	st.storeData = newStore(s.opts.SubscriptionID).storeData
	// Numbers handed out stay handed out: a configuration generation or
	// an operation name is never used twice, undone or not.
	defer func() {
		st.notices, st.opSeq, st.genSeq = notices, max(st.opSeq, opSeq), max(st.genSeq, genSeq)
	}()
	clear(s.providerState)
	// From the copy of what is on disk, not from the disk: a failed
	// write may be followed by a failed read, and an empty store written
	// later would replace the good file.
	s.durable.mu.Lock()
	last := s.durable.lastGood
	s.durable.mu.Unlock()
	if last != nil {
		if err := s.applyState(last, "the last state written"); err != nil {
			s.log.Error("restore the last ARM state written", "err", err)
			return
		}
	}
	for name, p := range s.providers {
		if raw, ok := s.providerState[name]; ok {
			if err := p.Restore(raw); err != nil {
				s.log.Error("restore provider state after a failed write", "provider", name, "err", err)
			}
		}
	}
}

// encodeStateLocked is the whole state as JSON; store lock held.
func (s *Server) encodeStateLocked() ([]byte, error) {
	st := s.store
	snap := snapshot{
		Version:       stateVersion,
		OpSeq:         st.opSeq,
		GenSeq:        st.genSeq,
		Subscriptions: inOrder(st.subscriptions, ""),
		Groups:        inOrder(st.groups, ""),
		Clusters:      inOrder(st.clusters, ""),
		Configs:       inOrder(st.configs, ""),
		Ops:           inOrder(st.ops, ""),
	}
	for name, p := range s.providers {
		raw, err := p.Snapshot()
		if err != nil {
			return nil, fmt.Errorf("snapshot of %s: %w", name, err)
		}
		if snap.Providers == nil {
			snap.Providers = map[string]json.RawMessage{}
		}
		snap.Providers[name] = raw
	}
	// A provider not hosted in this run keeps the state it had.
	for name, raw := range s.providerState {
		if _, hosted := s.providers[name]; !hosted {
			if snap.Providers == nil {
				snap.Providers = map[string]json.RawMessage{}
			}
			snap.Providers[name] = raw
		}
	}
	return json.Marshal(snap)
}

// writeSealed encrypts the encoded state and replaces the state file.
func (s *Server) writeSealed(plain []byte) error {
	out, err := s.sealed.Seal(plain)
	if err != nil {
		return err
	}
	return atomicfile.WriteFile(filepath.Join(s.opts.StateDir, stateFile), out, 0o600)
}
