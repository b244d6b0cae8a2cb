package arm

import (
	"slices"
	"strings"
	"time"
)

// NoticeProtectedSettingsPurged is the Notice of Azure deleting a
// configuration's protected settings 48 hours after they were written.
const NoticeProtectedSettingsPurged = "ProtectedSettingsPurged"

// Notice is something the ARM side did on its own, at a time the clock
// made due rather than at a request.
type Notice struct {
	// ID is the resource concerned.
	ID   string
	Kind string
	// Time is when it became due, on the simulator's clock (the server
	// notices it at the next request after that).
	Time time.Time
	// Fetched tells, for a purge, whether the agent had fetched the
	// settings (if not, the configuration failed).
	Fetched bool
}

// WatchNotices calls f with every Notice, outside the Server's locks; f
// must return quickly.
func (s *Server) WatchNotices(f func(Notice)) {
	s.watchMu.Lock()
	defer s.watchMu.Unlock()
	s.noticers = append(s.noticers, f)
}

func (s *Server) noticeAll(n Notice) {
	s.watchMu.Lock()
	fs := slices.Clone(s.noticers)
	s.watchMu.Unlock()
	for _, f := range fs {
		f(n)
	}
}

// ClusterOverview is one connected cluster as the service sees it now,
// for views that show a whole fleet at once without a request per
// cluster.
type ClusterOverview struct {
	ID, Name, ResourceGroup string
	// Connectivity is connectivityStatus: Connecting, Connected, Offline
	// or Expired.
	Connectivity  string
	LastHeartbeat time.Time
	Configs       []ConfigOverview
}

// ConfigOverview is one sourceControlConfiguration's state.
type ConfigOverview struct {
	Name          string
	RepositoryURL string
	// OperatorParams are the operator's flags (--git-branch …).
	OperatorParams string
	Scope          string
	Namespace      string
	Compliance     Compliance
	// ProtectedPurged: Azure deleted the protected settings before the
	// agent fetched them.
	ProtectedPurged bool
}

// Overview returns every connected cluster (not managed clusters) with
// its configurations, ordered by resource group and name, as of now on
// the simulator's clock. It reads under the store lock once, so a view
// of a thousand clusters costs one pass.
func (s *Server) Overview() []ClusterOverview {
	now := s.clock.Now()
	s.lock(now)
	byCluster := map[string][]ConfigOverview{}
	for _, cfg := range s.store.configs {
		k := key(cfg.ClusterID)
		byCluster[k] = append(byCluster[k], ConfigOverview{
			Name: cfg.Name, RepositoryURL: cfg.Spec.RepositoryURL, OperatorParams: cfg.Spec.OperatorParams, Scope: cfg.Spec.OperatorScope,
			Namespace: cfg.Spec.OperatorNamespace, Compliance: cfg.Compliance, ProtectedPurged: cfg.ProtectedExpired,
		})
	}
	out := make([]ClusterOverview, 0, len(s.store.clusters))
	for k, cl := range s.store.clusters {
		if cl.Managed {
			continue
		}
		cfgs := byCluster[k]
		slices.SortFunc(cfgs, func(a, b ConfigOverview) int { return strings.Compare(a.Name, b.Name) })
		out = append(out, ClusterOverview{ID: cl.ID, Name: cl.Name, ResourceGroup: cl.Group, Connectivity: connectivity(cl, now), LastHeartbeat: cl.LastHeartbeat, Configs: cfgs})
	}
	s.unlock()
	slices.SortFunc(out, func(a, b ClusterOverview) int {
		if c := strings.Compare(strings.ToLower(a.ResourceGroup), strings.ToLower(b.ResourceGroup)); c != 0 {
			return c
		}
		return strings.Compare(strings.ToLower(a.Name), strings.ToLower(b.Name))
	})
	return out
}

// LastHeartbeat returns when the connected cluster id last sent a
// heartbeat, zero if never or if there is no such cluster.
func (s *Server) LastHeartbeat(id string) time.Time {
	s.store.mu.Lock()
	defer s.store.mu.Unlock()
	if cl, ok := s.store.clusters[key(id)]; ok {
		return cl.LastHeartbeat
	}
	return time.Time{}
}
