package agent

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"time"

	"github.com/go-git/go-git/v5"
	gitconfig "github.com/go-git/go-git/v5/config"
	"github.com/go-git/go-git/v5/plumbing"
	"github.com/go-git/go-git/v5/plumbing/object"
	"github.com/go-git/go-git/v5/plumbing/transport"
	githttp "github.com/go-git/go-git/v5/plumbing/transport/http"
	gitssh "github.com/go-git/go-git/v5/plumbing/transport/ssh"
	"github.com/go-git/go-git/v5/storage/memory"

	"github.com/gitopsim/gitopsim/sim/arm"
	"github.com/gitopsim/gitopsim/sim/clock"
)

// operator is one simulated fluxd: a git loop (clone, branch check, write
// check, fetch every poll interval) and a sync loop (apply at every new
// revision and at least every sync interval), on the agent's clock.
type operator struct {
	a      *Agent
	name   string
	spec   arm.ConfigSpec
	p      fluxParams
	creds  *gitCreds
	log    *slog.Logger
	client *saClient

	mu      sync.Mutex // held for a whole run
	timer   clock.Timer
	stopped bool
	repo    *git.Repository
	ready   bool
	// everReady: the repo was ready once; later it is a recovery.
	everReady bool
	head      plumbing.Hash
	nextPoll  time.Time
	nextSync  time.Time
	tagRev    plumbing.Hash
	warned    bool

	stMu sync.Mutex
	st   opStatus
	// objects are what the last sync did with each manifest.
	objects []SyncedObject

	// helm is the configuration's Helm operator, or nil.
	helm *helmOperator

	// kubectl applies and deletes as the operator's ServiceAccount.
	kubectl *kubectl
	// lastErrs are the IDs that failed in the last sync: fluxd applies
	// them one by one next time.
	lastErrs map[string]bool
	// scopeWarned are the IDs whose kind had no scope, warned about once.
	scopeWarned map[string]bool
	// blocked is a sync waiting for its deletes to finish.
	blocked *blockedSync
}

// opStatus is what the operator shows: GitConfig status and the
// OperatorMessage of the compliance report.
type opStatus struct {
	phase   string
	message string
	level   string
	synced  string // last revision synced, full hash
}

func newOperator(a *Agent, name string, spec arm.ConfigSpec, p fluxParams, c *gitCreds) *operator {
	o := &operator{
		a: a, name: name, spec: spec, p: p, creds: c,
		log:         a.log.With("configuration", name, "operator", spec.OperatorNamespace+"/"+spec.OperatorInstanceName),
		client:      newSAClient(a, spec.OperatorNamespace, spec.OperatorInstanceName),
		st:          opStatus{phase: "Installing the operator", message: "Operator installed; cloning " + safeURL(spec.RepositoryURL), level: "Information"},
		lastErrs:    map[string]bool{},
		scopeWarned: map[string]bool{},
	}
	o.kubectl = newKubectl(o.client.restConfig(), a.disco, a.oapi)
	return o
}

func (o *operator) start() {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.timer = o.a.clk.AfterFunc(0, o.run)
	if o.helm != nil {
		o.helm.start()
	}
}

// stop ends the loops; a run in progress finishes first.
func (o *operator) stop() {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.stopped = true
	if o.timer != nil {
		o.timer.Stop()
	}
	if o.helm != nil {
		o.helm.stop()
	}
}

func (o *operator) status() opStatus {
	o.stMu.Lock()
	defer o.stMu.Unlock()
	return o.st
}

// setStatus records a new status and reports whether it changed.
func (o *operator) setStatus(st opStatus) bool {
	o.stMu.Lock()
	defer o.stMu.Unlock()
	if st.synced == "" {
		st.synced = o.st.synced
	}
	changed := st != o.st
	o.st = st
	return changed
}

func (o *operator) run() {
	o.mu.Lock()
	if o.stopped {
		o.mu.Unlock()
		return
	}
	next, changed := o.step()
	if !o.stopped {
		o.timer = clock.Again(o.a.clk, next, o.run)
	}
	o.mu.Unlock()
	if changed {
		o.a.statusChanged(o.name)
	}
}

// step does what is due and returns when to run next and whether the
// status changed.
func (o *operator) step() (time.Duration, bool) {
	now := o.a.clk.Now()
	ctx, cancel := context.WithTimeout(o.a.ctx, o.p.GitTimeout)
	defer cancel()
	if !o.ready {
		prevHead := o.head
		if err := o.prepare(ctx); err != nil {
			changed := o.setStatus(opStatus{phase: "Installed", message: "git repo not ready: " + err.Error(), level: "Error"})
			if changed {
				o.a.event(o.name, "GitNotReady", "configuration %s: git repo not ready: %v", o.name, err)
			}
			return o.a.iv.Retry, changed
		}
		o.ready = true
		o.nextPoll = now.Add(o.p.PollInterval)
		// fluxd syncs at start; after an outage, only if the branch moved
		// meanwhile (the sync loop is woken by a changed ref, not by the
		// repo being ready again: pkg/daemon/loop.go).
		if !o.everReady || o.head != prevHead {
			o.nextSync = now
		}
		o.everReady = true
	} else if !now.Before(o.nextPoll) {
		o.nextPoll = now.Add(o.p.PollInterval)
		moved, err := o.fetch(ctx)
		if err != nil {
			o.ready = false
			changed := o.setStatus(opStatus{phase: "Installed", message: "git repo not ready: fetch: " + err.Error(), level: "Error"})
			if changed {
				o.a.event(o.name, "GitNotReady", "configuration %s: fetch failed: %v", o.name, err)
			}
			return o.a.iv.Retry, changed
		}
		if moved {
			o.nextSync = now
		}
	}
	changed := false
	if o.blocked != nil {
		// fluxd's sync loop is stuck in kubectl delete: nothing syncs
		// until it returns.
		var blocked bool
		blocked, changed = o.checkBlocked(ctx)
		if blocked {
			return min(o.a.iv.Retry, o.nextPoll.Sub(now)), changed
		}
	}
	if !now.Before(o.nextSync) {
		o.nextSync = now.Add(o.p.SyncInterval)
		changed = o.sync() || changed
	}
	next := o.nextPoll
	if o.nextSync.Before(next) {
		next = o.nextSync
	}
	return next.Sub(now), changed
}

// gitOpts are the remote options every git operation uses: credentials,
// host trust and the agent's git link.
func (o *operator) auth() (transport.AuthMethod, error) { return o.authFor(o.spec.RepositoryURL) }

// authFor is the configuration's git credentials for url: the SSH key and
// known hosts for an SSH URL, the HTTPS user and token otherwise (the
// Helm operator's git chart sources use them too).
func (o *operator) authFor(url string) (transport.AuthMethod, error) {
	if isSSH(url) {
		ep, err := transport.NewEndpoint(url)
		if err != nil {
			return nil, err
		}
		user := ep.User
		if user == "" {
			user = "git"
		}
		return &gitssh.PublicKeys{User: user, Signer: o.creds.signer, HostKeyCallbackHelper: gitssh.HostKeyCallbackHelper{HostKeyCallback: knownHostsCallback(o.creds.knownHosts)}}, nil
	}
	if o.creds.httpsUser != "" || o.creds.httpsPass != "" {
		return &githttp.BasicAuth{Username: o.creds.httpsUser, Password: o.creds.httpsPass}, nil
	}
	return nil, nil
}

func (o *operator) proxy() transport.ProxyOptions {
	return transport.ProxyOptions{URL: o.a.gitLink.ProxyURL()}
}

func (o *operator) branchRef() plumbing.ReferenceName {
	return plumbing.NewRemoteReferenceName("origin", o.p.Branch)
}

// prepare takes the repo from new to ready: mirror fetch, branch check,
// write check (spec §4.2).
func (o *operator) prepare(ctx context.Context) error {
	if o.repo == nil {
		r, err := git.Init(memory.NewStorage(), nil)
		if err != nil {
			return err
		}
		if _, err := r.CreateRemote(&gitconfig.RemoteConfig{Name: "origin", URLs: []string{o.spec.RepositoryURL}}); err != nil {
			return err
		}
		o.repo = r
	}
	if _, err := o.fetch(ctx); err != nil {
		hint := ""
		if isSSH(o.spec.RepositoryURL) {
			hint = "; make sure the deploy key (repositoryPublicKey) is registered with the repository and the URL is right"
		}
		return fmt.Errorf("git clone --mirror: %v%s", err, hint)
	}
	if _, err := o.repo.Reference(o.branchRef(), true); err != nil {
		return fmt.Errorf("configured branch '%s' does not exist", o.p.Branch)
	}
	if o.p.ReadOnly {
		return nil
	}
	return o.writeCheck(ctx)
}

// fetch updates the mirror and reports whether the branch moved.
func (o *operator) fetch(ctx context.Context) (bool, error) {
	auth, err := o.auth()
	if err != nil {
		return false, err
	}
	err = o.repo.FetchContext(ctx, &git.FetchOptions{
		RemoteName: "origin", Auth: auth, Force: true, Tags: git.NoTags,
		RefSpecs:     []gitconfig.RefSpec{"+refs/heads/*:refs/remotes/origin/*", "+refs/tags/*:refs/tags/*"},
		CABundle:     o.a.opts.CAPEM,
		ProxyOptions: o.proxy(),
	})
	if err != nil && !errors.Is(err, git.NoErrAlreadyUpToDate) {
		return false, cleanGitErr(err)
	}
	ref, err := o.repo.Reference(o.branchRef(), true)
	if err != nil {
		if o.ready {
			return false, fmt.Errorf("configured branch '%s' does not exist", o.p.Branch)
		}
		return false, nil // prepare reports it
	}
	o.checkSyncTag()
	moved := ref.Hash() != o.head
	o.head = ref.Hash()
	return moved, nil
}

// checkSyncTag warns once when someone else moved our sync tag.
func (o *operator) checkSyncTag() {
	if o.p.ReadOnly || o.p.SyncState != "git" || o.tagRev.IsZero() || o.warned {
		return
	}
	ref, err := o.repo.Reference(plumbing.NewTagReferenceName(o.p.SyncTag), true)
	if err != nil {
		return
	}
	target := ref.Hash()
	if t, err := o.repo.TagObject(target); err == nil {
		target = t.Target
	}
	if target != o.tagRev {
		o.warned = true
		o.a.event(o.name, "SyncStateConflict", "configuration %s: detected external change in sync state; the sync state should not be shared by fluxd instances (tag %s)", o.name, o.p.SyncTag)
	}
}

// writeCheck pushes and deletes a throwaway tag, as fluxd does before it
// calls a read-write repo ready.
func (o *operator) writeCheck(ctx context.Context) error {
	ref, err := o.repo.Reference(o.branchRef(), true)
	if err != nil {
		return err
	}
	b := make([]byte, 5)
	_, _ = rand.Read(b)
	tag := "flux-write-check-" + hex.EncodeToString(b)
	local := plumbing.NewHashReference(plumbing.NewTagReferenceName(tag), ref.Hash())
	if err := o.repo.Storer.SetReference(local); err != nil {
		return err
	}
	defer o.repo.Storer.RemoveReference(local.Name())
	if err := o.push(ctx, gitconfig.RefSpec(local.Name()+":"+local.Name())); err != nil {
		return fmt.Errorf("attempt to push tag: %v (the deploy key needs write access, or pass --git-readonly)", err)
	}
	if err := o.push(ctx, gitconfig.RefSpec(":"+local.Name())); err != nil {
		return fmt.Errorf("attempt to delete tag: %v", err)
	}
	return nil
}

func (o *operator) push(ctx context.Context, specs ...gitconfig.RefSpec) error {
	auth, err := o.auth()
	if err != nil {
		return err
	}
	err = o.repo.PushContext(ctx, &git.PushOptions{
		RemoteName: "origin", Auth: auth, RefSpecs: specs, Force: true,
		CABundle: o.a.opts.CAPEM, ProxyOptions: o.proxy(),
	})
	if err != nil && !errors.Is(err, git.NoErrAlreadyUpToDate) {
		return cleanGitErr(err)
	}
	return nil
}

// moveSyncTag points the sync tag at rev (state "git") or records rev on
// the deploy-key Secret (state "secret").
func (o *operator) moveSyncTag(ctx context.Context, rev plumbing.Hash) error {
	if rev == o.tagRev {
		return nil
	}
	if o.p.SyncState == "secret" {
		// Patched when the revision changes (pkg/sync/secret.go via
		// loop.go, lastKnownSyncState.Update).
		if err := o.client.annotateSecret(ctx, secretName(o.spec.OperatorInstanceName), "flux.weave.works/sync-hwm", rev.String()); err != nil {
			return err
		}
		o.tagRev = rev
		return nil
	}
	name := plumbing.NewTagReferenceName(o.p.SyncTag)
	_ = o.repo.DeleteTag(o.p.SyncTag)
	if _, err := o.repo.CreateTag(o.p.SyncTag, rev, &git.CreateTagOptions{
		Tagger:  &object.Signature{Name: o.p.User, Email: o.p.Email, When: o.a.clk.Now()},
		Message: "Sync pointer",
	}); err != nil {
		return err
	}
	if err := o.push(ctx, gitconfig.RefSpec("+"+name+":"+name)); err != nil {
		return fmt.Errorf("moving tag %s: %v", o.p.SyncTag, err)
	}
	o.tagRev = rev
	return nil
}

// cleanGitErr drops go-git's noise but keeps the cause.
func cleanGitErr(err error) error {
	msg := err.Error()
	msg = strings.TrimSpace(strings.ReplaceAll(msg, "\n", " "))
	return errors.New(msg)
}

// safeURL drops credentials from a URL for messages.
func safeURL(u string) string {
	if i := strings.Index(u, "://"); i >= 0 {
		rest := u[i+3:]
		if at := strings.Index(rest, "@"); at >= 0 && at < strings.IndexAny(rest+"/", "/") {
			user, _, hasPass := strings.Cut(rest[:at], ":")
			if hasPass {
				return u[:i+3] + user + "@" + rest[at+1:]
			}
		}
	}
	return u
}
