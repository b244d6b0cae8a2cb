package agent

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/gitopsim/gitopsim/sim/arm"
)

// instance is config-agent's view of one configuration: what it installed
// and what it last told Azure.
type instance struct {
	name string
	gen  int64
	spec arm.ConfigSpec
	op   *operator
	// installErr is why the last install failed; the next poll retries.
	installErr  error
	installed   bool
	expired     bool
	installedAt time.Time
	publicKey   string

	reportMu    sync.Mutex
	reported    arm.ComplianceReport
	hasReported bool
	// gitConfigStatus is the last status written to the GitConfig.
	gitConfigStatus string
}

// poll pulls the desired configurations, installs what is new or changed,
// removes what is gone and reports compliance.
func (a *Agent) poll() {
	ctx, cancel := context.WithTimeout(a.ctx, 2*time.Minute)
	defer cancel()
	desired, err := a.arm.Configurations(ctx)
	if err != nil {
		a.armUnreachable(err)
		return
	}
	a.armReachable()
	seen := map[string]bool{}
	for _, d := range desired {
		seen[d.Name] = true
		a.reconcile(ctx, d)
	}
	a.removeMissing(ctx, seen)
	a.mu.Lock()
	names := make([]string, 0, len(a.instances))
	for n := range a.instances {
		names = append(names, n)
	}
	a.mu.Unlock()
	for _, n := range names {
		a.report(ctx, n)
		if in := a.instance(n); in != nil && in.op != nil {
			a.updateGitConfigStatus(ctx, in)
		}
	}
}

func (a *Agent) instance(name string) *instance {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.instances[name]
}

// installFailed records a failed install, which the next poll retries;
// the event is recorded once per generation and error, not on every retry.
func (a *Agent) installFailed(old, in *instance, err error) {
	in.installErr = err
	a.replace(old, in)
	if old != nil && old.gen == in.gen && old.installErr != nil && old.installErr.Error() == err.Error() {
		return
	}
	a.event(in.name, "InstallFailed", "configuration %s: %v", in.name, err)
}

// reconcile brings one configuration's operator to the desired generation.
func (a *Agent) reconcile(ctx context.Context, d arm.DesiredConfiguration) {
	old := a.instance(d.Name)
	if old != nil && old.gen == d.Generation && (old.installed || old.expired) {
		return
	}
	in := &instance{name: d.Name, gen: d.Generation, spec: d.Spec}
	if old != nil && old.gen == d.Generation {
		in.reported, in.hasReported = old.reported, old.hasReported
	}
	params, err := parseFluxParams(d.Spec.OperatorParams, d.Spec.OperatorNamespace, strings.EqualFold(d.Spec.OperatorScope, "namespace"), a.iv)
	if err != nil {
		err = fmt.Errorf("fluxd: %w", err)
	}
	var creds *gitCreds
	if err == nil {
		creds, err = a.credentials(ctx, d, params)
	}
	switch {
	case errors.Is(err, errSettingsExpired):
		// Azure purged the settings before we fetched them and already
		// marked the configuration Failed: nothing can be installed.
		in.expired = true
		a.replace(old, in)
		a.event(d.Name, "ProtectedSettingsExpired", "configuration %s: protected settings were deleted by Azure before the agent fetched them; it stays Failed until recreated", d.Name)
		return
	case err != nil:
		a.installFailed(old, in, err)
		return
	}
	if err == nil {
		err = helmReleaseName(d.Spec)
	}
	helmLeft := false
	if err == nil {
		helmLeft, err = a.installOperator(ctx, d, creds)
	}
	var hs helmSettings
	if err == nil && d.Spec.EnableHelmOperator {
		hs, err = a.installHelmOperator(ctx, d.Spec)
	} else if err == nil && helmLeft {
		// A PUT that turned the Helm operator off removes it.
		a.uninstallHelmOperator(d.Spec.OperatorNamespace, d.Spec.OperatorInstanceName)
	}
	if err != nil {
		a.installFailed(old, in, err)
		return
	}
	in.installed, in.installedAt, in.publicKey = true, a.clk.Now(), creds.publicKey
	for _, w := range params.Warnings {
		a.event(d.Name, "OperatorWarning", "%s", w)
	}
	in.op = newOperator(a, d.Name, d.Spec, params, creds)
	if d.Spec.EnableHelmOperator {
		in.op.helm = newHelmOperator(in.op, hs)
	}
	a.replace(old, in)
	verb := "installed"
	if old != nil && old.installed {
		verb = "reconfigured"
	}
	a.event(d.Name, "Installed", "configuration %s: operator %s/%s %s (generation %d, scope %s)", d.Name, d.Spec.OperatorNamespace, d.Spec.OperatorInstanceName, verb, d.Generation, d.Spec.OperatorScope)
	// The operator starts the way fluxd does: at once.
	in.op.start()
}

// replace swaps an instance, stopping the old operator first.
func (a *Agent) replace(old, in *instance) {
	if old != nil && old.op != nil {
		old.op.stop()
	}
	a.mu.Lock()
	a.instances[in.name] = in
	if a.gitConfigs != nil {
		a.gitConfigs[in.name] = true
	}
	a.mu.Unlock()
}

// removeMissing uninstalls operators whose configuration is gone from
// Azure, including those installed by an earlier run of the agent.
//
// GitConfigs are listed at the first poll after Start, and after that
// only when a configuration the agent had installed or tried to install
// is no longer desired: GitConfigs carrying this agent's label come only
// from its own installs (replace notes every name it tried), so when
// every such name is still desired a list would find nothing to remove.
// One LIST per poll otherwise makes a fleet of agents on one API server
// spend most of a virtual day listing. (A GitConfig created with this
// agent's label by someone else is removed at the next list, not the
// next poll.)
func (a *Agent) removeMissing(ctx context.Context, seen map[string]bool) {
	if a.mayHaveStale(seen) {
		installed, err := a.listGitConfigs(ctx)
		if err != nil {
			a.log.Warn("list GitConfigs", "err", err)
			return
		}
		known := map[string]bool{}
		for _, gc := range installed {
			if !seen[gc.name] {
				a.removeOperator(ctx, gc)
			} else {
				known[gc.name] = true
			}
		}
		a.mu.Lock()
		for n := range a.instances {
			if seen[n] {
				known[n] = true
			}
		}
		a.gitConfigs = known
		a.mu.Unlock()
	}
	a.mu.Lock()
	var gone []*instance
	for n, in := range a.instances {
		if !seen[n] {
			gone = append(gone, in)
			delete(a.instances, n)
		}
	}
	a.mu.Unlock()
	for _, in := range gone {
		if in.op != nil {
			in.op.stop()
		}
	}
}

// mayHaveStale reports whether a GitConfig of a configuration that is not
// desired may exist: nothing listed yet, or a name noted since the last
// list that is no longer desired.
func (a *Agent) mayHaveStale(seen map[string]bool) bool {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.gitConfigs == nil {
		return true
	}
	for n := range a.gitConfigs {
		if !seen[n] {
			return true
		}
	}
	return false
}

// compliance is what the agent reports for an instance right now.
func (a *Agent) compliance(in *instance) arm.ComplianceReport {
	r := arm.ComplianceReport{Generation: in.gen, RepositoryPublicKey: in.publicKey}
	if !in.installed {
		r.ComplianceState, r.MessageLevel = arm.ComplianceFailed, "Error"
		state := "Failed"
		if errors.Is(in.installErr, errHelmReleaseName) {
			// Arc reports this one while still "Installing the operator".
			state = "Installing the operator"
		}
		r.Message = arm.ComplianceMessage(fmt.Sprintf("Error: {%v} occurred while doing the operation : {Installing the operator} on the config", in.installErr), state)
		return r
	}
	r.ComplianceState, r.LastConfigApplied = arm.ComplianceInstalled, in.installedAt
	st := in.op.status()
	msg, level := st.message, st.level
	if in.op.helm != nil {
		if f := in.op.helm.failureSummary(); f != "" {
			msg, level = msg+"; "+f, "Error"
		}
	}
	r.Message, r.MessageLevel = arm.ComplianceMessage(msg, "Installed"), level
	return r
}

// report sends an instance's compliance to Azure if it changed since the
// last successful report. While Azure is unreachable the last report
// stays, and the next poll catches up.
func (a *Agent) report(ctx context.Context, name string) {
	in := a.instance(name)
	if in == nil || in.expired {
		return
	}
	in.reportMu.Lock()
	defer in.reportMu.Unlock()
	r := a.compliance(in)
	if in.hasReported && in.reported == r {
		return
	}
	if err := a.arm.ReportCompliance(ctx, name, r); err != nil {
		var ae *arm.Error
		if errors.As(err, &ae) && (ae.Status == http.StatusConflict || ae.Status == http.StatusNotFound) {
			return // replaced or deleted meanwhile: the next poll sorts it out
		}
		a.armUnreachable(err)
		return
	}
	in.reported, in.hasReported = r, true
}

// statusChanged is called by an operator after its status moved: the
// GitConfig status and the compliance report follow at once.
func (a *Agent) statusChanged(name string) {
	in := a.instance(name)
	if in == nil || in.op == nil {
		return
	}
	ctx, cancel := context.WithTimeout(a.ctx, 30*time.Second)
	defer cancel()
	a.report(ctx, name)
	a.updateGitConfigStatus(ctx, in)
}

// maxHelmReleaseName is Helm's cap on release names.
const maxHelmReleaseName = 53

var errHelmReleaseName = errors.New("helm release name too long")

// helmReleaseName checks the Helm operator's release name,
// <operatorInstanceName>-helm-<operatorNamespace>, against Helm's limit;
// Arc fails the configuration with Helm's own words when it is too long.
func helmReleaseName(sp arm.ConfigSpec) error {
	if !sp.EnableHelmOperator {
		return nil
	}
	name := sp.OperatorInstanceName + "-helm-" + sp.OperatorNamespace
	if len(name) <= maxHelmReleaseName {
		return nil
	}
	return fmt.Errorf("failed to install chart from path [helm-operator] for release [%s]: err [release name %q exceeds max length of %d]%w",
		name, name, maxHelmReleaseName, quiet{errHelmReleaseName})
}

// quiet wraps an error for errors.Is without adding to the message.
type quiet struct{ err error }

func (quiet) Error() string   { return "" }
func (q quiet) Unwrap() error { return q.err }
