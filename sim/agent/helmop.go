package agent

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"log/slog"
	"net/http"
	"slices"
	"strings"
	"sync"
	"time"

	"helm.sh/helm/v3/pkg/chart"
	"k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"

	"github.com/gitopsim/gitopsim/sim/clock"
)

// HelmReleaseGVR is helm.fluxcd.io/v1 HelmRelease.
var HelmReleaseGVR = schema.GroupVersionResource{Group: "helm.fluxcd.io", Version: "v1", Resource: "helmreleases"}

// HelmRelease phases (helm.fluxcd.io/v1 HelmReleasePhase) that the
// simulated operator sets. ChartFetched, Deployed and RollingBack are
// transient: a sync passes through them on its way to its last phase.
const (
	PhaseChartFetched     = "ChartFetched"
	PhaseChartFetchFailed = "ChartFetchFailed"
	PhaseInstalling       = "Installing"
	PhaseUpgrading        = "Upgrading"
	PhaseDeployed         = "Deployed"
	PhaseDeployFailed     = "DeployFailed"
	PhaseSucceeded        = "Succeeded"
	PhaseFailed           = "Failed"
	PhaseRollingBack      = "RollingBack"
	PhaseRolledBack       = "RolledBack"
	PhaseRollbackFailed   = "RollbackFailed"
)

// AnnAntecedent is the annotation helm-operator puts on every resource of
// a release: the resource ID (<namespace>:helmrelease/<name>) of the
// HelmRelease that made it.
const AnnAntecedent = "helm.fluxcd.io/antecedent"

// Kubernetes Event reasons helm-operator records on a HelmRelease
// (pkg/operator/operator.go).
const (
	EventReleaseSynced     = "ReleaseSynced"
	EventFailedReleaseSync = "FailedReleaseSync"
)

// helmOperator is one configuration's simulated helm-operator. It stands
// for the operator's process: an informer over the HelmReleases in its
// scope, a work queue, the git chart mirrors and the status updater, all
// on the agent's clock, acting with the identity its chart made for it.
//
// Scope follows pkg/operator/operator.go and cmd/helm-operator/main.go:
// every HelmRelease in every namespace, or in the one --allow-namespace,
// whoever applied it. Nothing ties a HelmRelease to the configuration
// whose fluxd applied it, so two configurations that both enable the Helm
// operator on one cluster each run a helm-operator that reconciles the
// same HelmReleases: both sync and upgrade them (racing through Helm's
// "another operation is in progress"), both write their status and both
// record their Events, and deleting one makes both uninstall its release
// (the second finds nothing to uninstall). A namespace-scoped operator
// sees only its namespace. gitopsim does the same: the simulated clusters
// that share one API server are, to the Helm operator, one cluster.
type helmOperator struct {
	a      *Agent
	o      *operator
	hs     helmSettings
	log    *slog.Logger
	rest   *rest.Config
	kube   kubernetes.Interface
	dyn    dynamic.Interface
	http   *http.Client
	events *eventRecorder

	mu         sync.Mutex // held for a whole run
	timer      clock.Timer
	kickTimer  clock.Timer
	stopped    bool
	nextResync time.Time
	nextStatus time.Time
	charts     map[string]*chart.Chart // repository charts: immutable, cached
	mirrors    map[string]*gitMirror   // git chart mirrors by mirror name
	sources    map[string]sourceRef    // GitChartSync's books, by HelmRelease resource ID
	// known is the informer's store: the HelmReleases last listed. It
	// lives in memory only, like the informer's cache: a HelmRelease
	// deleted while the operator was down is never seen deleted, and its
	// release stays (helm-operator has no finalizer).
	known    map[string]*unstructured.Unstructured
	queue    []string
	queued   map[string]bool
	waits    map[string]*syncRun // releases in a simulated helm --wait
	reported map[string]string   // last agent event per HelmRelease

	stMu     sync.Mutex
	failures map[string]string // ns/name → what is wrong, for compliance
}

func newHelmOperator(o *operator, hs helmSettings) *helmOperator {
	h := &helmOperator{
		a: o.a, o: o, hs: hs, log: o.log.With("operator", "helm"),
		charts: map[string]*chart.Chart{}, mirrors: map[string]*gitMirror{}, sources: map[string]sourceRef{},
		known: map[string]*unstructured.Unstructured{}, queued: map[string]bool{}, waits: map[string]*syncRun{},
		reported: map[string]string{}, failures: map[string]string{},
	}
	// The operator acts as the ServiceAccount its chart created (or the
	// one chartValues name), with the rights the chart's RBAC gave it.
	h.rest = newSAClient(o.a, o.spec.OperatorNamespace, hs.serviceAccount).restConfig()
	h.kube = kubernetes.NewForConfigOrDie(h.rest)
	h.dyn = dynamic.NewForConfigOrDie(h.rest)
	h.events = newEventRecorder(h.kube, o.a.clk, "helm-operator", h.log)
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
	if slices.Contains(h.hs.versions, helmV2) {
		// cmd/helm-operator/main.go creates a client per enabled version
		// before it starts anything, and pkg/helm/v2/helm.go:New retries
		// every 20 s until it reaches Tiller: with v2 enabled and no
		// Tiller, no HelmRelease is ever reconciled.
		msg := `helm operator not started: errored creating Helm 2 client: services "tiller-deploy" not found (helm.versions includes v2 and gitopsim has no Tiller; set chartValues --set helm.versions=v3)`
		h.setFailure("", msg)
		h.a.event(h.o.name, "HelmOperatorWaitingForTiller", "configuration %s: %s", h.o.name, msg)
		return
	}
	h.nextStatus = h.a.clk.Now().Add(h.hs.statusUpdate)
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

// kick asks for a run now: fluxd applied manifests, and the real
// operator's informer would see HelmRelease changes at once.
func (h *helmOperator) kick() {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.stopped || h.timer == nil {
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
	now := h.a.clk.Now()
	changed := h.step(ctx, now)
	cancel()
	if h.timer != nil {
		h.timer.Stop()
	}
	h.timer = clock.Again(h.a.clk, h.nextWake(now), h.run)
	h.mu.Unlock()
	if changed {
		h.a.statusChanged(h.o.name)
	}
}

// step is one turn of the operator's goroutines: the informer (list,
// resync every --charts-sync-interval, deletions), the git mirrors, the
// workers and the status updater. It reports whether the compliance
// summary changed.
func (h *helmOperator) step(ctx context.Context, now time.Time) bool {
	resync := !now.Before(h.nextResync)
	if resync {
		h.nextResync = now.Add(h.hs.chartsSync)
	}
	changed := h.observe(ctx, resync)
	h.refreshMirrors(ctx, now)
	changed = h.checkWaits(ctx, now) || changed
	changed = h.work(ctx) || changed
	if !now.Before(h.nextStatus) {
		h.nextStatus = now.Add(h.hs.statusUpdate)
		h.updateReleaseStatuses(ctx)
	}
	return changed
}

// nextWake is when something is due next.
func (h *helmOperator) nextWake(now time.Time) time.Duration {
	next := h.nextResync
	if h.nextStatus.Before(next) {
		next = h.nextStatus
	}
	for _, m := range h.mirrors {
		if m.nextPoll.Before(next) {
			next = m.nextPoll
		}
	}
	for _, r := range h.waits {
		if r.wait.next.Before(next) {
			next = r.wait.next
		}
	}
	for _, key := range h.queue {
		if _, busy := h.waits[key]; !busy {
			next = now // queued by a mirror's signal
		}
	}
	return max(next.Sub(now), 0)
}

// observe lists the HelmReleases in scope and queues what the informer's
// handlers would (operator.go: AddFunc, enqueueUpdateJob, DeleteFunc).
func (h *helmOperator) observe(ctx context.Context, resync bool) bool {
	list, err := h.dyn.Resource(HelmReleaseGVR).Namespace(h.hs.allowNamespace).List(ctx, metav1.ListOptions{})
	if err != nil {
		if !apierrors.IsNotFound(err) {
			h.log.Warn("list HelmReleases", "namespace", h.hs.allowNamespace, "err", err)
		}
		return false // the informer keeps its cache: an unreadable list is not "all deleted"
	}
	present := map[string]bool{}
	for i := range list.Items {
		hr := &list.Items[i]
		key := hr.GetNamespace() + "/" + hr.GetName()
		present[key] = true
		old, seen := h.known[key]
		h.known[key] = hr
		switch {
		case !seen, resync:
			h.enqueue(key)
		case old.GetResourceVersion() == hr.GetResourceVersion():
		default:
			// Updates that only touch the status (the operator's own
			// writes) are dropped; any other change is a sync.
			specChanged := !equality.Semantic.DeepEqual(old.Object["spec"], hr.Object["spec"])
			if !specChanged && !equality.Semantic.DeepEqual(old.Object["status"], hr.Object["status"]) {
				continue
			}
			oldChart, _, _ := unstructured.NestedMap(old.Object, "spec", "chart")
			newChart, _, _ := unstructured.NestedMap(hr.Object, "spec", "chart")
			if !equality.Semantic.DeepEqual(oldChart, newChart) {
				// 1.4.x: a changed chart source syncs its mirror first.
				h.syncMirror(ctx, hr)
			}
			h.enqueue(key)
		}
	}
	changed := false
	for key, hr := range h.known {
		if present[key] {
			continue
		}
		delete(h.known, key)
		h.uninstall(ctx, hr)
		changed = h.setFailure(key, "") || changed
	}
	return changed
}

func (h *helmOperator) enqueue(key string) {
	if !h.queued[key] {
		h.queued[key] = true
		h.queue = append(h.queue, key)
	}
}

// work runs the queued syncs, one at a time; a HelmRelease whose release
// is in a wait keeps its place until the wait is over, as the worker that
// holds it does.
func (h *helmOperator) work(ctx context.Context) bool {
	changed := false
	var later []string
	for len(h.queue) > 0 {
		key := h.queue[0]
		h.queue = h.queue[1:]
		if _, busy := h.waits[key]; busy {
			later = append(later, key)
			continue
		}
		delete(h.queued, key)
		hr := h.known[key]
		if hr == nil {
			continue // "no longer exists"
		}
		changed = h.syncHandler(ctx, hr) || changed
	}
	h.queue = later
	return changed
}

// syncHandler is operator.go:syncHandler: sync, then an Event on the
// HelmRelease saying how it went.
func (h *helmOperator) syncHandler(ctx context.Context, hr *unstructured.Unstructured) bool {
	r, err := h.newSyncRun(hr)
	if err != nil {
		// The informer of the real operator could not even decode it.
		h.log.Warn("decode HelmRelease", "helmrelease", hr.GetNamespace()+"/"+hr.GetName(), "err", err)
		return false
	}
	if !r.sync(ctx) {
		h.waits[r.key] = r
		return false
	}
	return h.finish(ctx, r)
}

// finish records the outcome of a sync run that is over.
func (h *helmOperator) finish(ctx context.Context, r *syncRun) bool {
	err := r.err()
	if err != nil {
		h.events.record(ctx, r.live, "Warning", EventFailedReleaseSync,
			fmt.Sprintf("synchronization of release '%s' in namespace '%s' failed: %s", r.name, r.target, err.Error()))
	} else {
		h.events.record(ctx, r.live, "Normal", EventReleaseSynced,
			fmt.Sprintf("managed release '%s' in namespace '%s' synchronized", r.name, r.target))
	}
	phase, _, _ := unstructured.NestedString(r.live.Object, "status", "phase")
	failure := ""
	if err != nil {
		failure = phase + ": " + err.Error()
	}
	// The agent's own timeline (an Arc-side invention): once per change.
	if note := phase + "\x00" + failure; h.reported[r.key] != note {
		h.reported[r.key] = note
		reason, msg := "HelmReleaseSynced", fmt.Sprintf("configuration %s: helmrelease %s: %s (release %s in %s)", h.o.name, r.key, phase, r.name, r.target)
		if err != nil {
			reason, msg = "HelmReleaseFailed", msg+": "+err.Error()
		}
		h.a.event(h.o.name, reason, "%s", msg)
	}
	return h.setFailure(r.key, failure)
}

// uninstall is the informer's DeleteFunc: release.Uninstall of the
// HelmRelease as last seen, whatever its state, without an ownership
// check (pkg/release/release.go:uninstall), and the end of its git chart
// source.
func (h *helmOperator) uninstall(ctx context.Context, hr *unstructured.Unstructured) {
	key := hr.GetNamespace() + "/" + hr.GetName()
	h.queue = slices.DeleteFunc(h.queue, func(k string) bool { return k == key })
	delete(h.queued, key)
	delete(h.waits, key)
	delete(h.reported, key)
	var sp hrSpec
	if err := decodeSpec(hr, &sp); err != nil {
		return
	}
	name, target := releaseName(hr, &sp), targetNamespace(hr, &sp)
	cfg, err := h.a.helmConfig(h.rest, target)
	if err == nil {
		err = uninstallRelease(cfg, name, sp.timeout())
	}
	h.deleteSource(hr)
	if err != nil {
		h.log.Warn("uninstall", "helmrelease", key, "release", name, "err", err)
		h.a.event(h.o.name, "HelmUninstallFailed", "configuration %s: helmrelease %s deleted: uninstall of release %s failed: %v", h.o.name, key, name, err)
		return
	}
	h.a.event(h.o.name, "HelmReleaseUninstalled", "configuration %s: helmrelease %s deleted: release %s in %s uninstalled", h.o.name, key, name, target)
}

// updateReleaseStatuses is status.go:Updater.Loop: every
// --status-update-interval, the Helm status of each HelmRelease's
// release goes to status.releaseName and status.releaseStatus.
func (h *helmOperator) updateReleaseStatuses(ctx context.Context) {
	keys := make([]string, 0, len(h.known))
	for k := range h.known {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	for _, key := range keys {
		hr := h.known[key]
		var sp hrSpec
		if decodeSpec(hr, &sp) != nil || !slices.Contains(h.hs.versions, sp.helmVersion(h.hs.versions[0])) {
			continue
		}
		name, target := releaseName(hr, &sp), targetNamespace(hr, &sp)
		cfg, err := h.a.helmConfig(h.rest, target)
		if err != nil {
			continue
		}
		rel, err := cfg.Releases.Last(name)
		if err != nil {
			continue // "If we are unable to get the status, we do not care why"
		}
		st := rel.Info.Status.String()
		if _, err := h.writeStatus(ctx, hr, func(s *hrStatus) { s.ReleaseName, s.ReleaseStatus = name, st }); err != nil {
			h.log.Debug("update release status", "helmrelease", key, "err", err)
		}
	}
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
		if k == "" {
			parts = append(parts, h.failures[k])
			continue
		}
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
