package agent

import (
	"context"
	"encoding/json"
	"fmt"
	"reflect"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
)

// HelmRelease condition types (helm.fluxcd.io/v1 HelmReleaseConditionType).
const (
	condChartFetched = "ChartFetched"
	condDeployed     = "Deployed"
	condReleased     = "Released"
	condRolledBack   = "RolledBack"
	condTested       = "Tested"
)

// hrCondition is HelmReleaseCondition.
type hrCondition struct {
	Type               string `json:"type"`
	Status             string `json:"status"`
	LastUpdateTime     string `json:"lastUpdateTime,omitempty"`
	LastTransitionTime string `json:"lastTransitionTime,omitempty"`
	Reason             string `json:"reason,omitempty"`
	Message            string `json:"message,omitempty"`
}

// hrStatus is HelmReleaseStatus.
type hrStatus struct {
	ObservedGeneration    int64         `json:"observedGeneration,omitempty"`
	Phase                 string        `json:"phase,omitempty"`
	ReleaseName           string        `json:"releaseName,omitempty"`
	ReleaseStatus         string        `json:"releaseStatus,omitempty"`
	Revision              string        `json:"revision,omitempty"`
	LastAttemptedRevision string        `json:"lastAttemptedRevision,omitempty"`
	RollbackCount         int64         `json:"rollbackCount,omitempty"`
	Conditions            []hrCondition `json:"conditions,omitempty"`
}

func decodeStatus(hr *unstructured.Unstructured) hrStatus {
	var st hrStatus
	if raw, err := json.Marshal(hr.Object["status"]); err == nil {
		_ = json.Unmarshal(raw, &st)
	}
	return st
}

// condition is status.GetCondition.
func (s hrStatus) condition(typ string) *hrCondition {
	for i := range s.Conditions {
		if s.Conditions[i].Type == typ {
			c := s.Conditions[i]
			return &c
		}
	}
	return nil
}

// conditionsForPhase is pkg/status/conditions.go:ConditionsForPhase: the
// conditions a phase sets, with upstream's fixed sentences (the error
// text goes to the Event, never to a condition). ok is false for a phase
// that sets none.
func conditionsForPhase(release, target string, ignoreTestFailures bool, phase string, now time.Time) (conds []hrCondition, ok bool) {
	where := fmt.Sprintf("Helm release '%s' in '%s'.", release, target)
	add := func(typ, status, msg string) {
		conds = append(conds, hrCondition{Type: typ, Status: status, Message: msg})
	}
	switch phase {
	case PhaseInstalling:
		add(condDeployed, "Unknown", "Running installation for "+where)
	case PhaseUpgrading:
		add(condDeployed, "Unknown", "Running upgrade for "+where)
	case PhaseDeployed:
		add(condDeployed, "True", "Installation or upgrade succeeded for "+where)
	case PhaseDeployFailed:
		add(condDeployed, "False", "Installation or upgrade failed for "+where)
		add(condReleased, "False", "Installation or upgrade failed for "+where)
	case PhaseSucceeded:
		add(condReleased, "True", "Release was successful for "+where)
	case PhaseFailed:
		add(condReleased, "False", "Release failed for "+where)
	case "Testing":
		add(condTested, "Unknown", "Testing "+where)
	case "Tested":
		add(condTested, "True", "Tested "+where)
	case "TestFailed":
		add(condTested, "False", "Test failed for "+where)
		if !ignoreTestFailures {
			add(condReleased, "False", "Test failed for "+where)
		}
	case PhaseRollingBack:
		add(condRolledBack, "Unknown", "Rolling back "+where)
	case PhaseRolledBack:
		add(condRolledBack, "True", "Rolled back "+where)
	case PhaseRollbackFailed:
		add(condRolledBack, "False", "Rollback failed for "+where)
	case PhaseChartFetched:
		add(condChartFetched, "True", "Chart fetch was successful for "+where)
	case PhaseChartFetchFailed:
		add(condChartFetched, "False", "Chart fetch failed for "+where)
		add(condReleased, "False", "Chart fetch failed for "+where)
	default:
		return nil, false
	}
	ts := now.UTC().Format(time.RFC3339)
	for i := range conds {
		conds[i].Reason, conds[i].LastUpdateTime, conds[i].LastTransitionTime = phase, ts, ts
	}
	return conds, true
}

// setConditions applies conditions the way status.SetConditions does: a
// transition time kept when the status did not change, Released=True
// clearing RolledBack and the rollback count, RolledBack=True counting a
// rollback.
func setConditions(s *hrStatus, conds []hrCondition) {
	for _, c := range conds {
		if cur := s.condition(c.Type); cur != nil && cur.Status == c.Status {
			c.LastTransitionTime = cur.LastTransitionTime
		}
		s.Conditions = append(filterCondition(s.Conditions, c.Type), c)
		switch {
		case c.Type == condReleased && c.Status == "True":
			s.Conditions = filterCondition(s.Conditions, condRolledBack)
			s.RollbackCount = 0
		case c.Type == condRolledBack && c.Status == "True":
			s.RollbackCount++
		}
	}
}

func filterCondition(conds []hrCondition, typ string) []hrCondition {
	var out []hrCondition
	for _, c := range conds {
		if c.Type != typ {
			out = append(out, c)
		}
	}
	return out
}

// setPhase is status.SetStatusPhase on the HelmRelease's own namespace.
func (r *syncRun) setPhase(ctx context.Context, phase string, setters ...func(*hrStatus)) {
	r.setPhaseIn(ctx, r.hr.GetNamespace(), phase, setters...)
}

// setPhaseViaTarget is status.SetStatusPhase through
// r.hrClient.HelmReleases(hr.GetTargetNamespace()), which
// pkg/release/release.go:Sync uses for the Failed phase of a missing
// Helm client, of values that do not compose and of a sync action it
// cannot determine. With a targetNamespace other than the HelmRelease's
// own, the API server refuses that write (the object's namespace does not
// match the request's), so the phase is never recorded: only the Event
// tells.
func (r *syncRun) setPhaseViaTarget(ctx context.Context, phase string) {
	r.setPhaseIn(ctx, r.target, phase)
}

// setPhaseWithRevision is status.SetStatusPhaseWithRevision.
func (r *syncRun) setPhaseWithRevision(ctx context.Context, phase, revision string) {
	r.setPhase(ctx, phase, func(s *hrStatus) {
		switch phase {
		case PhaseInstalling, PhaseUpgrading:
			s.LastAttemptedRevision = revision
		case PhaseSucceeded:
			s.Revision = revision
		}
	})
}

func (r *syncRun) setPhaseIn(ctx context.Context, ns, phase string, setters ...func(*hrStatus)) {
	conds, ok := conditionsForPhase(r.name, r.target, r.spec.Test.IgnoreFailures != nil && *r.spec.Test.IgnoreFailures, phase, r.h.a.clk.Now())
	if !ok {
		return
	}
	r.write(ctx, ns, func(s *hrStatus) {
		setConditions(s, conds)
		for _, set := range setters {
			set(s)
		}
		s.Phase = phase
	})
}

// write updates the run's HelmRelease status through the namespace ns.
func (r *syncRun) write(ctx context.Context, ns string, mutate func(*hrStatus)) {
	if ns != r.hr.GetNamespace() {
		r.h.log.Debug("status write through another namespace refused, as upstream's", "helmrelease", r.key, "namespace", ns)
		return
	}
	live, err := r.h.writeStatus(ctx, r.live, mutate)
	if err != nil {
		r.h.log.Warn("update HelmRelease status", "helmrelease", r.key, "err", err)
		return
	}
	r.live = live
}

// writeStatus is the read-modify-UpdateStatus loop of pkg/status
// (retry.RetryOnConflict with a fresh copy on a conflict). A change that
// would only move lastUpdateTime is not written: a virtual run syncs
// thousands of times.
func (h *helmOperator) writeStatus(ctx context.Context, hr *unstructured.Unstructured, mutate func(*hrStatus)) (*unstructured.Unstructured, error) {
	obj := hr
	for attempt := 0; ; attempt++ {
		old := decodeStatus(obj)
		st := decodeStatus(obj)
		mutate(&st)
		if sameStatus(old, st) {
			return obj, nil
		}
		raw, err := json.Marshal(st)
		if err != nil {
			return obj, err
		}
		var m map[string]any
		if err := json.Unmarshal(raw, &m); err != nil {
			return obj, err
		}
		upd := obj.DeepCopy()
		upd.Object["status"] = m
		res, err := h.dyn.Resource(HelmReleaseGVR).Namespace(obj.GetNamespace()).UpdateStatus(ctx, upd, metav1.UpdateOptions{FieldManager: "helm-operator"})
		if err == nil {
			return res, nil
		}
		if !apierrors.IsConflict(err) || attempt >= 4 {
			return obj, err
		}
		if obj, err = h.dyn.Resource(HelmReleaseGVR).Namespace(hr.GetNamespace()).Get(ctx, hr.GetName(), metav1.GetOptions{}); err != nil {
			return hr, err
		}
	}
}

// sameStatus compares two statuses without their lastUpdateTimes.
func sameStatus(a, b hrStatus) bool {
	strip := func(s hrStatus) hrStatus {
		c := s
		c.Conditions = make([]hrCondition, len(s.Conditions))
		for i, x := range s.Conditions {
			x.LastUpdateTime = ""
			c.Conditions[i] = x
		}
		return c
	}
	return reflect.DeepEqual(strip(a), strip(b))
}
