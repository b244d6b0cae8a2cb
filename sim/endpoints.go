package sim

import (
	"encoding/json"
	"fmt"
	"os"

	"github.com/gitopsim/gitopsim/sim/internal/atomicfile"
)

// EndpointsFile is the name of the endpoints file inside the work dir.
const EndpointsFile = "endpoints.json"

// Endpoints tells real clients where the running simulator is. Its JSON
// form is a contract: field names do not change, paths are absolute, and
// sections not started yet are empty.
type Endpoints struct {
	Workdir           string             `json:"workdir"`
	Cluster           ClusterEndpoint    `json:"cluster"`
	ARM               ARMEndpoint        `json:"arm"`
	Git               GitEndpoint        `json:"git"`
	Helm              HelmEndpoint       `json:"helm"`
	ConnectedClusters []ConnectedCluster `json:"connectedClusters"`
	// UI is the web view, when one serves.
	UI *UIEndpoint `json:"ui,omitempty"`
}

// UIEndpoint is the web view (package ui).
type UIEndpoint struct {
	URL string `json:"url"`
}

// ClusterEndpoint is the Kubernetes API.
type ClusterEndpoint struct {
	// Backend is envtest, kind or kubeconfig.
	Backend string `json:"backend"`
	// Kubeconfig is an admin kubeconfig file.
	Kubeconfig string `json:"kubeconfig"`
}

// ARMEndpoint is the Azure Resource Manager provider and its token issuer.
type ARMEndpoint struct {
	URL            string `json:"url"`
	CAFile         string `json:"caFile"`
	TenantID       string `json:"tenantId"`
	SubscriptionID string `json:"subscriptionId"`
	AuthorityHost  string `json:"authorityHost"`
	ClientID       string `json:"clientId"`
	ClientSecret   string `json:"clientSecret"`
}

// GitEndpoint is the embedded git server.
type GitEndpoint struct {
	SSHURL            string `json:"sshUrl"`
	HTTPSURL          string `json:"httpsUrl"`
	CAFile            string `json:"caFile"`
	KnownHostsFile    string `json:"knownHostsFile"`
	SSHPrivateKeyFile string `json:"sshPrivateKeyFile"`
	HTTPSUser         string `json:"httpsUser"`
	HTTPSToken        string `json:"httpsToken"`
}

// HelmEndpoint is the Helm chart repository (`helm repo add gitopsim
// <repositoryUrl> --ca-file <caFile>`).
type HelmEndpoint struct {
	RepositoryURL string `json:"repositoryUrl"`
	CAFile        string `json:"caFile"`
}

// ConnectedCluster is an onboarded Arc cluster and the Kubernetes API its
// agent works on.
type ConnectedCluster struct {
	Name          string `json:"name"`
	ResourceGroup string `json:"resourceGroup"`
	ID            string `json:"id"`
	Kubeconfig    string `json:"kubeconfig"`
}

// WriteEndpoints writes e to path atomically, so a reader never sees a
// half-written file. The file may hold credentials and is private (0600).
func WriteEndpoints(path string, e Endpoints) error {
	if e.ConnectedClusters == nil {
		e.ConnectedClusters = []ConnectedCluster{} // [] not null: it is a list
	}
	b, err := json.MarshalIndent(e, "", "  ")
	if err != nil {
		return fmt.Errorf("encode endpoints: %w", err)
	}
	return atomicfile.WriteFile(path, append(b, '\n'), 0o600)
}

// ReadEndpoints reads an endpoints file written by WriteEndpoints.
func ReadEndpoints(path string) (*Endpoints, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read endpoints: %w", err)
	}
	var e Endpoints
	if err := json.Unmarshal(b, &e); err != nil {
		return nil, fmt.Errorf("read endpoints %s: %w", path, err)
	}
	return &e, nil
}
