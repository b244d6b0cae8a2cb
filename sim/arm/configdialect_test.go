package arm_test

import (
	"encoding/base64"
	"encoding/json"
	"net/http"
	"strings"
	"testing"

	"github.com/gitopsim/gitopsim/sim/arm"
	"github.com/gitopsim/gitopsim/sim/arm/armtest"
)

// TestConfigurationValuesPerAPIVersion checks the values recorded from the
// real service, per api-version, on the wire: a configuration written
// the way the az CLI writes it ("flux", padded operatorParams, no known
// hosts) and read back in each era.
func TestConfigurationValuesPerAPIVersion(t *testing.T) {
	f := start(t, arm.Options{})
	f.group("rg1")
	f.connectedCluster("rg1", "arc1")
	token := f.token()
	base := f.srv.URL() + "/subscriptions/" + f.srv.SubscriptionID() +
		"/resourceGroups/rg1/providers/Microsoft.Kubernetes/connectedClusters/arc1/providers/Microsoft.KubernetesConfiguration/sourceControlConfigurations/"
	key := base64.StdEncoding.EncodeToString([]byte(armtest.SSHKeyPEM()))
	const secret = "c2VjcmV0LXRoYXQtbXVzdC1ub3QtbGVhaw=="
	body := `{"properties":{"repositoryUrl":"git@127.0.0.1:team/app.git","operatorType":"flux",` +
		`"operatorParams":"  --git-branch=main --git-readonly  ","operatorScope":"cluster",` +
		`"configurationProtectedSettings":{"sshPrivateKey":"` + key + `","somethingElse":"` + secret + `"}}}`
	status, out := f.raw(http.MethodPut, base+"cfg?api-version=2022-03-01", token, body)
	if status != http.StatusCreated {
		t.Fatalf("PUT: %d %s", status, out)
	}
	if strings.Contains(string(out), secret) {
		t.Fatalf("a protected setting came back: %s", out)
	}

	type props struct {
		OperatorType                   string          `json:"operatorType"`
		OperatorParams                 string          `json:"operatorParams"`
		SSHKnownHostsContents          *string         `json:"sshKnownHostsContents"`
		ConfigurationProtectedSettings json.RawMessage `json:"configurationProtectedSettings"`
		CreationTime                   string          `json:"creationTime"`
		ComplianceStatus               struct {
			LastConfigApplied string `json:"lastConfigApplied"`
			MessageLevel      string `json:"messageLevel"`
		} `json:"complianceStatus"`
	}
	for _, tc := range []struct {
		version, level, last string
		protected            string // the raw member, "" when absent
		creationTime         bool
	}{
		{"2019-11-01-preview", "3", "0001-01-01T00:00:00", "", true},
		{"2020-10-01-preview", "3", "0001-01-01T00:00:00", "{}", false},
		{"2021-03-01", "Information", "0001-01-01T00:00:00+00:00", "{}", false},
		{"2022-03-01", "Information", "0001-01-01T00:00:00+00:00", "{}", false},
		{"2024-11-01", "Information", "0001-01-01T00:00:00+00:00", "{}", false},
	} {
		status, out := f.raw(http.MethodGet, base+"cfg?api-version="+tc.version, token, "")
		if status != http.StatusOK {
			t.Fatalf("%s GET: %d %s", tc.version, status, out)
		}
		var got struct{ Properties props }
		if err := json.Unmarshal(out, &got); err != nil {
			t.Fatal(err)
		}
		p := got.Properties
		if p.OperatorType != "Flux" || p.OperatorParams != "--git-branch=main --git-readonly" || p.SSHKnownHostsContents != nil {
			t.Errorf("%s: operatorType %q, operatorParams %q, sshKnownHostsContents %v; want \"Flux\", trimmed, null",
				tc.version, p.OperatorType, p.OperatorParams, p.SSHKnownHostsContents)
		}
		if !strings.Contains(string(out), `"sshKnownHostsContents":null`) {
			t.Errorf("%s: sshKnownHostsContents is not written as null: %s", tc.version, out)
		}
		if p.ComplianceStatus.MessageLevel != tc.level || p.ComplianceStatus.LastConfigApplied != tc.last {
			t.Errorf("%s: pending messageLevel %q, lastConfigApplied %q; want %q, %q",
				tc.version, p.ComplianceStatus.MessageLevel, p.ComplianceStatus.LastConfigApplied, tc.level, tc.last)
		}
		if string(p.ConfigurationProtectedSettings) != tc.protected {
			t.Errorf("%s: configurationProtectedSettings %s, want %q", tc.version, p.ConfigurationProtectedSettings, tc.protected)
		}
		if (p.CreationTime != "") != tc.creationTime {
			t.Errorf("%s: creationTime %q", tc.version, p.CreationTime)
		}
	}

	// A missing configuration: the provider's own 404 sentence, in the
	// error shape of the version.
	for _, tc := range []struct{ version, want string }{
		{"2021-03-01", `{"error":{"code":"NotFound","message":"SourceControlConfiguration with name 'nope' not found."}}`},
		{"2022-03-01", `{"error":{"code":"NotFound","message":"SourceControlConfiguration with name 'nope' not found.","details":[],"additionalInfo":[]}}`},
	} {
		status, out := f.raw(http.MethodGet, base+"nope?api-version="+tc.version, token, "")
		if status != http.StatusNotFound || strings.TrimSpace(string(out)) != tc.want {
			t.Errorf("%s missing configuration: %d %s\nwant 404 %s", tc.version, status, out, tc.want)
		}
	}
}
