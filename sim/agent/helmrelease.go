package agent

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"sort"
	"strings"
	"time"

	"helm.sh/helm/v3/pkg/action"
	"helm.sh/helm/v3/pkg/chartutil"
	"helm.sh/helm/v3/pkg/kube"
	"helm.sh/helm/v3/pkg/release"
	"helm.sh/helm/v3/pkg/releaseutil"
	"helm.sh/helm/v3/pkg/storage/driver"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/yaml"
)

// hrSpec is helm.fluxcd.io/v1 HelmReleaseSpec, the fields helm-operator
// reads, with upstream's pointers where "unset" means something.
type hrSpec struct {
	HelmVersion      string                  `json:"helmVersion"`
	Chart            hrChartSource           `json:"chart"`
	ReleaseName      string                  `json:"releaseName"`
	MaxHistory       *int                    `json:"maxHistory"`
	ValueFileSecrets []struct{ Name string } `json:"valueFileSecrets"`
	ValuesFrom       []valuesFrom            `json:"valuesFrom"`
	TargetNamespace  string                  `json:"targetNamespace"`
	Timeout          *int64                  `json:"timeout"`
	ResetValues      *bool                   `json:"resetValues"`
	SkipCRDs         bool                    `json:"skipCRDs"`
	Wait             *bool                   `json:"wait"`
	ForceUpgrade     bool                    `json:"forceUpgrade"`
	Rollback         hrRollback              `json:"rollback"`
	Test             hrTest                  `json:"test"`
	Values           json.RawMessage         `json:"values"`
	DisableOpenAPI   bool                    `json:"disableOpenAPIValidation"`
}

// hrChartSource is ChartSource: a GitChartSource and a RepoChartSource
// inlined.
type hrChartSource struct {
	Git           string     `json:"git"`
	Ref           string     `json:"ref"`
	Path          string     `json:"path"`
	SecretRef     *objectRef `json:"secretRef"`
	SkipDepUpdate bool       `json:"skipDepUpdate"`
	Repository    string     `json:"repository"`
	Name          string     `json:"name"`
	Version       string     `json:"version"`
}

type objectRef struct {
	Name      string `json:"name"`
	Namespace string `json:"namespace"`
}

type hrRollback struct {
	Enable       bool   `json:"enable"`
	Retry        bool   `json:"retry"`
	MaxRetries   *int64 `json:"maxRetries"`
	Force        bool   `json:"force"`
	Recreate     bool   `json:"recreate"`
	DisableHooks bool   `json:"disableHooks"`
	Timeout      *int64 `json:"timeout"`
	Wait         bool   `json:"wait"`
}

type hrTest struct {
	Enable         bool   `json:"enable"`
	IgnoreFailures *bool  `json:"ignoreFailures"`
	Timeout        *int64 `json:"timeout"`
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
		Optional *bool  `json:"optional"`
	} `json:"externalSourceRef"`
	ChartFileRef *struct {
		Path     string `json:"path"`
		Optional *bool  `json:"optional"`
	} `json:"chartFileRef"`
}

func decodeSpec(hr *unstructured.Unstructured, sp *hrSpec) error {
	raw, err := json.Marshal(hr.Object["spec"])
	if err != nil {
		return err
	}
	return json.Unmarshal(raw, sp)
}

// helmVersion is HelmRelease.GetHelmVersion.
func (sp *hrSpec) helmVersion(def string) string {
	if sp.HelmVersion != "" {
		return sp.HelmVersion
	}
	return def
}

// timeout is HelmRelease.GetTimeout: seconds, default 300.
func (sp *hrSpec) timeout() time.Duration { return seconds(sp.Timeout) }

// maxHistory is HelmRelease.GetMaxHistory.
func (sp *hrSpec) maxHistory() int {
	if sp.MaxHistory == nil {
		return 10
	}
	return *sp.MaxHistory
}

// reuseValues is HelmRelease.GetReuseValues: only an explicit
// resetValues: false reuses the previous release's values.
func (sp *hrSpec) reuseValues() bool { return sp.ResetValues != nil && !*sp.ResetValues }

// wait is HelmRelease.GetWait: unset, it is true when rollbacks or tests
// are enabled.
func (sp *hrSpec) wait() bool {
	if sp.Wait == nil {
		return sp.Rollback.Enable || sp.Test.Enable
	}
	return *sp.Wait
}

// maxRetries is Rollback.GetMaxRetries.
func (rb hrRollback) maxRetries() int64 {
	if rb.MaxRetries == nil {
		return 5
	}
	return *rb.MaxRetries
}

// gitSource and repoSource are the two cases of Release.prepareChart.
func (c hrChartSource) gitSource() bool { return c.Git != "" && c.Path != "" }
func (c hrChartSource) repoSource() bool {
	return c.Repository != "" && c.Name != "" && c.Version != ""
}

// values is HelmRelease.GetValues: an object, or nothing.
func (sp *hrSpec) values() map[string]any {
	var v map[string]any
	_ = json.Unmarshal(sp.Values, &v)
	return v
}

// releaseName is HelmRelease.GetReleaseName.
func releaseName(hr *unstructured.Unstructured, sp *hrSpec) string {
	if sp.ReleaseName != "" {
		return sp.ReleaseName
	}
	ns, target := defaultedNamespace(hr), targetNamespace(hr, sp)
	if ns != target {
		return ns + "-" + target + "-" + hr.GetName()
	}
	return target + "-" + hr.GetName()
}

func defaultedNamespace(hr *unstructured.Unstructured) string {
	if hr.GetNamespace() == "" {
		return "default"
	}
	return hr.GetNamespace()
}

// targetNamespace is HelmRelease.GetTargetNamespace.
func targetNamespace(hr *unstructured.Unstructured, sp *hrSpec) string {
	if sp.TargetNamespace == "" {
		return defaultedNamespace(hr)
	}
	return sp.TargetNamespace
}

// hrResourceID is HelmRelease.ResourceID as Flux prints it.
func hrResourceID(hr *unstructured.Unstructured) string {
	return hr.GetNamespace() + ":helmrelease/" + hr.GetName()
}

// seconds is a HelmRelease timeout field: seconds, default 300.
func seconds(s *int64) time.Duration {
	if s == nil {
		return 300 * time.Second
	}
	return time.Duration(*s) * time.Second
}

// syncAction is pkg/release/release.go's action.
type syncAction string

const (
	actInstall   syncAction = "install"
	actUpgrade   syncAction = "upgrade"
	actSkip      syncAction = "skip"
	actRollback  syncAction = "rollback"
	actUninstall syncAction = "uninstall"
	actDryRun    syncAction = "dry-run-compare"
	actAnnotate  syncAction = "annotate"
	actTest      syncAction = "test"
)

// errCollection is pkg/release/errors.go's: the newest error first.
type errCollection []error

func (e errCollection) Error() string {
	var errs []string
	for i := len(e) - 1; i >= 0; i-- {
		errs = append(errs, e[i].Error())
	}
	return strings.Join(errs, ", previous error:")
}

// syncRun is one Release.Sync of one HelmRelease. It holds what
// upstream keeps on its worker's stack, so that a simulated helm --wait
// can suspend it and a later run resume it.
type syncRun struct {
	h    *helmOperator
	key  string
	hr   *unstructured.Unstructured // the informer's copy at the start: HasSynced and friends read it
	live *unstructured.Unstructured // the latest copy this run wrote
	spec hrSpec
	st   hrStatus

	name, target string
	ch           *preparedChart
	values       map[string]any
	cfg          *action.Configuration
	curRel       *release.Release
	newRel       *release.Release
	errs         errCollection
	wait         *helmWait
}

func (h *helmOperator) newSyncRun(hr *unstructured.Unstructured) (*syncRun, error) {
	r := &syncRun{h: h, key: hr.GetNamespace() + "/" + hr.GetName(), hr: hr, live: hr}
	if err := decodeSpec(hr, &r.spec); err != nil {
		return nil, err
	}
	r.st = decodeStatus(hr)
	r.name, r.target = releaseName(hr, &r.spec), targetNamespace(hr, &r.spec)
	return r, nil
}

func (r *syncRun) err() error {
	if len(r.errs) == 0 {
		return nil
	}
	return r.errs
}

// hasSynced is status.HasSynced.
func (r *syncRun) hasSynced() bool { return r.st.ObservedGeneration >= r.hr.GetGeneration() }

// hasRolledBack is status.HasRolledBack.
func (r *syncRun) hasRolledBack() bool {
	if !r.hasSynced() {
		return false
	}
	c := r.st.condition(condRolledBack)
	return c != nil && c.Status == "True"
}

// shouldRetryUpgrade is status.ShouldRetryUpgrade.
func (r *syncRun) shouldRetryUpgrade() bool {
	if !r.spec.Rollback.Retry {
		return false
	}
	return r.spec.Rollback.maxRetries() == 0 || r.st.RollbackCount <= r.spec.Rollback.maxRetries()
}

// sync is Release.Sync up to the first action; it reports false when the
// run waits for a release's resources and is to be resumed.
func (r *syncRun) sync(ctx context.Context) bool {
	h := r.h
	version := r.spec.helmVersion(h.hs.versions[0])
	if !slices.Contains(h.hs.versions, version) {
		r.setPhaseViaTarget(ctx, PhaseFailed)
		// Upstream names the default version, not the one asked for.
		r.errs = append(r.errs, fmt.Errorf("no client found for Helm '%s'", h.hs.versions[0]))
		return true // returns before the deferred SetObservedGeneration
	}
	ch, err := h.prepareChart(ctx, r.hr, &r.spec, r.st.LastAttemptedRevision)
	if err != nil {
		r.setPhase(ctx, PhaseChartFetchFailed)
		r.errs = append(r.errs, fmt.Errorf("failed to prepare chart for release: %w", err))
		return r.done(ctx)
	}
	r.ch = ch
	if ch.changed {
		r.setPhase(ctx, PhaseChartFetched)
	}
	r.values, err = h.composeValues(ctx, r.hr, &r.spec, ch)
	if err != nil {
		r.setPhaseViaTarget(ctx, PhaseFailed)
		r.errs = append(r.errs, fmt.Errorf("failed to compose values for release: %w", err))
		return r.done(ctx)
	}
	r.cfg, err = h.a.helmConfig(h.rest, r.target)
	if err != nil {
		r.setPhaseViaTarget(ctx, PhaseFailed)
		r.errs = append(r.errs, fmt.Errorf("failed to determine sync action for release: %w", err))
		return r.done(ctx)
	}
	act, err := r.determineSyncAction(ctx)
	if err != nil {
		r.setPhaseViaTarget(ctx, PhaseFailed)
		r.errs = append(r.errs, fmt.Errorf("failed to determine sync action for release: %w", err))
		return r.done(ctx)
	}
	return r.run(ctx, act)
}

// done ends a run: Sync's deferred SetObservedGeneration.
func (r *syncRun) done(ctx context.Context) bool {
	gen := r.hr.GetGeneration()
	r.write(ctx, r.hr.GetNamespace(), func(s *hrStatus) {
		if s.ObservedGeneration < gen {
			s.ObservedGeneration = gen
		}
	})
	return true
}

// determineSyncAction is Release.determineSyncAction: the cheapest
// checks first, then a dry-run upgrade compared with the release.
func (r *syncRun) determineSyncAction(ctx context.Context) (syncAction, error) {
	cur, err := action.NewGet(r.cfg).Run(r.name)
	switch {
	case errors.Is(err, driver.ErrReleaseNotFound):
		return actInstall, nil
	case err != nil:
		return actSkip, fmt.Errorf("failed to retrieve Helm release: %w", err)
	}
	r.curRel = cur
	managed, antecedent, err := r.h.managedByHelmRelease(ctx, cur, r.hr)
	if err != nil {
		return actSkip, fmt.Errorf("failed to determine ownership over release: %w", err)
	}
	if !managed {
		return actSkip, fmt.Errorf("release appears to be managed by '%s'", antecedent)
	}
	// pkg/helm/release.go:Status.AllowsUpgrade: only deployed. A failed
	// upgrade stays failed until someone rolls back; no values change and
	// no restart gets past this.
	if s := cur.Info.Status; s != release.StatusDeployed {
		return actSkip, fmt.Errorf("status '%s' of release does not allow a safe upgrade", s.String())
	}
	if !r.hasSynced() {
		return actUpgrade, nil
	}
	if r.hasRolledBack() {
		if r.ch.changed || r.shouldRetryUpgrade() {
			return actUpgrade, nil
		}
		// Compare with the release that failed, so that the same upgrade
		// is not tried again.
		hist, err := action.NewHistory(r.cfg).Run(r.name)
		if err != nil {
			return actSkip, fmt.Errorf("failed to retreive history for rolled back release: %w", err)
		}
		releaseutil.Reverse(hist, releaseutil.SortByRevision)
		hist = hist[:min(len(hist), r.spec.maxHistory())]
		for _, rel := range hist {
			if rel.Info.Status == release.StatusFailed || rel.Info.Status == release.StatusSuperseded {
				r.curRel = rel
				break
			}
		}
	} else if r.ch.changed {
		return actUpgrade, nil
	}
	return actDryRun, nil
}

// run is Release.run: it starts at act and follows the release cycle. It
// returns false when it started a wait; resume continues it.
func (r *syncRun) run(ctx context.Context, act syncAction) bool {
	for {
		next, suspended := r.step(ctx, act)
		if suspended {
			return false
		}
		if next == "" {
			return r.done(ctx)
		}
		act = next
	}
}

// step runs one action and says which comes next ("" for the end).
func (r *syncRun) step(ctx context.Context, act syncAction) (syncAction, bool) {
	h, sp := r.h, &r.spec
	switch act {
	case actDryRun:
		dry, diff, err := r.dryRunCompare(ctx)
		if err != nil {
			r.setPhase(ctx, PhaseFailed)
			r.errs = append(r.errs, fmt.Errorf("dry-run upgrade failed: %w", err))
			return "", false
		}
		r.newRel = dry
		if diff {
			return actUpgrade, false
		}
		if !r.hasRolledBack() {
			r.setPhase(ctx, PhaseSucceeded)
		}
	case actInstall:
		r.setPhaseWithRevision(ctx, PhaseInstalling, r.ch.revision)
		in := action.NewInstall(r.cfg)
		// pkg/helm/v3/upgrade.go:installOptions.configure.
		in.ReleaseName, in.Namespace, in.Timeout = r.name, r.target, sp.timeout()
		in.SkipCRDs, in.DisableOpenAPIValidation = sp.SkipCRDs, sp.DisableOpenAPI
		var rel *release.Release
		err := r.ch.loadErr
		if err == nil {
			rel, err = in.RunWithContext(ctx, cloneChart(r.ch.chart), r.values)
		}
		if err != nil {
			r.setPhase(ctx, PhaseDeployFailed)
			r.errs = append(r.errs, fmt.Errorf("installation failed: %w", err))
			return actUninstall, false
		}
		r.newRel = rel
		if sp.wait() {
			r.startWait(ctx, waitInstall, rel, nil, sp.timeout())
			return "", true
		}
		r.setPhase(ctx, PhaseDeployed)
		return actTest, false
	case actUpgrade:
		r.setPhaseWithRevision(ctx, PhaseUpgrading, r.ch.revision)
		orig, _ := r.cfg.Releases.Deployed(r.name)
		up := r.upgradeAction(false)
		var rel *release.Release
		err := r.ch.loadErr
		if err == nil {
			rel, err = up.RunWithContext(ctx, r.name, cloneChart(r.ch.chart), r.values)
		}
		if err != nil {
			r.setPhase(ctx, PhaseDeployFailed)
			r.errs = append(r.errs, fmt.Errorf("upgrade failed: %w", err))
			return actRollback, false
		}
		r.newRel = rel
		if sp.wait() {
			var before []*release.Release
			if orig != nil {
				before = []*release.Release{orig}
			}
			r.startWait(ctx, waitUpgrade, rel, before, sp.timeout())
			return "", true
		}
		r.setPhase(ctx, PhaseDeployed)
		return actTest, false
	case actTest:
		if sp.Test.Enable {
			// helm test runs test pods and waits for them with Helm's own
			// clock; gitopsim does not simulate it, and says so.
			h.log.Warn("spec.test is not simulated: no helm test ran", "helmrelease", r.key)
			h.a.event(h.o.name, "HelmTestNotSimulated", "configuration %s: helmrelease %s: spec.test.enable is set; gitopsim does not run helm test, the release counts as tested", h.o.name, r.key)
		}
		r.setPhaseWithRevision(ctx, PhaseSucceeded, r.ch.revision)
		return actAnnotate, false
	case actAnnotate:
		if err := h.annotateResources(ctx, r.newRel, hrResourceID(r.hr)); err != nil {
			h.log.Warn("failed to annotate release resources", "helmrelease", r.key, "err", err)
		}
	case actRollback:
		if !sp.Rollback.Enable {
			return "", false
		}
		latest, err := action.NewGet(r.cfg).Run(r.name)
		if err != nil {
			r.errs = append(r.errs, fmt.Errorf("unable to determine if rollback should be performed: %w", err))
			return "", false
		}
		if r.curRel == nil || r.curRel.Version >= latest.Version {
			return "", false
		}
		r.setPhase(ctx, PhaseRollingBack)
		before, _ := r.cfg.Releases.DeployedAll(r.name)
		if err := r.rollbackAction().Run(r.name); err != nil {
			r.setPhase(ctx, PhaseRollbackFailed)
			r.errs = append(r.errs, fmt.Errorf("rollback failed: %w", err))
			return "", false
		}
		rel, err := action.NewGet(r.cfg).Run(r.name)
		if err != nil {
			r.setPhase(ctx, PhaseRollbackFailed)
			r.errs = append(r.errs, fmt.Errorf("rollback failed: %w", err))
			return "", false
		}
		r.newRel = rel
		if sp.Rollback.Wait {
			r.startWait(ctx, waitRollback, rel, before, sp.Rollback.timeout())
			return "", true
		}
		r.setPhase(ctx, PhaseRolledBack)
		return actAnnotate, false
	case actUninstall:
		if err := uninstallRelease(r.cfg, r.name, sp.timeout()); err != nil {
			h.log.Warn("uninstall failed", "helmrelease", r.key, "release", r.name, "err", err)
		}
		if sp.Chart.Git != "" {
			h.deleteSource(r.hr)
		}
	}
	return "", false
}

// upgradeAction is Helm's upgrade as pkg/helm/v3/upgrade.go configures
// it: no SkipCRDs and no DisableOpenAPIValidation (install only), and
// values reset unless resetValues is false.
func (r *syncRun) upgradeAction(dryRun bool) *action.Upgrade {
	sp := &r.spec
	up := action.NewUpgrade(r.cfg)
	up.Namespace, up.DryRun, up.Force = r.target, dryRun, sp.ForceUpgrade
	up.ReuseValues, up.ResetValues = sp.reuseValues(), !sp.reuseValues()
	if !dryRun {
		up.Timeout, up.MaxHistory = sp.timeout(), sp.maxHistory()
	}
	return up
}

// rollbackAction is Helm's rollback as pkg/helm/v3/rollback.go configures
// it: to the previous revision, and without Force, whatever
// rollback.force says.
func (r *syncRun) rollbackAction() *action.Rollback {
	rb := action.NewRollback(r.cfg)
	rb.Timeout = r.spec.Rollback.timeout()
	rb.DisableHooks, rb.Recreate = r.spec.Rollback.DisableHooks, r.spec.Rollback.Recreate
	return rb
}

func (rb hrRollback) timeout() time.Duration { return seconds(rb.Timeout) }

// dryRunCompare is Release.dryRunCompare: a dry-run upgrade, compared
// with the current release by pkg/helm/utils.go:Diff.
func (r *syncRun) dryRunCompare(ctx context.Context) (*release.Release, bool, error) {
	if r.ch.loadErr != nil {
		return nil, false, fmt.Errorf("dry-run upgrade for comparison failed: %w", r.ch.loadErr)
	}
	dry, err := r.upgradeAction(true).RunWithContext(ctx, r.name, cloneChart(r.ch.chart), r.values)
	if err != nil {
		return nil, false, fmt.Errorf("dry-run upgrade for comparison failed: %w", err)
	}
	return dry, releaseDiff(r.curRel, dry), nil
}

// releaseDiff is pkg/helm/utils.go:Diff over
// pkg/helm/v3/release.go:releaseToGenericRelease: the user-supplied
// values (as read back from YAML) and the chart's name, version,
// appVersion, values and templates; numbers compare by value.
func releaseDiff(a, b *release.Release) bool {
	return genericRelease(a) != genericRelease(b)
}

func genericRelease(r *release.Release) string {
	vals := map[string]any{}
	if s, err := chartutil.Values(r.Config).YAML(); err == nil {
		if v, err := chartutil.ReadValues([]byte(s)); err == nil {
			vals = v.AsMap()
		}
	}
	type file struct{ Name, Data string }
	var c struct {
		Name, Version, AppVersion string
		Values                    map[string]any
		Templates                 []file
	}
	if r.Chart != nil {
		c.Name, c.Values = r.Chart.Name(), r.Chart.Values
		if r.Chart.Metadata != nil {
			c.Version, c.AppVersion = r.Chart.Metadata.Version, r.Chart.Metadata.AppVersion
		}
		for _, f := range r.Chart.Templates {
			c.Templates = append(c.Templates, file{f.Name, string(f.Data)})
		}
		sort.Slice(c.Templates, func(i, j int) bool {
			if c.Templates[i].Name != c.Templates[j].Name {
				return c.Templates[i].Name < c.Templates[j].Name
			}
			return c.Templates[i].Data < c.Templates[j].Data
		})
	}
	// JSON gives every number one form: cmp.Diff with upstream's numeric
	// transformer compares them by value too.
	out, _ := json.Marshal(map[string]any{"values": vals, "chart": c})
	return string(out)
}

// uninstallRelease is pkg/release/release.go:uninstall.
func uninstallRelease(cfg *action.Configuration, name string, timeout time.Duration) error {
	un := action.NewUninstall(cfg)
	un.KeepHistory, un.Timeout = false, timeout
	if _, err := un.Run(name); err != nil {
		return fmt.Errorf("uninstall failed: %w", err)
	}
	return nil
}

// waitKind is what a simulated helm --wait finishes.
type waitKind int

const (
	waitInstall waitKind = iota
	waitUpgrade
	waitRollback
)

// helmWait is helm --wait on the simulation clock. Helm's wait blocks its
// worker and polls every 2 s until the resources are ready or the timeout
// has passed; a clock task cannot block, so the release is applied
// without waiting and left in the state Helm keeps it in while it waits
// (pending-install, pending-upgrade, pending-rollback; the release it
// replaces still deployed), and this finishes it the way Helm would.
type helmWait struct {
	kind     waitKind
	rel      *release.Release
	before   []*release.Release // releases Helm supersedes only once the wait succeeds
	deadline time.Time
	next     time.Time
}

// helmWaitPoll is Helm's readiness poll interval (pkg/kube/wait.go).
const helmWaitPoll = 2 * time.Second

func (r *syncRun) startWait(ctx context.Context, kind waitKind, rel *release.Release, before []*release.Release, timeout time.Duration) {
	now := r.h.a.clk.Now()
	r.wait = &helmWait{kind: kind, rel: rel, before: before, deadline: now.Add(timeout), next: now.Add(min(helmWaitPoll, timeout))}
	switch kind {
	case waitInstall:
		rel.SetStatus(release.StatusPendingInstall, "Initial install underway")
	case waitUpgrade:
		rel.SetStatus(release.StatusPendingUpgrade, "Preparing upgrade")
	case waitRollback:
		rel.Info.Status = release.StatusPendingRollback
	}
	r.recordRelease(rel)
	for _, b := range before {
		if b.Version != rel.Version {
			b.Info.Status = release.StatusDeployed
			r.recordRelease(b)
		}
	}
}

func (r *syncRun) recordRelease(rel *release.Release) {
	if err := r.cfg.Releases.Update(rel); err != nil {
		r.h.log.Warn("update release", "release", rel.Name, "err", err)
	}
}

// checkWaits moves every simulated wait that is due: done, timed out, or
// polled again later.
func (h *helmOperator) checkWaits(ctx context.Context, now time.Time) bool {
	keys := make([]string, 0, len(h.waits))
	for k := range h.waits {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	changed := false
	for _, key := range keys {
		r := h.waits[key]
		if now.Before(r.wait.next) {
			continue
		}
		if next, finished := r.pollWait(ctx, now); !finished {
			r.wait.next = next
			continue
		}
		delete(h.waits, key)
		changed = h.finish(ctx, r) || changed
	}
	return changed
}

// pollWait checks a wait; when it is over it resumes the run and reports
// whether the run ended (it may start another wait, for a rollback).
func (r *syncRun) pollWait(ctx context.Context, now time.Time) (time.Time, bool) {
	w := r.wait
	ready, err := r.h.resourcesReady(ctx, r.cfg, w.rel)
	if err != nil || !ready {
		if now.Before(w.deadline) {
			return minTime(now.Add(helmWaitPoll), w.deadline), false
		}
		// Helm 3.7 (helm-operator 1.4.4's) waits with wait.Poll, whose
		// timeout says this.
		return time.Time{}, r.resume(ctx, r.waitFailed(ctx, errors.New("timed out waiting for the condition")))
	}
	var next syncAction
	switch w.kind {
	case waitInstall:
		w.rel.SetStatus(release.StatusDeployed, "Install complete")
		r.recordRelease(w.rel)
		r.setPhase(ctx, PhaseDeployed)
		next = actTest
	case waitUpgrade:
		for _, b := range w.before {
			b.Info.Status = release.StatusSuperseded
			r.recordRelease(b)
		}
		w.rel.SetStatus(release.StatusDeployed, "Upgrade complete")
		r.recordRelease(w.rel)
		r.setPhase(ctx, PhaseDeployed)
		next = actTest
	case waitRollback:
		for _, b := range w.before {
			if b.Version != w.rel.Version {
				b.Info.Status = release.StatusSuperseded
				r.recordRelease(b)
			}
		}
		w.rel.Info.Status = release.StatusDeployed
		r.recordRelease(w.rel)
		r.setPhase(ctx, PhaseRolledBack)
		next = actAnnotate
	}
	return time.Time{}, r.resume(ctx, next)
}

// waitFailed records a wait that timed out the way Helm records the
// failure, and says where the release cycle goes from there.
func (r *syncRun) waitFailed(ctx context.Context, err error) syncAction {
	w := r.wait
	switch w.kind {
	case waitInstall:
		// action/install.go:failRelease.
		w.rel.SetStatus(release.StatusFailed, fmt.Sprintf("Release %q failed: %s", w.rel.Name, err))
		r.recordRelease(w.rel)
		r.setPhase(ctx, PhaseDeployFailed)
		r.errs = append(r.errs, fmt.Errorf("installation failed: %w", err))
		return actUninstall
	case waitUpgrade:
		// action/upgrade.go:failRelease; the original stays deployed.
		w.rel.SetStatus(release.StatusFailed, fmt.Sprintf("Upgrade %q failed: %s", w.rel.Name, err))
		r.recordRelease(w.rel)
		r.setPhase(ctx, PhaseDeployFailed)
		r.errs = append(r.errs, fmt.Errorf("upgrade failed: %w", err))
		return actRollback
	default:
		// action/rollback.go:performRollback.
		w.rel.SetStatus(release.StatusFailed, fmt.Sprintf("Release %q failed: %s", w.rel.Name, err))
		r.recordRelease(w.rel)
		r.setPhase(ctx, PhaseRollbackFailed)
		r.errs = append(r.errs, fmt.Errorf("rollback failed: release %s failed: %w", w.rel.Name, err))
		return ""
	}
}

// resume continues the release cycle after a wait; it reports whether the
// run is over.
func (r *syncRun) resume(ctx context.Context, next syncAction) bool {
	r.wait = nil
	if next == "" {
		return r.done(ctx)
	}
	return r.run(ctx, next)
}

func minTime(a, b time.Time) time.Time {
	if a.Before(b) {
		return a
	}
	return b
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
	rc := kube.NewReadyChecker(h.kube, func(string, ...any) {}, kube.PausedAsReady(true))
	for _, info := range res {
		ready, err := rc.IsReady(ctx, info)
		if err != nil || !ready {
			return false, err
		}
	}
	return true, nil
}

// releaseObjects is annotator.go:releaseManifestToUnstructured: the
// objects of a release manifest, List kinds expanded.
func releaseObjects(manifest string) []unstructured.Unstructured {
	var objs []unstructured.Unstructured
	m := releaseutil.SplitManifests(manifest)
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Sort(releaseutil.BySplitManifestsOrder(keys))
	for _, k := range keys {
		var u unstructured.Unstructured
		if err := yaml.Unmarshal([]byte(m[k]), &u.Object); err != nil || u.Object == nil {
			continue
		}
		if u.IsList() {
			l, err := u.ToList()
			if err != nil {
				continue
			}
			objs = append(objs, l.Items...)
			continue
		}
		objs = append(objs, u)
	}
	return objs
}

// namespacedResources is annotator.go:namespacedResourceMap: objects by
// namespace, the release's for those without one.
func namespacedResources(objs []unstructured.Unstructured, releaseNS string) map[string][]unstructured.Unstructured {
	out := map[string][]unstructured.Unstructured{}
	for _, o := range objs {
		ns := o.GetNamespace()
		if ns == "" {
			ns = releaseNS
		}
		out[ns] = append(out[ns], o)
	}
	return out
}

// managedByHelmRelease is annotator.go:managedByHelmRelease. Upstream
// runs `kubectl get` on the first resource of its namespace map (Go map
// order: any one) and decides on that resource alone: no annotation, or
// an error reading it, means "ours" (a release installed by hand is taken
// over); another HelmRelease's ID means not ours. gitopsim looks at the
// first resource in sorted namespace order.
func (h *helmOperator) managedByHelmRelease(ctx context.Context, rel *release.Release, hr *unstructured.Unstructured) (bool, string, error) {
	id := hrResourceID(hr)
	byNS := namespacedResources(releaseObjects(rel.Manifest), rel.Namespace)
	namespaces := make([]string, 0, len(byNS))
	for ns := range byNS {
		namespaces = append(namespaces, ns)
	}
	slices.Sort(namespaces)
	for _, ns := range namespaces {
		for _, o := range byNS[ns] {
			v := ""
			if live, err := h.getObject(ctx, &o, ns); err == nil {
				v = live.GetAnnotations()[AnnAntecedent]
			}
			if v == "" {
				return true, id, nil
			}
			return v == id, v, nil
		}
	}
	return true, id, nil
}

// annotateResources is annotator.go:annotateResources: `kubectl annotate
// --overwrite` of every resource of the release with the HelmRelease's
// ID, as the operator.
func (h *helmOperator) annotateResources(ctx context.Context, rel *release.Release, id string) error {
	if rel == nil {
		return nil
	}
	var errs errCollection
	patch, _ := json.Marshal(map[string]any{"metadata": map[string]any{"annotations": map[string]string{AnnAntecedent: id}}})
	for ns, objs := range namespacedResources(releaseObjects(rel.Manifest), rel.Namespace) {
		for i := range objs {
			if err := h.patchObject(ctx, &objs[i], ns, patch); err != nil {
				errs = append(errs, err)
			}
		}
	}
	if len(errs) > 0 {
		return errs
	}
	return nil
}
