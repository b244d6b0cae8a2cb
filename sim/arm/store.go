package arm

import (
	"slices"
	"strings"
	"sync"
	"time"
)

// store holds all ARM state in memory under one lock. Keys are lower-case
// resource ids (ARM ids compare case-insensitively); values keep the
// caller's spelling.
type store struct {
	mu sync.Mutex
	storeData
}

// storeData is everything the store holds, apart from its lock, so that
// a rollback replaces all of it at once, whatever fields are added later.
type storeData struct {
	subscriptions map[string]*subscription
	groups        map[string]*resourceGroup
	clusters      map[string]*cluster
	configs       map[string]*configuration
	ops           map[string]*operation
	// pending are the operations not done yet: the only ones the clock
	// can finish, so each request looks at them and not at every
	// operation ever made.
	pending map[string]*operation
	opSeq   int
	// genSeq numbers configuration generations across the whole store,
	// so a deleted and recreated configuration never repeats one.
	genSeq int64
	// notices wait for the store lock to be released (Server.unlock).
	notices []Notice
}

func newStore(defaultSub string) *store {
	st := &store{storeData: storeData{
		subscriptions: map[string]*subscription{},
		groups:        map[string]*resourceGroup{},
		clusters:      map[string]*cluster{},
		configs:       map[string]*configuration{},
		ops:           map[string]*operation{},
		pending:       map[string]*operation{},
	}}
	st.subscriptions[strings.ToLower(defaultSub)] = &subscription{ID: defaultSub, DisplayName: "gitopsim"}
	return st
}

func key(id string) string { return strings.ToLower(id) }

type subscription struct {
	ID          string
	DisplayName string
}

type resourceGroup struct {
	ID        string
	Name      string
	Sub       string
	Location  string
	Tags      map[string]string
	ManagedBy string
	Sys       systemData
}

// cluster is a connectedCluster or (Managed) a minimal managedCluster.
type cluster struct {
	ID        string
	Name      string
	Sub       string
	Group     string
	Managed   bool
	Location  string
	Tags      map[string]string
	Identity  string
	Sys       systemData
	Props     clusterProps
	Extra     map[string][]byte // properties of newer api-versions, kept verbatim
	Kind      string            // kind (2023-11-01-preview on: ProvisionedCluster, AWS, ...)
	State     string            // provisioningState
	CreatedAt time.Time
	// Agent-reported and identity state.
	LastHeartbeat   time.Time
	IdentityExpires time.Time
	PrincipalID     string
}

type clusterProps struct {
	AgentPublicKeyCertificate string
	Distribution              string
	DistributionVersion       string
	Infrastructure            string
	KubernetesVersion         string
	AgentVersion              string
	TotalNodeCount            int
	TotalCoreCount            int
}

type systemData struct {
	CreatedBy          string    `json:"createdBy"`
	CreatedByType      string    `json:"createdByType"`
	CreatedAt          time.Time `json:"createdAt"`
	LastModifiedBy     string    `json:"lastModifiedBy"`
	LastModifiedByType string    `json:"lastModifiedByType"`
	LastModifiedAt     time.Time `json:"lastModifiedAt"`
}

func newSystemData(who *principal, now time.Time) systemData {
	by := ""
	if who != nil {
		by = who.ClientID
	}
	return systemData{CreatedBy: by, CreatedByType: "Application", CreatedAt: now, LastModifiedBy: by, LastModifiedByType: "Application", LastModifiedAt: now}
}

func (sd *systemData) touch(who *principal, now time.Time) {
	if who != nil {
		sd.LastModifiedBy = who.ClientID
	}
	sd.LastModifiedByType, sd.LastModifiedAt = "Application", now
}

// operation is an ARM asynchronous operation, polled through
// operationStatuses (Azure-AsyncOperation) or operationResults (Location).
// It reports InProgress on its first poll and finishes on the next, which
// exercises every client's polling loop without depending on time.
type operation struct {
	ID       string
	Name     string
	Sub      string
	Location string
	Started  time.Time
	Polls    int
	Done     bool
	// Kind and Target say what completing the operation does (see
	// finishOpLocked); data rather than a closure, so it persists.
	Kind   string
	Target string
}

// Operation kinds.
const (
	opNone           = ""
	opClusterCreated = "clusterCreated"
	opClusterDeleted = "clusterDeleted"
)

// inOrder returns the values whose key starts with prefix, in key order:
// listings and snapshots are deterministic.
func inOrder[V any](m map[string]V, prefix string) []V {
	// Only the matching keys are sorted: an agent's poll reads its own
	// configurations among every cluster's.
	var keys []string
	for k := range m {
		if strings.HasPrefix(k, prefix) {
			keys = append(keys, k)
		}
	}
	slices.Sort(keys)
	var out []V
	for _, k := range keys {
		out = append(out, m[k])
	}
	return out
}

// sortedKeys returns map keys in order.
func sortedKeys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}
