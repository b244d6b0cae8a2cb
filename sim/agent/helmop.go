package agent

import (
	"bytes"
	"context"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/go-git/go-git/v5"
	"helm.sh/helm/v3/pkg/action"
	"helm.sh/helm/v3/pkg/chart"
	"helm.sh/helm/v3/pkg/kube"
	"helm.sh/helm/v3/pkg/release"
	"helm.sh/helm/v3/pkg/storage/driver"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/yaml"

	"github.com/gitopsim/gitopsim/sim/clock"
)

// HelmReleaseGVR is helm.fluxcd.io/v1 HelmRelease.
var HelmReleaseGVR = schema.GroupVersionResource{Group: "helm.fluxcd.io", Version: "v1", Resource: "helmreleases"}

// HelmRelease phases (spec §4.7) that the simulated operator sets.
const (
	PhaseChartFetched     = "ChartFetched"
	PhaseChartFetchFailed = "ChartFetchFailed"
	PhaseInstalling       = "Installing"
	PhaseUpgrading        = "Upgrading"
	PhaseDeployFailed     = "DeployFailed"
	PhaseSucceeded        = "Succeeded"
	PhaseFailed           = "Failed"
	PhaseRolledBack       = "RolledBack"
	PhaseRollbackFailed   = "RollbackFailed"
)

// helmOperator is one configuration's simulated helm-operator: every
// charts-sync interval (and right after fluxd applied something) it
// reconciles the HelmReleases its fluxd applied, acting as fluxd's
// ServiceAccount and confined to the same namespace.
type helmOperator struct {
	a    *Agent
	o    *operator
	hs   helmSettings
	log  *slog.Logger
	rest *rest.Config
	kube kubernetes.Interface
	http *http.Client

	mu         sync.Mutex // held for a whole run
	timer      clock.Timer
	kickTimer  clock.Timer
	stopped    bool
	charts     map[string]*chart.Chart    // repository charts: immutable, cached
	gitRepos   map[string]*git.Repository // git chart sources by URL, fetched again each run
	mem        map[string]*hrMemory
	lastStatus map[string]string

	stMu     sync.Mutex
	failures map[string]string // ns/name → what is wrong, for compliance
}

// hrMemory is what the operator remembers of a HelmRelease between runs.
type hrMemory struct {
	// rolledBack is the digest of an upgrade that failed and was rolled
	// back: it is not tried again unless rollback.retry says so.
	rolledBack  string
	rollbackErr error
	retries     int
	// failed is the digest of an upgrade that failed without a roll
	// back; like helm-operator, it is not retried until something changes.
	failed    string
	failedErr error
	// installFailed is the digest of an install that failed (and was
	// removed) at installFailedAt: it is retried a charts-sync interval
	// later, not at every kick, so DeployFailed stays visible.
	installFailed   string
	installFailedAt time.Time
	// waitSince is when a release with wait: true was applied and its
	// resources were not ready yet; zero when not waiting.
	waitSince time.Time
	waitPhase string
	waitFrom  int // revision to roll back to if the wait times out
}

// managedRelease is a release a HelmRelease made, remembered so that it
// can be uninstalled when the HelmRelease goes.
type managedRelease struct {
	name, namespace string
}

func newHelmOperator(o *operator, hs helmSettings) *helmOperator {
	h := &helmOperator{
		a: o.a, o: o, hs: hs, log: o.log.With("operator", "helm"),
		charts: map[string]*chart.Chart{}, gitRepos: map[string]*git.Repository{}, mem: map[string]*hrMemory{}, lastStatus: map[string]string{}, failures: map[string]string{},
	}
	h.rest = o.client.restConfig()
	h.kube = kubernetes.NewForConfigOrDie(h.rest)
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(o.a.opts.CAPEM)
	// Chart repositories are reached like git remotes: through the
	// cluster's outbound link, trusting the gitopsim CA.
	h.http = &http.Client{Timeout: 30 * time.Second, Transport: o.a.gitLink.HTTPTransport(&http.Transport{
		TLSClientConfig: &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12},
	})}
	return h
}

func (h *helmOperator) start() {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.timer = h.a.clk.AfterFunc(0, h.run)
}

func (h *helmOperator) stop() {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.stopped = true
	for _, t := range []clock.Timer{h.timer, h.kickTimer} {
		if t != nil {
			t.Stop()
		}
	}
}

// kick asks for a run now: fluxd applied manifests, and the real operator
// would see HelmRelease changes through its informer at once.
func (h *helmOperator) kick() {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.stopped {
		return
	}
	if h.kickTimer != nil {
		h.kickTimer.Stop()
	}
	h.kickTimer = h.a.clk.AfterFunc(0, h.run)
}

func (h *helmOperator) run() {
	h.mu.Lock()
	if h.stopped {
		h.mu.Unlock()
		return
	}
	ctx, cancel := context.WithTimeout(h.a.ctx, 5*time.Minute)
	changed := h.syncAll(ctx)
	cancel()
	if h.timer != nil {
		h.timer.Stop()
	}
	next := h.hs.chartsSync
	if h.waiting() {
		// --status-update-interval: releases waiting for readiness are
		// looked at more often than charts are synced.
		next = min(next, 10*time.Second)
	}
	h.timer = h.a.clk.AfterFunc(next, h.run)
	h.mu.Unlock()
	if changed {
		h.a.statusChanged(h.o.name)
	}
}

func (h *helmOperator) waiting() bool {
	for _, m := range h.mem {
		if !m.waitSince.IsZero() {
			return true
		}
	}
	return false
}

// failureSummary lists failing HelmReleases for the compliance message,
// sorted, or "".
func (h *helmOperator) failureSummary() string {
	h.stMu.Lock()
	defer h.stMu.Unlock()
	if len(h.failures) == 0 {
		return ""
	}
	keys := make([]string, 0, len(h.failures))
	for k := range h.failures {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	parts := make([]string, 0, len(keys))
	for _, k := range keys {
		parts = append(parts, fmt.Sprintf("helmrelease %s: %s", k, h.failures[k]))
	}
	return strings.Join(parts, "; ")
}

func (h *helmOperator) setFailure(key, msg string) bool {
	h.stMu.Lock()
	defer h.stMu.Unlock()
	if h.failures[key] == msg {
		return false
	}
	if msg == "" {
		delete(h.failures, key)
	} else {
		h.failures[key] = msg
	}
	return true
}

// syncAll reconciles every HelmRelease of this operator and uninstalls
// the releases of those that are gone; it reports whether the compliance
// summary changed.
func (h *helmOperator) syncAll(ctx context.Context) bool {
	namespaces := []string{metav1.NamespaceAll}
	if h.hs.allowNamespace != "" {
		namespaces = []string{h.hs.allowNamespace}
	}
	syncSet := h.o.syncSetName()
	present := map[string]bool{}
	changed := false
	for _, ns := range namespaces {
		list, err := h.o.client.dyn.Resource(HelmReleaseGVR).Namespace(ns).List(ctx, metav1.ListOptions{})
		if err != nil {
			if !apierrors.IsNotFound(err) {
				h.log.Warn("list HelmReleases", "namespace", ns, "err", err)
			}
			return false // keep what we know: an unreadable list is not "all deleted"
		}
		for i := range list.Items {
			hr := &list.Items[i]
			key := hr.GetNamespace() + "/" + hr.GetName()
			present[key] = true
			// Only what this operator's fluxd applied: several simulated
			// clusters may share one API server.
			if hr.GetLabels()[LabelGCMark] != gcMark(syncSet, resourceID(hr.GetNamespace(), "HelmRelease", hr.GetName())) {
				continue
			}
			if hr.GetDeletionTimestamp() != nil {
				continue
			}
			msg := h.reconcile(ctx, hr)
			changed = h.setFailure(key, msg) || changed
		}
	}
	for key, m := range h.a.managedReleases(h.o.name) {
		if present[key] {
			continue
		}
		h.uninstall(key, m)
		h.a.forgetRelease(h.o.name, key)
		delete(h.mem, key)
		delete(h.lastStatus, key)
		changed = h.setFailure(key, "") || changed
	}
	return changed
}

// hrSpec is the part of a HelmRelease spec the operator reads.
type hrSpec struct {
	HelmVersion     string         `json:"helmVersion"`
	ReleaseName     string         `json:"releaseName"`
	TargetNamespace string         `json:"targetNamespace"`
	MaxHistory      *int           `json:"maxHistory"`
	Timeout         *int64         `json:"timeout"`
	ResetValues     *bool          `json:"resetValues"`
	SkipCRDs        bool           `json:"skipCRDs"`
	Wait            bool           `json:"wait"`
	ForceUpgrade    bool           `json:"forceUpgrade"`
	DisableOpenAPI  bool           `json:"disableOpenAPIValidation"`
	Values          map[string]any `json:"values"`
	ValuesFrom      []valuesFrom   `json:"valuesFrom"`
	Chart           struct {
		Git        string `json:"git"`
		Ref        string `json:"ref"`
		Path       string `json:"path"`
		Repository string `json:"repository"`
		Name       string `json:"name"`
		Version    string `json:"version"`
	} `json:"chart"`
	Rollback struct {
		Enable       bool   `json:"enable"`
		Retry        bool   `json:"retry"`
		MaxRetries   *int   `json:"maxRetries"`
		Force        bool   `json:"force"`
		Recreate     bool   `json:"recreate"`
		DisableHooks bool   `json:"disableHooks"`
		Timeout      *int64 `json:"timeout"`
	} `json:"rollback"`
}

type keyRef struct {
	Name      string `json:"name"`
	Namespace string `json:"namespace"`
	Key       string `json:"key"`
	Optional  bool   `json:"optional"`
}

type valuesFrom struct {
	ConfigMapKeyRef   *keyRef `json:"configMapKeyRef"`
	SecretKeyRef      *keyRef `json:"secretKeyRef"`
	ExternalSourceRef *struct {
		URL      string `json:"url"`
		Optional bool   `json:"optional"`
	} `json:"externalSourceRef"`
	ChartFileRef *struct {
		Path     string `json:"path"`
		Optional bool   `json:"optional"`
	} `json:"chartFileRef"`
}

// outcome is the status one reconcile leaves on a HelmRelease.
type outcome struct {
	phase, revision, lastAttempted string
	err                            error
	rel                            *release.Release
	// didRollback is set on the run that rolled back (it counts).
	didRollback bool
}

// reconcile brings one HelmRelease's release to its spec and writes its
// status; it returns the failure for compliance, or "".
func (h *helmOperator) reconcile(ctx context.Context, hr *unstructured.Unstructured) string {
	key := hr.GetNamespace() + "/" + hr.GetName()
	var sp hrSpec
	raw, _ := json.Marshal(hr.Object["spec"])
	if err := json.Unmarshal(raw, &sp); err != nil {
		return h.writeStatus(ctx, hr, "", "", outcome{phase: PhaseFailed, err: fmt.Errorf("invalid spec: %w", err)})
	}
	target := sp.TargetNamespace
	if target == "" {
		target = hr.GetNamespace()
	}
	name := sp.ReleaseName
	if name == "" {
		// Spec §4.7: <ns>-<name>, or <ns>-<targetNs>-<name> when the
		// target differs.
		name = hr.GetNamespace() + "-" + hr.GetName()
		if target != hr.GetNamespace() {
			name = hr.GetNamespace() + "-" + target + "-" + hr.GetName()
		}
	}
	m := h.mem[key]
	if m == nil {
		m = &hrMemory{}
		h.mem[key] = m
	}
	out := h.release(ctx, hr, &sp, name, target, m)
	if out.rel != nil {
		h.a.rememberRelease(h.o.name, key, managedRelease{name: name, namespace: target})
	}
	return h.writeStatus(ctx, hr, name, target, out)
}

// release is helm-operator's sync run for one HelmRelease: fetch the
// chart, compose values, then install, upgrade (and roll back), or
// nothing when the release already matches.
func (h *helmOperator) release(ctx context.Context, hr *unstructured.Unstructured, sp *hrSpec, name, target string, m *hrMemory) outcome {
	version := sp.HelmVersion
	if version == "" {
		version = h.hs.versions[0]
	}
	if !slices.Contains(h.hs.versions, version) {
		return outcome{phase: PhaseFailed, err: fmt.Errorf("no client found for Helm '%s' (enabled: %s)", version, strings.Join(h.hs.versions, ","))}
	}
	if version != "v3" {
		return outcome{phase: PhaseFailed, err: fmt.Errorf("helm %s needs Tiller, which gitopsim does not simulate; set spec.helmVersion: v3", version)}
	}
	ch, revision, err := h.fetchChart(ctx, hr, sp)
	if err != nil {
		return outcome{phase: PhaseChartFetchFailed, err: fmt.Errorf("failed to prepare chart for release: %w", err)}
	}
	vals, err := h.composeValues(ctx, hr, sp, ch)
	if err != nil {
		return outcome{phase: PhaseFailed, revision: revision, err: fmt.Errorf("failed to compose values for release: %w", err)}
	}
	cfg, err := h.a.helmConfig(h.rest, target)
	if err != nil {
		return outcome{phase: PhaseFailed, err: err}
	}
	timeout := seconds(sp.Timeout)
	maxHistory := 10
	if sp.MaxHistory != nil {
		maxHistory = *sp.MaxHistory
	}
	digest := releaseDigest(ch, vals)
	out := outcome{revision: revision, lastAttempted: revision}

	if !m.waitSince.IsZero() {
		return h.checkWait(ctx, cfg, sp, name, m, out, digest)
	}
	cur, err := cfg.Releases.Last(name)
	switch {
	case errors.Is(err, driver.ErrReleaseNotFound) && m.installFailed == digest && h.a.clk.Since(m.installFailedAt) < h.hs.chartsSync:
		out.phase, out.err = PhaseDeployFailed, m.failedErr
		return out
	case errors.Is(err, driver.ErrReleaseNotFound):
		in := action.NewInstall(cfg)
		in.ReleaseName, in.Namespace, in.Timeout = name, target, timeout
		in.SkipCRDs, in.DisableOpenAPIValidation = sp.SkipCRDs, sp.DisableOpenAPI
		in.Description = "Install complete (helm-operator, simulated)"
		rel, err := in.RunWithContext(ctx, cloneChart(ch), vals)
		if err != nil {
			out.phase, out.err = PhaseDeployFailed, fmt.Errorf("installation failed: %w", err)
			m.installFailed, m.installFailedAt, m.failedErr = digest, h.a.clk.Now(), out.err
			// helm-operator removes a failed install so the next sync
			// starts clean.
			if _, lerr := cfg.Releases.Last(name); lerr == nil {
				_, _ = action.NewUninstall(cfg).Run(name)
			}
			return out
		}
		out.rel = rel
		return h.afterApply(ctx, cfg, sp, m, out, PhaseInstalling, 0, digest)
	case err != nil:
		out.phase, out.err = PhaseFailed, fmt.Errorf("failed to determine sync action for release: failed to retrieve Helm release: %w", err)
		return out
	}
	out.rel = cur
	if cur.Info.Status.IsPending() {
		out.phase, out.err = PhaseFailed, fmt.Errorf("failed to determine sync action for release: status '%s' of release does not allow a safe upgrade", cur.Info.Status)
		return out
	}
	if releaseDigest(cur.Chart, cur.Config) == digest && cur.Info.Status == release.StatusDeployed {
		out.phase = PhaseSucceeded
		if m.rolledBack != "" {
			out.phase, out.err = PhaseRolledBack, m.rollbackErr
		}
		return out
	}
	if m.failed == digest {
		out.phase, out.err = PhaseDeployFailed, m.failedErr
		return out
	}
	if m.rolledBack == digest {
		maxRetries := 5
		if sp.Rollback.MaxRetries != nil {
			maxRetries = *sp.Rollback.MaxRetries
		}
		if !sp.Rollback.Retry || (maxRetries > 0 && m.retries >= maxRetries) {
			out.phase, out.err = PhaseRolledBack, m.rollbackErr
			return out
		}
		m.retries++
	} else {
		m.rolledBack, m.rollbackErr, m.retries = "", nil, 0
	}
	up := action.NewUpgrade(cfg)
	up.Namespace, up.Timeout, up.MaxHistory = target, timeout, maxHistory
	up.ResetValues = sp.ResetValues == nil || *sp.ResetValues
	up.Force, up.SkipCRDs, up.DisableOpenAPIValidation = sp.ForceUpgrade, sp.SkipCRDs, sp.DisableOpenAPI
	up.Description = "Upgrade complete (helm-operator, simulated)"
	rel, err := up.RunWithContext(ctx, name, cloneChart(ch), vals)
	if err != nil {
		out.phase, out.err = PhaseDeployFailed, fmt.Errorf("upgrade failed: %w", err)
		return h.rollback(cfg, sp, name, cur.Version, digest, m, out)
	}
	out.rel = rel
	return h.afterApply(ctx, cfg, sp, m, out, PhaseUpgrading, cur.Version, digest)
}

// afterApply finishes an install or upgrade: done, or, with wait, the
// start of a wait for the release's resources on the simulation clock.
func (h *helmOperator) afterApply(ctx context.Context, cfg *action.Configuration, sp *hrSpec, m *hrMemory, out outcome, phase string, from int, digest string) outcome {
	m.rolledBack, m.rollbackErr, m.retries, m.failed, m.failedErr, m.installFailed = "", nil, 0, "", nil, ""
	if !sp.Wait {
		out.phase = PhaseSucceeded
		return out
	}
	m.waitSince, m.waitPhase, m.waitFrom = h.a.clk.Now(), phase, from
	return h.checkWait(ctx, cfg, sp, out.rel.Name, m, out, digest)
}

// checkWait is helm --wait on the simulation clock: the release stays
// Installing/Upgrading until its resources are ready, and fails with
// Helm's words once timeout has passed.
func (h *helmOperator) checkWait(ctx context.Context, cfg *action.Configuration, sp *hrSpec, name string, m *hrMemory, out outcome, digest string) outcome {
	rel, err := cfg.Releases.Last(name)
	if err != nil {
		m.waitSince = time.Time{}
		out.phase, out.err = PhaseFailed, fmt.Errorf("failed to retrieve Helm release: %w", err)
		return out
	}
	out.rel = rel
	ready, err := h.resourcesReady(ctx, cfg, rel)
	switch {
	case err == nil && ready:
		m.waitSince = time.Time{}
		out.phase = PhaseSucceeded
		return out
	case h.a.clk.Since(m.waitSince) < seconds(sp.Timeout):
		out.phase = m.waitPhase
		return out
	}
	m.waitSince = time.Time{}
	rel.SetStatus(release.StatusFailed, "Release \""+name+"\" failed: timed out waiting for the condition")
	if err := cfg.Releases.Update(rel); err != nil {
		h.log.Warn("mark release failed", "release", name, "err", err)
	}
	verb := "installation failed"
	if m.waitPhase == PhaseUpgrading {
		verb = "upgrade failed"
	}
	out.phase, out.err = PhaseDeployFailed, fmt.Errorf("%s: timed out waiting for the condition", verb)
	if m.waitPhase == PhaseUpgrading {
		return h.rollback(cfg, sp, name, m.waitFrom, digest, m, out)
	}
	// A failed install is removed, as when Helm itself fails it.
	if _, err := action.NewUninstall(cfg).Run(name); err != nil {
		h.log.Warn("remove failed install", "release", name, "err", err)
	}
	m.installFailed, m.installFailedAt, m.failedErr = digest, h.a.clk.Now(), out.err
	// The status shows the failed release that was removed.
	out.rel = rel
	return out
}

// resourcesReady asks Helm's own readiness checker about every resource
// of rel.
func (h *helmOperator) resourcesReady(ctx context.Context, cfg *action.Configuration, rel *release.Release) (bool, error) {
	kc, ok := cfg.KubeClient.(*kube.Client)
	if !ok {
		return true, nil
	}
	res, err := kc.Build(bytes.NewBufferString(rel.Manifest), false)
	if err != nil {
		return false, err
	}
	rc := kube.NewReadyChecker(h.kube, func(string, ...any) {}, kube.PausedAsReady(true), kube.CheckJobs(true))
	for _, info := range res {
		ready, err := rc.IsReady(ctx, info)
		if err != nil || !ready {
			return false, err
		}
	}
	return true, nil
}

// rollback runs after a failed upgrade when rollback.enable is set and
// the failed upgrade made a new revision.
func (h *helmOperator) rollback(cfg *action.Configuration, sp *hrSpec, name string, from int, digest string, m *hrMemory, out outcome) outcome {
	latest, err := cfg.Releases.Last(name)
	if !sp.Rollback.Enable || err != nil || latest.Version <= from {
		m.failed, m.failedErr = digest, out.err
		if err == nil {
			out.rel = latest
		}
		return out
	}
	rb := action.NewRollback(cfg)
	rb.Version, rb.Force, rb.Recreate, rb.DisableHooks = from, sp.Rollback.Force, sp.Rollback.Recreate, sp.Rollback.DisableHooks
	rb.Timeout = seconds(sp.Rollback.Timeout)
	if err := rb.Run(name); err != nil {
		out.phase, out.err = PhaseRollbackFailed, fmt.Errorf("%v; rollback failed: %w", out.err, err)
		return out
	}
	m.rolledBack, m.rollbackErr = digest, out.err
	if rel, err := cfg.Releases.Last(name); err == nil {
		out.rel = rel
	}
	out.phase, out.didRollback = PhaseRolledBack, true
	return out
}

// uninstall removes the release of a HelmRelease that was deleted.
func (h *helmOperator) uninstall(key string, m managedRelease) {
	cfg, err := h.a.helmConfig(h.rest, m.namespace)
	if err == nil {
		_, err = action.NewUninstall(cfg).Run(m.name)
	}
	if err != nil && !errors.Is(err, driver.ErrReleaseNotFound) {
		h.a.event(h.o.name, "HelmUninstallFailed", "configuration %s: helmrelease %s: uninstall of release %s failed: %v", h.o.name, key, m.name, err)
		return
	}
	h.a.event(h.o.name, "HelmReleaseUninstalled", "configuration %s: helmrelease %s deleted: release %s in %s uninstalled", h.o.name, key, m.name, m.namespace)
}

// writeStatus records out on the HelmRelease (only when it changed) and
// returns the compliance failure text, or "".
func (h *helmOperator) writeStatus(ctx context.Context, hr *unstructured.Unstructured, name, target string, out outcome) string {
	key := hr.GetNamespace() + "/" + hr.GetName()
	old, _, _ := unstructured.NestedMap(hr.Object, "status")
	st := map[string]any{"observedGeneration": hr.GetGeneration(), "phase": out.phase}
	if name != "" {
		st["releaseName"] = name
	}
	if out.rel != nil {
		st["releaseStatus"] = out.rel.Info.Status.String()
	} else if v, ok := old["releaseStatus"]; ok && out.err != nil {
		st["releaseStatus"] = v
	}
	if out.lastAttempted != "" {
		st["lastAttemptedRevision"] = out.lastAttempted
	}
	if out.phase == PhaseSucceeded {
		st["revision"] = out.revision
	} else if v, ok := old["revision"]; ok {
		st["revision"] = v
	}
	rollbacks, _, _ := unstructured.NestedInt64(hr.Object, "status", "rollbackCount")
	where := fmt.Sprintf("Helm release '%s' in '%s'", name, target)
	var cond, also map[string]any
	switch out.phase {
	case PhaseSucceeded:
		cond = condition("Released", "True", out.phase, "Release was successful for "+where+".")
		rollbacks = 0
	case PhaseInstalling:
		cond = condition("Released", "Unknown", out.phase, "Running installation for "+where+"; waiting for its resources to be ready.")
	case PhaseUpgrading:
		cond = condition("Released", "Unknown", out.phase, "Running upgrade for "+where+"; waiting for its resources to be ready.")
	case PhaseChartFetchFailed:
		cond = condition("ChartFetched", "False", out.phase, fmt.Sprintf("Chart fetch failed for %s: %v", where, out.err))
	case PhaseRolledBack:
		cond = condition("RolledBack", "True", out.phase, "Rolled back "+where+".")
		if out.err != nil {
			// The upgrade that failed stays visible next to the roll back.
			also = condition("Released", "False", PhaseDeployFailed, fmt.Sprintf("Release failed for %s: %v", where, out.err))
		}
	case PhaseRollbackFailed:
		cond = condition("RolledBack", "False", out.phase, fmt.Sprintf("Rollback failed for %s: %v", where, out.err))
	default: // DeployFailed, Failed
		cond = condition("Released", "False", out.phase, fmt.Sprintf("Release failed for %s: %v", where, out.err))
	}
	if out.didRollback {
		rollbacks++
	}
	st["rollbackCount"] = rollbacks
	set := []map[string]any{cond}
	if also != nil {
		set = append(set, also)
	}
	var conds []any
	oldConds, _, _ := unstructured.NestedSlice(hr.Object, "status", "conditions")
	for _, c := range oldConds {
		cm, _ := c.(map[string]any)
		replaced := false
		for _, n := range set {
			if cm["type"] == n["type"] {
				if cm["status"] == n["status"] {
					n["lastTransitionTime"] = cm["lastTransitionTime"]
				}
				replaced = true
			}
		}
		if replaced {
			continue
		}
		// A successful release clears an earlier roll back, as
		// helm-operator does.
		if out.phase == PhaseSucceeded && cm["type"] == "RolledBack" {
			continue
		}
		if cond["type"] != "ChartFetched" && cm["type"] == "ChartFetched" {
			continue
		}
		conds = append(conds, cm)
	}
	if out.phase != PhaseChartFetchFailed {
		conds = append(conds, condition("ChartFetched", "True", PhaseChartFetched, "Chart fetch was successful for "+where+"."))
	}
	for _, n := range set {
		conds = append(conds, n)
	}
	slices.SortFunc(conds, func(a, b any) int {
		return strings.Compare(fmt.Sprint(a.(map[string]any)["type"]), fmt.Sprint(b.(map[string]any)["type"]))
	})
	// Compare without timestamps: a virtual run syncs thousands of times.
	fingerprint, _ := json.Marshal(map[string]any{"st": st, "conds": stripTimes(conds)})
	failure := ""
	if out.err != nil {
		failure = out.phase + ": " + out.err.Error()
	}
	if h.lastStatus[key] == string(fingerprint) {
		return failure
	}
	now := h.a.clk.Now().UTC().Format(time.RFC3339)
	for _, c := range conds {
		cm := c.(map[string]any)
		cm["lastUpdateTime"] = now
		if cm["lastTransitionTime"] == nil {
			cm["lastTransitionTime"] = now
		}
	}
	st["conditions"] = conds
	patch, _ := json.Marshal(map[string]any{"status": st})
	_, err := h.o.client.dyn.Resource(HelmReleaseGVR).Namespace(hr.GetNamespace()).Patch(ctx, hr.GetName(), types.MergePatchType, patch, metav1.PatchOptions{FieldManager: "helm-operator"}, "status")
	if err != nil {
		h.log.Warn("update HelmRelease status", "helmrelease", key, "err", err)
		return failure
	}
	h.lastStatus[key] = string(fingerprint)
	reason := "HelmReleaseSynced"
	msg := fmt.Sprintf("configuration %s: helmrelease %s: %s", h.o.name, key, out.phase)
	if out.rel != nil {
		msg += fmt.Sprintf(" (release %s revision %d, %s)", out.rel.Name, out.rel.Version, out.rel.Info.Status)
	}
	if out.err != nil {
		reason = "HelmReleaseFailed"
		msg += ": " + out.err.Error()
	}
	h.a.event(h.o.name, reason, "%s", msg)
	return failure
}

// seconds is a HelmRelease timeout field: seconds, default 300.
func seconds(s *int64) time.Duration {
	if s == nil {
		return 300 * time.Second
	}
	return time.Duration(*s) * time.Second
}

func condition(typ, status, reason, msg string) map[string]any {
	return map[string]any{"type": typ, "status": status, "reason": reason, "message": msg}
}

func stripTimes(conds []any) []any {
	out := make([]any, 0, len(conds))
	for _, c := range conds {
		cm := c.(map[string]any)
		out = append(out, []any{cm["type"], cm["status"], cm["reason"], cm["message"]})
	}
	return out
}

// releaseDigest identifies what a release was made from: the chart's
// content and the user-supplied values.
func releaseDigest(ch *chart.Chart, vals map[string]any) string {
	h := sha256.New()
	var walk func(c *chart.Chart)
	walk = func(c *chart.Chart) {
		md, _ := json.Marshal(c.Metadata)
		h.Write(md)
		for _, fs := range [][]*chart.File{c.Templates, c.Files} {
			for _, f := range fs {
				h.Write([]byte(f.Name))
				h.Write(f.Data)
			}
		}
		v, _ := json.Marshal(c.Values)
		h.Write(v)
		for _, d := range c.Dependencies() {
			walk(d)
		}
	}
	walk(ch)
	v, _ := json.Marshal(vals)
	h.Write(v)
	return hex.EncodeToString(h.Sum(nil))
}

// composeValues merges valuesFrom in order, then spec.values on top.
func (h *helmOperator) composeValues(ctx context.Context, hr *unstructured.Unstructured, sp *hrSpec, ch *chart.Chart) (map[string]any, error) {
	vals := map[string]any{}
	for i, vf := range sp.ValuesFrom {
		var (
			data     []byte
			optional bool
			err      error
		)
		switch {
		case vf.ConfigMapKeyRef != nil:
			data, optional, err = h.keyRef(ctx, hr.GetNamespace(), "configmap", vf.ConfigMapKeyRef)
		case vf.SecretKeyRef != nil:
			data, optional, err = h.keyRef(ctx, hr.GetNamespace(), "secret", vf.SecretKeyRef)
		case vf.ChartFileRef != nil:
			optional = vf.ChartFileRef.Optional
			err = fmt.Errorf("chart file '%s' not found", vf.ChartFileRef.Path)
			for _, f := range ch.Raw {
				if f.Name == vf.ChartFileRef.Path {
					data, err = f.Data, nil
				}
			}
		case vf.ExternalSourceRef != nil:
			optional = vf.ExternalSourceRef.Optional
			data, err = h.get(ctx, vf.ExternalSourceRef.URL)
		default:
			return nil, fmt.Errorf("valuesFrom[%d] names no source", i)
		}
		if err != nil {
			if optional {
				continue
			}
			return nil, err
		}
		var v map[string]any
		if err := yaml.Unmarshal(data, &v); err != nil {
			return nil, fmt.Errorf("valuesFrom[%d]: unable to yaml.Unmarshal: %w", i, err)
		}
		vals = mergeValues(vals, v)
	}
	return mergeValues(vals, sp.Values), nil
}

// keyRef reads a ConfigMap or Secret key (default values.yaml) as the
// operator's ServiceAccount.
func (h *helmOperator) keyRef(ctx context.Context, ns, kind string, ref *keyRef) ([]byte, bool, error) {
	if ref.Namespace != "" {
		ns = ref.Namespace
	}
	key := ref.Key
	if key == "" {
		key = "values.yaml"
	}
	var data []byte
	var found bool
	var err error
	if kind == "configmap" {
		cm, gerr := h.kube.CoreV1().ConfigMaps(ns).Get(ctx, ref.Name, metav1.GetOptions{})
		if err = gerr; err == nil {
			var s string
			s, found = cm.Data[key]
			data = []byte(s)
		}
	} else {
		sec, gerr := h.kube.CoreV1().Secrets(ns).Get(ctx, ref.Name, metav1.GetOptions{})
		if err = gerr; err == nil {
			data, found = sec.Data[key]
		}
	}
	switch {
	case apierrors.IsNotFound(err):
		return nil, ref.Optional, fmt.Errorf("could not find %s '%s/%s'", kind, ns, ref.Name)
	case err != nil:
		return nil, false, err
	case !found:
		return nil, ref.Optional, fmt.Errorf("could not find key %s in %s '%s/%s'", key, kind, ns, ref.Name)
	}
	return data, ref.Optional, nil
}

// get fetches a URL through the cluster's outbound link.
func (h *helmOperator) get(ctx context.Context, url string) ([]byte, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return nil, err
	}
	resp, err := h.http.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("failed to fetch %s : %s", url, resp.Status)
	}
	return io.ReadAll(io.LimitReader(resp.Body, 64<<20))
}

func (a *Agent) managedReleases(config string) map[string]managedRelease {
	a.mu.Lock()
	defer a.mu.Unlock()
	out := make(map[string]managedRelease, len(a.helmReleases[config]))
	for k, v := range a.helmReleases[config] {
		out[k] = v
	}
	return out
}

func (a *Agent) rememberRelease(config, key string, m managedRelease) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.helmReleases[config] == nil {
		a.helmReleases[config] = map[string]managedRelease{}
	}
	a.helmReleases[config][key] = m
}

func (a *Agent) forgetRelease(config, key string) {
	a.mu.Lock()
	defer a.mu.Unlock()
	delete(a.helmReleases[config], key)
}

// cloneChart copies a chart for a Helm action: Helm rewrites a chart's
// values while it processes dependencies, and the cached original must
// keep describing what the repository serves.
func cloneChart(ch *chart.Chart) *chart.Chart {
	c := *ch
	if b, err := json.Marshal(ch.Values); err == nil {
		var v map[string]any
		if json.Unmarshal(b, &v) == nil {
			c.Values = v
		}
	}
	deps := make([]*chart.Chart, 0, len(ch.Dependencies()))
	for _, d := range ch.Dependencies() {
		deps = append(deps, cloneChart(d))
	}
	c.SetDependencies(deps...)
	return &c
}
