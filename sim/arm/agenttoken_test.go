package arm_test

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/base64"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore/runtime"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/to"
	"github.com/Azure/azure-sdk-for-go/sdk/resourcemanager/hybridkubernetes/armhybridkubernetes"

	"github.com/gitopsim/gitopsim/sim/arm"
)

// A token whose signature was checked once is still refused once it has
// expired, or once the cluster's agent key has changed: the server only
// remembers that a token matched a key.
func TestAgentTokenReuse(t *testing.T) {
	f := start(t, arm.Options{TokenLifetime: 24 * time.Hour})
	o := f.onboard("rg1", "arc-a")
	url := f.srv.URL() + strings.Replace(o.ID, "/subscriptions/", "/agent/v1/subscriptions/", 1) + "/configurations"
	sign := func() string {
		tok, err := arm.SignAgentToken(o.ID, o.Key, f.clk)
		if err != nil {
			t.Fatal(err)
		}
		return tok
	}
	get := func(tok string) int {
		code, _ := f.raw(http.MethodGet, url, tok, "")
		return code
	}

	tok := sign()
	for i := range 2 {
		if code := get(tok); code != http.StatusOK {
			t.Fatalf("request %d with a fresh token: %d", i, code)
		}
	}
	f.clk.Advance(6 * time.Minute)
	if code := get(tok); code != http.StatusUnauthorized {
		t.Errorf("expired token: %d, want 401", code)
	}

	tok = sign()
	if code := get(tok); code != http.StatusOK {
		t.Fatalf("new token: %d", code)
	}
	other, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	pub, err := x509.MarshalPKIXPublicKey(&other.PublicKey)
	if err != nil {
		t.Fatal(err)
	}
	// Connecting again replaces the key.
	poller, err := f.ccs.BeginCreate(t.Context(), "rg1", "arc-a", armhybridkubernetes.ConnectedCluster{
		Location: to.Ptr("eastus"),
		Identity: &armhybridkubernetes.ConnectedClusterIdentity{Type: to.Ptr(armhybridkubernetes.ResourceIdentityTypeSystemAssigned)},
		Properties: &armhybridkubernetes.ConnectedClusterProperties{
			AgentPublicKeyCertificate: to.Ptr(base64.StdEncoding.EncodeToString(pub)),
			Distribution:              to.Ptr("gitopsim"), Infrastructure: to.Ptr("gitopsim"),
		},
	}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := poller.PollUntilDone(t.Context(), &runtime.PollUntilDoneOptions{Frequency: time.Millisecond}); err != nil {
		t.Fatal(err)
	}
	if code := get(tok); code != http.StatusUnauthorized {
		t.Errorf("token signed with the replaced key: %d, want 401", code)
	}
}
