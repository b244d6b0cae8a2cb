package scenario

// The v1alpha1 file format. Field names are the YAML keys; scenarios/README.md
// is the user-facing reference and must follow every change here.

// APIVersion and Kind every scenario file declares.
const (
	APIVersion = "gitopsim.dev/v1alpha1"
	Kind       = "Scenario"
)

// Pos is where something starts in its file (1-based). The decoder fills
// every Pos field it finds, so later errors can point at the source.
type Pos struct {
	File      string
	Line, Col int
}

// Scenario is one decoded scenario file.
type Scenario struct {
	Pos        Pos      `yaml:"-"`
	APIVersion string   `yaml:"apiVersion"`
	Kind       string   `yaml:"kind"`
	Metadata   Metadata `yaml:"metadata"`
	Spec       Spec     `yaml:"spec"`
}

// Metadata names and explains a scenario.
type Metadata struct {
	Pos Pos `yaml:"-"`
	// Name is a DNS label; it names the testcase, the transcript and the
	// resource group.
	Name        string `yaml:"name"`
	Description string `yaml:"description"`
}

// Spec is the world a scenario declares and the steps it takes.
type Spec struct {
	Pos Pos `yaml:"-"`
	// ResourceGroup of the connected clusters that name none; default
	// "scenario-<name>".
	ResourceGroup string `yaml:"resourceGroup"`
	// Policy configures Azure Policy for this scenario.
	Policy   *PolicySpec `yaml:"policy"`
	Clusters []Cluster   `yaml:"clusters"`
	Repos    []Repo      `yaml:"repos"`
	Keys     []Key       `yaml:"keys"`
	Tokens   []Token     `yaml:"tokens"`
	Steps    []Step      `yaml:"steps"`
}

// PolicySpec is how Azure Policy behaves in a scenario.
type PolicySpec struct {
	Pos Pos `yaml:"-"`
	// Timing: documented (default; policy.DefaultTiming) or immediate
	// (policy.ImmediateTiming, the test mode with zero delays).
	Timing string `yaml:"timing"`
	// Delays override single delays of Timing.
	Delays *PolicyDelays `yaml:"delays"`
}

// PolicyDelays mirrors policy.Timing; a field left out keeps the value of
// the chosen timing.
type PolicyDelays struct {
	Pos                   Pos       `yaml:"-"`
	Assignment            *Duration `yaml:"assignment"`
	Resource              *Duration `yaml:"resource"`
	Deploy                *Duration `yaml:"deploy"`
	Cycle                 *Duration `yaml:"cycle"`
	RemediationStart      *Duration `yaml:"remediationStart"`
	RemediationDeployment *Duration `yaml:"remediationDeployment"`
}

// Cluster is a connected cluster with its own agent, or with Count a
// group of them.
type Cluster struct {
	Pos Pos `yaml:"-"`
	// Name of the cluster; with Count the name of the group, which the
	// onboard step accepts.
	Name string `yaml:"name"`
	// Count declares that many clusters alike, named by NamePattern.
	Count int `yaml:"count"`
	// NamePattern names the clusters of a group: {n} is replaced by 1..Count,
	// {n:03} zero-pads it to three digits.
	NamePattern string `yaml:"namePattern"`
	// ResourceGroup of the cluster; default spec.resourceGroup.
	ResourceGroup string `yaml:"resourceGroup"`
	// ResourceGroups spreads a group over resource groups, round-robin.
	ResourceGroups []string `yaml:"resourceGroups"`
	// Location of the connected cluster; default eastus.
	Location string `yaml:"location"`
	// Onboard: start (default) onboards it before the first step; later
	// waits for an onboard step.
	Onboard string `yaml:"onboard"`
	// Profile of the agent's timers: realistic (default) or fast.
	Profile string `yaml:"profile"`
	// Intervals override single timers of the profile.
	Intervals Intervals `yaml:"intervals"`
	// Backend: shared (default; the runner's Kubernetes API, shared with the
	// scenario's other shared clusters), dedicated (its own envtest) or
	// fleet (its own kube-apiserver on the scenario's fleet etcd).
	Backend string `yaml:"backend"`
	// Offline starts the agent with both links cut.
	Offline bool `yaml:"offline"`
}

// Intervals mirrors agent.Intervals; zero keeps the profile's value.
type Intervals struct {
	Pos        Pos      `yaml:"-"`
	Heartbeat  Duration `yaml:"heartbeat"`
	ConfigPoll Duration `yaml:"configPoll"`
	GitPoll    Duration `yaml:"gitPoll"`
	Sync       Duration `yaml:"sync"`
	Retry      Duration `yaml:"retry"`
}

// Repo is a git repository on the scenario's git server.
type Repo struct {
	Pos  Pos    `yaml:"-"`
	Name string `yaml:"name"`
	// Fixture seeds the first commit from fixtures/repos/<fixture>.txtar
	// (or a .txtar path relative to the scenario file).
	Fixture string `yaml:"fixture"`
	// Files seed (or add to the fixture in) the first commit.
	Files map[string]string `yaml:"files"`
	// DefaultBranch is the branch seeded and HEAD; default main.
	DefaultBranch string `yaml:"defaultBranch"`
	// Public repos can be cloned without credentials.
	Public bool `yaml:"public"`
}

// Key is an SSH key pair the scenario generates.
type Key struct {
	Pos  Pos    `yaml:"-"`
	Name string `yaml:"name"`
	// DeployKey registers the public half on a repo from the start.
	DeployKey *DeployKey `yaml:"deployKey"`
}

// DeployKey grants a key access to one repo.
type DeployKey struct {
	Pos  Pos    `yaml:"-"`
	Repo string `yaml:"repo"`
	// Write makes it a read-write key; default read-only.
	Write bool `yaml:"write"`
}

// Token is a git user with an HTTPS token.
type Token struct {
	Pos  Pos    `yaml:"-"`
	Name string `yaml:"name"`
	Repo string `yaml:"repo"`
	// Write grants push; default read.
	Write bool `yaml:"write"`
	// ExpiresIn is the token's lifetime on the virtual clock; 0 never.
	ExpiresIn Duration `yaml:"expiresIn"`
}

// Step is one action. Exactly one of the action fields is set.
type Step struct {
	Pos  Pos    `yaml:"-"`
	Name string `yaml:"name"`

	ARM                 *ARMRequest     `yaml:"arm"`
	Configuration       *Configuration  `yaml:"configuration"`
	DeleteConfiguration *ConfigRef      `yaml:"deleteConfiguration"`
	DeleteCluster       *ClusterRef     `yaml:"deleteCluster"`
	Git                 *GitPush        `yaml:"git"`
	SetRef              *SetRef         `yaml:"setRef"`
	DeployKey           *AddDeployKey   `yaml:"deployKey"`
	RevokeKey           *KeyRef         `yaml:"revokeKey"`
	ExpireToken         *TokenRef       `yaml:"expireToken"`
	Network             *Network        `yaml:"network"`
	GitServer           *GitServerFault `yaml:"gitServer"`
	ARMFault            *ARMFault       `yaml:"armFault"`
	Advance             *Duration       `yaml:"advance"`
	Expect              *Expect         `yaml:"expect"`
	Try                 *Try            `yaml:"try"`

	Onboard           *OnboardStep    `yaml:"onboard"`
	UpdateCluster     *UpdateCluster  `yaml:"updateCluster"`
	AssignPolicy      *AssignPolicy   `yaml:"assignPolicy"`
	GrantRole         *GrantRole      `yaml:"grantRole"`
	Remediate         *Remediate      `yaml:"remediate"`
	CancelRemediation *RemediationRef `yaml:"cancelRemediation"`
	PolicyScan        *PolicyScan     `yaml:"policyScan"`
}

// OnboardStep onboards a declared cluster (or group) with onboard: later.
type OnboardStep struct {
	Pos Pos `yaml:"-"`
	// Cluster is a cluster or a group name.
	Cluster string `yaml:"cluster"`
}

// UpdateCluster PATCHes a connected cluster, as `az connectedk8s update`
// does: an update that Azure Policy sees as a resource write.
type UpdateCluster struct {
	Pos     Pos               `yaml:"-"`
	Cluster string            `yaml:"cluster"`
	Tags    map[string]string `yaml:"tags"`
	Expect  ARMStatus         `yaml:"expect"`
}

// AssignPolicy creates or replaces (PUT) a policy assignment.
type AssignPolicy struct {
	Pos Pos `yaml:"-"`
	// Name of the assignment; later steps refer to it.
	Name string `yaml:"name"`
	// ResourceGroup is the scope; default the subscription.
	ResourceGroup string `yaml:"resourceGroup"`
	// Definition: gitops-no-secrets (default), gitops-ssh, gitops-https,
	// or a definition id.
	Definition string `yaml:"definition"`
	// Parameters are the assignment's parameter values; strings expand
	// ${...}.
	Parameters map[string]any `yaml:"parameters"`
	// EnforcementMode: Default or DoNotEnforce.
	EnforcementMode string `yaml:"enforcementMode"`
	// NotScopes are resource group names (or ids) left out.
	NotScopes []string `yaml:"notScopes"`
	// Identity: systemAssigned (default) or none.
	Identity string `yaml:"identity"`
	// Location of the identity; default eastus.
	Location   string    `yaml:"location"`
	APIVersion string    `yaml:"apiVersion"`
	Expect     ARMStatus `yaml:"expect"`
}

// GrantRole gives an assignment's managed identity a role, as the CLI and
// SDKs leave to the caller.
type GrantRole struct {
	Pos        Pos    `yaml:"-"`
	Assignment string `yaml:"assignment"`
	// Role: Contributor (default) or a role definition GUID.
	Role string `yaml:"role"`
	// ResourceGroup is the scope; default the assignment's scope.
	ResourceGroup string    `yaml:"resourceGroup"`
	Expect        ARMStatus `yaml:"expect"`
}

// Remediate creates a remediation task for an assignment.
type Remediate struct {
	Pos        Pos    `yaml:"-"`
	Name       string `yaml:"name"`
	Assignment string `yaml:"assignment"`
	// ResourceGroup is the task's scope; default the assignment's scope.
	ResourceGroup string `yaml:"resourceGroup"`
	// Mode is resourceDiscoveryMode: ExistingNonCompliant (default) or
	// ReEvaluateCompliance.
	Mode                string   `yaml:"mode"`
	Locations           []string `yaml:"locations"`
	ResourceCount       int      `yaml:"resourceCount"`
	ParallelDeployments int      `yaml:"parallelDeployments"`
	// FailureThreshold is failureThreshold.percentage, 0 to 1.
	FailureThreshold *float64  `yaml:"failureThreshold"`
	Expect           ARMStatus `yaml:"expect"`
}

// RemediationRef names a remediation a step created.
type RemediationRef struct {
	Pos    Pos       `yaml:"-"`
	Name   string    `yaml:"name"`
	Expect ARMStatus `yaml:"expect"`
}

// PolicyScan triggers an on-demand compliance scan.
type PolicyScan struct {
	Pos Pos `yaml:"-"`
	// ResourceGroup is the scope; default the subscription.
	ResourceGroup string `yaml:"resourceGroup"`
	// Wait for the scan to finish (default true): the step polls its
	// Location as a client does.
	Wait *bool `yaml:"wait"`
}

// ARMStatus is what an ARM operation must answer; the zero value accepts
// any 2xx.
type ARMStatus struct {
	Pos    Pos `yaml:"-"`
	Status int `yaml:"status"`
	// Code is the error envelope's error.code.
	Code string `yaml:"code"`
	// Message must be contained in error.message.
	Message string `yaml:"message"`
}

// ARMRequest is any request on the ARM API. Path and Body strings expand
// ${...} variables (see the README).
type ARMRequest struct {
	Pos        Pos       `yaml:"-"`
	Method     string    `yaml:"method"`
	Path       string    `yaml:"path"`
	APIVersion string    `yaml:"apiVersion"`
	Body       any       `yaml:"body"`
	Expect     ARMStatus `yaml:"expect"`
}

// Configuration creates or replaces (PUT) a sourceControlConfiguration on
// a declared cluster.
type Configuration struct {
	Pos        Pos    `yaml:"-"`
	Cluster    string `yaml:"cluster"`
	Name       string `yaml:"name"`
	APIVersion string `yaml:"apiVersion"`
	// Repo is a declared repo; URL is used instead when set.
	Repo string `yaml:"repo"`
	URL  string `yaml:"url"`
	// Transport of Repo's URL: ssh (default) or https.
	Transport string `yaml:"transport"`
	// Scope is operatorScope: cluster (default) or namespace.
	Scope string `yaml:"scope"`
	// Namespace is operatorNamespace; default "default".
	Namespace string `yaml:"namespace"`
	// Instance is operatorInstanceName; default the configuration's name.
	Instance string `yaml:"instance"`
	// Params is operatorParams.
	Params string `yaml:"params"`
	// SSHKey is a declared key whose private half goes into the protected
	// settings.
	SSHKey string `yaml:"sshKey"`
	// KnownHosts: "gitopsim" sends the git server's real host key;
	// "key:<name>" sends a declared key as the host key (a mismatch);
	// empty sends none.
	KnownHosts string `yaml:"knownHosts"`
	// Token is a declared token sent as httpsUser/httpsKey.
	Token string `yaml:"token"`
	Helm  *Helm  `yaml:"helm"`
	// Expect checks the answer; default any 2xx.
	Expect ARMStatus `yaml:"expect"`
}

// Helm is enableHelmOperator and helmOperatorProperties.
type Helm struct {
	Pos          Pos    `yaml:"-"`
	Enabled      bool   `yaml:"enabled"`
	ChartVersion string `yaml:"chartVersion"`
	ChartValues  string `yaml:"chartValues"`
}

// ConfigRef names a configuration on a declared cluster.
type ConfigRef struct {
	Pos     Pos       `yaml:"-"`
	Cluster string    `yaml:"cluster"`
	Name    string    `yaml:"name"`
	Expect  ARMStatus `yaml:"expect"`
}

// ClusterRef names a declared cluster.
type ClusterRef struct {
	Pos    Pos       `yaml:"-"`
	Name   string    `yaml:"name"`
	Expect ARMStatus `yaml:"expect"`
}

// GitPush commits to a branch of a declared repo, as one commit.
type GitPush struct {
	Pos    Pos    `yaml:"-"`
	Repo   string `yaml:"repo"`
	Branch string `yaml:"branch"`
	// Message is the commit message; default the step's name.
	Message string            `yaml:"message"`
	Fixture string            `yaml:"fixture"`
	Files   map[string]string `yaml:"files"`
	Delete  []string          `yaml:"delete"`
}

// SetRef points a branch or tag at what another ref points at, or deletes
// it when To is empty.
type SetRef struct {
	Pos  Pos    `yaml:"-"`
	Repo string `yaml:"repo"`
	Ref  string `yaml:"ref"`
	To   string `yaml:"to"`
}

// AddDeployKey registers a declared key on a repo.
type AddDeployKey struct {
	Pos   Pos    `yaml:"-"`
	Key   string `yaml:"key"`
	Repo  string `yaml:"repo"`
	Write bool   `yaml:"write"`
	// FromCluster registers the public key the configuration on Cluster
	// reported (repositoryPublicKey) instead of a declared key.
	FromConfiguration *ConfigRef `yaml:"fromConfiguration"`
}

// KeyRef names a declared key.
type KeyRef struct {
	Pos Pos    `yaml:"-"`
	Key string `yaml:"key"`
}

// TokenRef names a declared token.
type TokenRef struct {
	Pos   Pos    `yaml:"-"`
	Token string `yaml:"token"`
}

// Network changes a cluster agent's links.
type Network struct {
	Pos Pos `yaml:"-"`
	// Cluster is a cluster, or a group (all its clusters).
	Cluster string `yaml:"cluster"`
	// Link: arm, git or all (default).
	Link string `yaml:"link"`
	// Offline cuts the link (true) or restores it (false).
	Offline *bool `yaml:"offline"`
	// Delay adds wall-time latency to each connection.
	Delay *Duration `yaml:"delay"`
	// Flaky fails every Nth connection; 0 stops.
	Flaky *int `yaml:"flaky"`
}

// GitServerFault takes the git server down or slows it.
type GitServerFault struct {
	Pos     Pos       `yaml:"-"`
	Down    *bool     `yaml:"down"`
	Latency *Duration `yaml:"latency"`
	Repo    string    `yaml:"repo"`
}

// ARMFault makes ARM routes fail (see arm.Fault), or clears all faults.
type ARMFault struct {
	Pos     Pos    `yaml:"-"`
	Route   string `yaml:"route"`
	Method  string `yaml:"method"`
	Status  int    `yaml:"status"`
	Code    string `yaml:"code"`
	Message string `yaml:"message"`
	Times   int    `yaml:"times"`
	Clear   bool   `yaml:"clear"`
}

// Expect is an expectation. With Within it may become true later: the
// runner advances the clock event by event until it holds or the
// deadline passes. With During it must hold throughout.
type Expect struct {
	Pos    Pos       `yaml:"-"`
	Within *Duration `yaml:"within"`
	During *Duration `yaml:"during"`
	// Since names an earlier step; the timeline reports the delay from it.
	Since string `yaml:"since"`

	Compliance   *ComplianceExpect   `yaml:"compliance"`
	Connectivity *ConnectivityExpect `yaml:"connectivity"`
	ARM          *ARMExpect          `yaml:"arm"`
	Object       *ObjectExpect       `yaml:"object"`
	GitRef       *GitRefExpect       `yaml:"gitRef"`
	Event        *EventExpect        `yaml:"event"`

	PolicyCompliance *PolicyComplianceExpect `yaml:"policyCompliance"`
	PolicySummary    *PolicySummaryExpect    `yaml:"policySummary"`
	Remediation      *RemediationExpect      `yaml:"remediation"`
	PolicyDeployment *PolicyDeploymentExpect `yaml:"policyDeployment"`
}

// PolicyComplianceExpect checks one cluster's latest policy state for an
// assignment (policyStates/latest/queryResults).
type PolicyComplianceExpect struct {
	Pos        Pos    `yaml:"-"`
	Assignment string `yaml:"assignment"`
	// Cluster is a cluster or a group: every cluster of it must match.
	Cluster string `yaml:"cluster"`
	// State: Compliant, NonCompliant, or none (not evaluated, or out of
	// scope).
	State string `yaml:"state"`
}

// PolicySummaryExpect checks the roll-up of policy states
// (policyStates/latest/summarize) of a scope or one assignment.
type PolicySummaryExpect struct {
	Pos Pos `yaml:"-"`
	// Assignment narrows the summary to one assignment.
	Assignment string `yaml:"assignment"`
	// ResourceGroup is the scope; default the subscription.
	ResourceGroup string `yaml:"resourceGroup"`
	// Compliant and NonCompliant are resource counts.
	Compliant    *int `yaml:"compliant"`
	NonCompliant *int `yaml:"nonCompliant"`
}

// RemediationExpect checks a remediation task.
type RemediationExpect struct {
	Pos  Pos    `yaml:"-"`
	Name string `yaml:"name"`
	// State is the provisioningState: Accepted, Evaluating, Succeeded,
	// Failed, Canceled.
	State string `yaml:"state"`
	// Total, Succeeded, Failed count deployments (deploymentStatus).
	Total     *int `yaml:"total"`
	Succeeded *int `yaml:"succeeded"`
	Failed    *int `yaml:"failed"`
	// Message must be contained in properties.statusMessage.
	Message string `yaml:"message"`
}

// PolicyDeploymentExpect checks what Azure Policy deployed to a cluster.
type PolicyDeploymentExpect struct {
	Pos        Pos    `yaml:"-"`
	Assignment string `yaml:"assignment"`
	Cluster    string `yaml:"cluster"`
	// Result: succeeded (default), failed, or none (no deployment).
	Result string `yaml:"result"`
	// Error must be contained in the failed deployment's error.
	Error string `yaml:"error"`
}

// ComplianceExpect checks a configuration's complianceStatus.
type ComplianceExpect struct {
	Pos Pos `yaml:"-"`
	// Cluster is a cluster, or a group (every cluster of it must match).
	Cluster       string `yaml:"cluster"`
	Configuration string `yaml:"configuration"`
	State         string `yaml:"state"`
	// Message must be contained in the compliance message.
	Message      string `yaml:"message"`
	MessageLevel string `yaml:"messageLevel"`
	// RepositoryPublicKey: "set" or "empty".
	RepositoryPublicKey string `yaml:"repositoryPublicKey"`
}

// ConnectivityExpect checks a connected cluster's connectivityStatus.
type ConnectivityExpect struct {
	Pos     Pos    `yaml:"-"`
	Cluster string `yaml:"cluster"`
	Status  string `yaml:"status"`
}

// ARMExpect GETs an ARM resource and matches its JSON.
type ARMExpect struct {
	Pos        Pos    `yaml:"-"`
	Path       string `yaml:"path"`
	APIVersion string `yaml:"apiVersion"`
	// Status expected; default 200.
	Status int `yaml:"status"`
	// Match is a partial JSON document the response must contain.
	Match any `yaml:"match"`
	// Fields maps dotted paths (properties.a.b, list[0]) to values.
	Fields map[string]any `yaml:"fields"`
}

// ObjectExpect checks a Kubernetes object.
type ObjectExpect struct {
	Pos        Pos    `yaml:"-"`
	Cluster    string `yaml:"cluster"`
	APIVersion string `yaml:"apiVersion"`
	Kind       string `yaml:"kind"`
	Namespace  string `yaml:"namespace"`
	Name       string `yaml:"name"`
	// As impersonates a user ("system:serviceaccount:ns:name" or a name);
	// default the cluster admin.
	As     string   `yaml:"as"`
	Groups []string `yaml:"groups"`
	// State: present (default), absent, or forbidden (for As).
	State string `yaml:"state"`
	// Match is a partial object the live one must contain.
	Match any `yaml:"match"`
}

// GitRefExpect checks a ref of a declared repo.
type GitRefExpect struct {
	Pos  Pos    `yaml:"-"`
	Repo string `yaml:"repo"`
	Ref  string `yaml:"ref"`
	// Exists defaults to true.
	Exists *bool `yaml:"exists"`
	// Equals is another ref the ref must point at the same commit as.
	Equals string `yaml:"equals"`
}

// EventExpect checks the agent's events.
type EventExpect struct {
	Pos           Pos    `yaml:"-"`
	Cluster       string `yaml:"cluster"`
	Configuration string `yaml:"configuration"`
	Reason        string `yaml:"reason"`
	// Message must be contained in the event's message.
	Message string `yaml:"message"`
	// Absent turns it around: no such event may exist.
	Absent bool `yaml:"absent"`
}

// Try runs Steps; if one fails, Catch runs; Finally always runs. A failure
// handled by a catch block does not fail the scenario; one in Finally does.
type Try struct {
	Pos     Pos    `yaml:"-"`
	Steps   []Step `yaml:"steps"`
	Catch   []Step `yaml:"catch"`
	Finally []Step `yaml:"finally"`
}
