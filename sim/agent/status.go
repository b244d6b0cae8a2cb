package agent

import (
	"slices"
	"strings"
)

// What a sync did with a manifest (SyncedObject.Status).
const (
	ObjectApplied  = "applied"
	ObjectFailed   = "failed"
	ObjectIgnored  = "ignored"
	ObjectExcluded = "excluded"
)

// SyncedObject is one manifest of the last sync of a configuration.
type SyncedObject struct {
	// ID is fluxd's resource id: "namespace:kind/name".
	ID string `json:"id"`
	// Source is the file in the repo it came from.
	Source string `json:"source"`
	// Status is ObjectApplied, ObjectFailed, ObjectIgnored (a
	// fluxcd.io/ignore annotation) or ObjectExcluded (outside the
	// namespaces the operator may write).
	Status string `json:"status"`
	Error  string `json:"error,omitempty"`
}

// ConfigStatus is what one configuration's operator shows now.
type ConfigStatus struct {
	Configuration string `json:"configuration"`
	// Revision is the last revision synced (full hash), "" before the
	// first sync.
	Revision string `json:"revision,omitempty"`
	// Phase and Message are the operator's status.
	Phase   string `json:"phase"`
	Message string `json:"message"`
	// Objects are the manifests of the last sync, by ID.
	Objects []SyncedObject `json:"objects"`
}

// Configurations returns the status of each configuration the agent
// installed an operator for, by name.
func (a *Agent) Configurations() []ConfigStatus {
	ops := a.operators()
	out := make([]ConfigStatus, 0, len(ops))
	for _, o := range ops {
		o.stMu.Lock()
		out = append(out, ConfigStatus{Configuration: o.name, Revision: o.st.synced, Phase: o.st.phase, Message: o.st.message, Objects: slices.Clone(o.objects)})
		o.stMu.Unlock()
	}
	slices.SortFunc(out, func(a, b ConfigStatus) int { return strings.Compare(a.Configuration, b.Configuration) })
	return out
}

// SyncedRevisions returns the last revision each configuration's operator
// synced (full hash), by configuration; cheaper than Configurations for
// a view that reads a fleet twice a second.
func (a *Agent) SyncedRevisions() map[string]string {
	ops := a.operators()
	out := make(map[string]string, len(ops))
	for _, o := range ops {
		o.stMu.Lock()
		out[o.name] = o.st.synced
		o.stMu.Unlock()
	}
	return out
}

// operators are the operators the agent installed.
func (a *Agent) operators() []*operator {
	a.mu.Lock()
	defer a.mu.Unlock()
	var ops []*operator
	for _, in := range a.instances {
		if in.op != nil {
			ops = append(ops, in.op)
		}
	}
	return ops
}
