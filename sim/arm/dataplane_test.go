package arm_test

import (
	"encoding/base64"
	"errors"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore/to"
	"github.com/Azure/azure-sdk-for-go/sdk/resourcemanager/hybridkubernetes/armhybridkubernetes"

	"github.com/gitopsim/gitopsim/sim/arm"
	"github.com/gitopsim/gitopsim/sim/azsdk"
)

func (f *fixture) agent(o *azsdk.Onboarded) *arm.AgentClient {
	f.t.Helper()
	a, err := arm.NewAgentClient(arm.AgentClientOptions{URL: f.srv.URL(), HTTPClient: f.az.HTTPClient, ClusterID: o.ID, Key: o.Key, Clock: f.clk})
	if err != nil {
		f.t.Fatal(err)
	}
	return a
}

func (f *fixture) onboard(rg, name string) *azsdk.Onboarded {
	f.t.Helper()
	o, err := f.az.Onboard(f.t.Context(), rg, name, "eastus")
	if err != nil {
		f.t.Fatal(err)
	}
	return o
}

func armErr(t *testing.T, err error) *arm.Error {
	t.Helper()
	var e *arm.Error
	if !errors.As(err, &e) {
		t.Fatalf("want *arm.Error, got %v", err)
	}
	return e
}

func TestAgentDataPlane(t *testing.T) {
	f := start(t, arm.Options{TokenLifetime: 200 * 24 * time.Hour})
	ctx := t.Context()
	a := f.onboard("rg1", "arc-a")
	b := f.onboard("rg1", "arc-b")
	agentA, agentB := f.agent(a), f.agent(b)

	status := func(name string) *armhybridkubernetes.ConnectedClusterProperties {
		got, err := f.ccs.Get(ctx, "rg1", name, nil)
		if err != nil {
			t.Fatal(err)
		}
		return got.Properties
	}
	if s := *status("arc-a").ConnectivityStatus; s != "Connecting" {
		t.Fatalf("before any heartbeat: %s", s)
	}
	hb := arm.Heartbeat{AgentVersion: "1.2.3", KubernetesVersion: "v1.32.13", TotalNodeCount: 3, TotalCoreCount: 6}
	if _, err := agentA.Heartbeat(ctx, hb); err != nil {
		t.Fatal(err)
	}
	p := status("arc-a")
	if *p.ConnectivityStatus != "Connected" || *p.AgentVersion != "1.2.3" || *p.KubernetesVersion != "v1.32.13" || *p.TotalNodeCount != 3 {
		t.Errorf("after a heartbeat: %s %s %s %d", *p.ConnectivityStatus, *p.AgentVersion, *p.KubernetesVersion, *p.TotalNodeCount)
	}
	f.clk.Advance(14 * time.Minute)
	if s := *status("arc-a").ConnectivityStatus; s != "Connected" {
		t.Errorf("14 minutes after the heartbeat: %s", s)
	}
	f.clk.Advance(time.Minute)
	if s := *status("arc-a").ConnectivityStatus; s != "Offline" {
		t.Errorf("15 minutes without a heartbeat: %s, want Offline", s)
	}
	if _, err := agentA.Heartbeat(ctx, hb); err != nil {
		t.Fatal(err)
	}
	if s := *status("arc-a").ConnectivityStatus; s != "Connected" {
		t.Errorf("back online: %s", s)
	}

	// Desired configurations carry the protected settings to the agent
	// of that cluster only.
	c := config("https://127.0.0.1/team/app.git")
	user, token := base64.StdEncoding.EncodeToString([]byte("u")), base64.StdEncoding.EncodeToString([]byte("t0k"))
	c.Properties.ConfigurationProtectedSettings = map[string]*string{"httpsUser": to.Ptr(user), "httpsKey": to.Ptr(token)}
	if _, _, err := f.putConfig("rg1", "arc-a", "team-a", c); err != nil {
		t.Fatal(err)
	}
	desired, err := agentA.Configurations(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(desired) != 1 || desired[0].Name != "team-a" || desired[0].ProtectedSettings["httpsKey"] != token || desired[0].Spec.OperatorScope != "namespace" {
		t.Fatalf("desired = %+v", desired)
	}
	if other, err := agentB.Configurations(ctx); err != nil || len(other) != 0 {
		t.Errorf("cluster b sees %d configurations (%v)", len(other), err)
	}

	// One cluster's agent cannot read or write another's.
	crossA, err := arm.NewAgentClient(arm.AgentClientOptions{URL: f.srv.URL(), HTTPClient: f.az.HTTPClient, ClusterID: b.ID, Key: a.Key, Clock: f.clk})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := crossA.Configurations(ctx); armErr(t, err).Status != http.StatusUnauthorized {
		t.Errorf("a's key on b's identity: %v", err)
	}
	forged := &forgingClient{fixture: f, signAs: a, target: b}
	if code, body := forged.get("/configurations"); code != http.StatusForbidden || !strings.Contains(body, "AuthorizationFailed") {
		t.Errorf("a's token on b's path: %d %s", code, body)
	}

	// Compliance reports show up in ARM, but are no ARM write: Azure
	// Policy does not react to them.
	var changes []arm.ResourceChange
	var chMu sync.Mutex
	f.srv.Watch(func(c arm.ResourceChange) { chMu.Lock(); changes = append(changes, c); chMu.Unlock() })
	gen := desired[0].Generation
	err = agentA.ReportCompliance(ctx, "team-a", arm.ComplianceReport{
		Generation: gen, ComplianceState: "Installed", MessageLevel: "Information",
		Message:             arm.ComplianceMessage("Flux installed", "Installed"),
		LastConfigApplied:   f.clk.Now(),
		RepositoryPublicKey: "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIPz0 flux",
	})
	if err != nil {
		t.Fatal(err)
	}
	chMu.Lock()
	if len(changes) != 0 {
		t.Errorf("the agent's compliance report made resource changes: %+v", changes)
	}
	chMu.Unlock()
	got, err := f.configs.Get(ctx, "rg1", "Microsoft.Kubernetes", "connectedClusters", "arc-a", "team-a", nil)
	if err != nil {
		t.Fatal(err)
	}
	cs := got.Properties.ComplianceStatus
	if *cs.ComplianceState != "Installed" || *cs.Message != `{"OperatorMessage":"Flux installed","ClusterState":"Installed"}` ||
		!strings.HasPrefix(*got.Properties.RepositoryPublicKey, "ssh-ed25519 ") {
		t.Errorf("after the report: %s %s %s", *cs.ComplianceState, *cs.Message, *got.Properties.RepositoryPublicKey)
	}
	// A report about a replaced configuration is refused.
	if _, _, err := f.putConfig("rg1", "arc-a", "team-a", c); err != nil {
		t.Fatal(err)
	}
	if err := agentA.ReportCompliance(ctx, "team-a", arm.ComplianceReport{Generation: gen, ComplianceState: "Installed"}); armErr(t, err).Status != http.StatusConflict {
		t.Errorf("stale report: %v", err)
	}
	if err := agentA.ReportCompliance(ctx, "team-a", arm.ComplianceReport{Generation: gen + 1, ComplianceState: "Happy"}); armErr(t, err).Status != http.StatusBadRequest {
		t.Errorf("unknown state: %v", err)
	}

	// Fetched settings do not fail the configuration at 48h, but they are
	// gone from Azure.
	if _, err := agentA.Configurations(ctx); err != nil {
		t.Fatal(err)
	}
	f.clk.Advance(arm.ProtectedSettingsTTL)
	desired, err = agentA.Configurations(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(desired[0].ProtectedSettings) != 0 || desired[0].Compliance.State == "Failed" {
		t.Errorf("48h after a fetched write: settings %v, compliance %s", desired[0].ProtectedSettings, desired[0].Compliance.State)
	}

	// 90 days without contact: Expired, and the agent is refused.
	f.clk.Advance(arm.IdentityLifetime)
	if _, err := agentA.Heartbeat(ctx, hb); armErr(t, err).Code != "ClusterIdentityExpired" {
		t.Errorf("heartbeat of an expired cluster: %v", err)
	}
	if s := *status("arc-a").ConnectivityStatus; s != "Expired" {
		t.Errorf("after 90 days: %s", s)
	}
}

// forgingClient signs with one cluster's key but names itself as that
// cluster while addressing another cluster's path.
type forgingClient struct {
	fixture        *fixture
	signAs, target *azsdk.Onboarded
}

func (c *forgingClient) get(suffix string) (int, string) {
	f := c.fixture
	tok, err := arm.SignAgentToken(c.signAs.ID, c.signAs.Key, f.clk)
	if err != nil {
		f.t.Fatal(err)
	}
	path := strings.Replace(c.target.ID, "/subscriptions/", "/agent/v1/subscriptions/", 1)
	code, body := f.raw(http.MethodGet, f.srv.URL()+path+suffix, tok, "")
	return code, string(body)
}
