package engine

import (
	"bytes"
	"errors"
	"reflect"
	"strings"
	"testing"
)

// The upstream files' sizes at Azure/azure-policy f7319d6e (read with the
// index's read_file: total_chars); all ASCII, so bytes.
var upstreamSizes = map[string]int{
	BuiltInGitOpsNoSecrets: 12645,
	BuiltInGitOpsSSH:       15083,
	BuiltInGitOpsHTTPS:     15001,
}

func TestBuiltInsAreTheUpstreamDocuments(t *testing.T) {
	all := BuiltIns()
	if len(all) != 3 {
		t.Fatalf("BuiltIns() = %d definitions, want 3", len(all))
	}
	wantParams := map[string][]string{
		BuiltInGitOpsNoSecrets: nil,
		BuiltInGitOpsSSH:       {"sshKnownHostsContents", "keyVaultResourceId", "sshPrivateKeyKeyVaultSecretName"},
		BuiltInGitOpsHTTPS:     {"keyVaultResourceId", "httpsUserKeyVaultSecretName", "httpsKeyKeyVaultSecretName"},
	}
	common := []string{"configurationResourceName", "operatorInstanceName", "operatorNamespace", "operatorScope",
		"operatorType", "operatorParams", "repositoryUrl", "enableHelmOperator", "chartVersion", "chartValues"}
	for i, name := range []string{BuiltInGitOpsNoSecrets, BuiltInGitOpsSSH, BuiltInGitOpsHTTPS} {
		raw := all[i]
		if len(raw) != upstreamSizes[name] {
			t.Errorf("%s: %d bytes, upstream has %d", name, len(raw), upstreamSizes[name])
		}
		if bytes.HasSuffix(raw, []byte("\n")) {
			t.Errorf("%s: trailing newline; upstream has none", name)
		}
		def, err := ParseDefinition("", raw)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if def.Name != name || def.ID != "/providers/Microsoft.Authorization/policyDefinitions/"+name {
			t.Errorf("%s: name %q id %q", name, def.Name, def.ID)
		}
		if def.Mode != "Indexed" || def.Version != "1.1.0" || def.PolicyType != "BuiltIn" || def.Metadata["category"] != "Kubernetes" {
			t.Errorf("%s: mode %q version %q type %q metadata %v", name, def.Mode, def.Version, def.PolicyType, def.Metadata)
		}
		if !strings.HasPrefix(def.DisplayName, "Configure Kubernetes clusters with specified GitOps configuration using ") {
			t.Errorf("%s: displayName %q", name, def.DisplayName)
		}
		var got []string
		for _, p := range def.Parameters {
			got = append(got, p.Name)
		}
		want := append(append(append([]string{}, common...), wantParams[name]...), "effect")
		if !reflect.DeepEqual(got, want) {
			t.Errorf("%s: parameters in document order\n got %v\nwant %v", name, got, want)
		}
		d := def.Rule.Details
		if d.Type != "Microsoft.KubernetesConfiguration/sourceControlConfigurations" || d.DeploymentScope != "ResourceGroup" ||
			d.EvaluationDelay.Duration != DefaultEvaluationDelay || len(d.RoleDefinitionIDs) != 1 ||
			!strings.HasSuffix(d.RoleDefinitionIDs[0], "b24988ac-6180-42a0-ab88-20f7382dd24c") || !def.CanDeploy() {
			t.Errorf("%s: details %+v", name, d)
		}
		if again, ok := BuiltIn(strings.ToUpper(name)); !ok || !bytes.Equal(again, raw) {
			t.Errorf("BuiltIn(%s) by upper-case name failed", name)
		}
	}
	all[0][0] = 'X' // callers get copies
	if BuiltIns()[0][0] != '{' {
		t.Error("BuiltIns returned shared memory")
	}
	if _, ok := BuiltIn("00000000-0000-0000-0000-000000000000"); ok {
		t.Error("BuiltIn found an unknown name")
	}
}

// evalBuiltin evaluates a built-in against a cluster with the given
// configurations in the store.
func evalBuiltin(t *testing.T, eng *Engine, name string, assigned map[string]any, cluster Resource, related ...Resource) *Result {
	t.Helper()
	def := mustBuiltin(t, name)
	params := mustResolve(t, def, assigned)
	st := newStore(related...)
	res, err := eng.Evaluate(def, params, Input{Resource: cluster, Related: st.related})
	if err != nil {
		t.Fatalf("Evaluate: %v", err)
	}
	return res
}

func TestBuiltInCompliance(t *testing.T) {
	cc := connectedCluster("edge-01")
	mc := managedCluster("aks-01")
	withParams := func(edit func(map[string]any)) map[string]any {
		p := gitopsParams()
		edit(p)
		return p
	}
	sshParams := withParams(func(p map[string]any) { p["sshKnownHostsContents"] = "Z2l0aHViLmNvbSBzc2gtcnNh" })
	tests := []struct {
		name     string
		def      string
		assigned map[string]any
		cluster  Resource
		related  []Resource
		want     ComplianceState
		total    int
	}{
		{"no configuration", BuiltInGitOpsNoSecrets, gitopsParams(), cc, nil, NonCompliant, 0},
		{"matching configuration", BuiltInGitOpsNoSecrets, gitopsParams(), cc, []Resource{config(cc, "cluster-config", nil)}, Compliant, 1},
		{"configuration of another name does not count", BuiltInGitOpsNoSecrets, gitopsParams(), cc, []Resource{config(cc, "other", nil)}, NonCompliant, 0},
		{"configuration on another cluster does not count", BuiltInGitOpsNoSecrets, gitopsParams(), cc, []Resource{config(connectedCluster("edge-02"), "cluster-config", nil)}, NonCompliant, 0},
		{"managed cluster, matching", BuiltInGitOpsNoSecrets, gitopsParams(), mc, []Resource{config(mc, "cluster-config", nil)}, Compliant, 1},
		{"managed cluster, none", BuiltInGitOpsHTTPS, gitopsParams(), mc, nil, NonCompliant, 0},
		{"repositoryUrl differs", BuiltInGitOpsNoSecrets, gitopsParams(), cc, []Resource{config(cc, "cluster-config", func(p map[string]any) {
			p["repositoryUrl"] = "https://github.com/Azure/other"
		})}, NonCompliant, 1},
		{"repositoryUrl differs only in case", BuiltInGitOpsNoSecrets, gitopsParams(), cc, []Resource{config(cc, "cluster-config", func(p map[string]any) {
			p["repositoryUrl"] = "HTTPS://GITHUB.COM/azure/ARC-K8S-DEMO"
		})}, Compliant, 1},
		{"operatorParams differ", BuiltInGitOpsNoSecrets, gitopsParams(), cc, []Resource{config(cc, "cluster-config", func(p map[string]any) {
			p["operatorParams"] = "--git-readonly --git-path=prod"
		})}, NonCompliant, 1},
		{"operatorParams as assigned", BuiltInGitOpsNoSecrets, withParams(func(p map[string]any) { p["operatorParams"] = "--git-path=prod" }),
			cc, []Resource{config(cc, "cluster-config", func(p map[string]any) { p["operatorParams"] = "--git-path=prod" })}, Compliant, 1},
		{"operatorParams with the readonly flag the RP adds", BuiltInGitOpsNoSecrets, withParams(func(p map[string]any) { p["operatorParams"] = "--git-path=prod" }),
			cc, []Resource{config(cc, "cluster-config", func(p map[string]any) { p["operatorParams"] = "--git-readonly --git-path=prod" })}, Compliant, 1},
		{"operatorParams missing equals the empty default", BuiltInGitOpsNoSecrets, gitopsParams(), cc, []Resource{config(cc, "cluster-config", func(p map[string]any) {
			delete(p, "operatorParams")
		})}, Compliant, 1},
		{"helm enabled, chartVersion differs", BuiltInGitOpsNoSecrets, gitopsParams(), cc, []Resource{config(cc, "cluster-config", func(p map[string]any) {
			p["helmOperatorProperties"] = map[string]any{"chartVersion": "1.4.0", "chartValues": ""}
		})}, NonCompliant, 1},
		{"helm enabled, chartValues differ", BuiltInGitOpsNoSecrets, gitopsParams(), cc, []Resource{config(cc, "cluster-config", func(p map[string]any) {
			p["helmOperatorProperties"] = map[string]any{"chartVersion": "1.2.0", "chartValues": "--set helm.versions=v3"}
		})}, NonCompliant, 1},
		{"helm enabled with assigned chart values", BuiltInGitOpsNoSecrets, withParams(func(p map[string]any) {
			p["chartValues"], p["chartVersion"] = "--set helm.versions=v3", "1.4.0"
		}), cc, []Resource{config(cc, "cluster-config", func(p map[string]any) {
			p["helmOperatorProperties"] = map[string]any{"chartVersion": "1.4.0", "chartValues": "--set helm.versions=v3"}
		})}, Compliant, 1},
		{"helm disabled ignores chart values", BuiltInGitOpsNoSecrets, withParams(func(p map[string]any) { p["enableHelmOperator"] = "false" }),
			cc, []Resource{config(cc, "cluster-config", func(p map[string]any) {
				p["enableHelmOperator"] = false
				p["helmOperatorProperties"] = map[string]any{"chartVersion": "9.9.9", "chartValues": "--set x=y"}
			})}, Compliant, 1},
		{"helm disabled on the cluster although the policy enables it still complies", BuiltInGitOpsNoSecrets, gitopsParams(),
			cc, []Resource{config(cc, "cluster-config", func(p map[string]any) { p["enableHelmOperator"] = false })}, Compliant, 1},
		{"enableHelmOperator stored as a string", BuiltInGitOpsNoSecrets, gitopsParams(), cc, []Resource{config(cc, "cluster-config", func(p map[string]any) {
			p["enableHelmOperator"] = "True"
		})}, Compliant, 1},
		{"enableHelmOperator missing", BuiltInGitOpsNoSecrets, gitopsParams(), cc, []Resource{config(cc, "cluster-config", func(p map[string]any) {
			delete(p, "enableHelmOperator")
		})}, NonCompliant, 1},
		{"flux state is not part of compliance", BuiltInGitOpsNoSecrets, gitopsParams(), cc, []Resource{config(cc, "cluster-config", func(p map[string]any) {
			p["complianceStatus"] = map[string]any{"complianceState": "Failed"}
			p["provisioningState"] = "Failed"
			p["operatorNamespace"], p["operatorScope"] = "elsewhere", "namespace"
		})}, Compliant, 1},
		{"ssh: known hosts match", BuiltInGitOpsSSH, sshParams, cc, []Resource{config(cc, "cluster-config", func(p map[string]any) {
			p["sshKnownHostsContents"] = "Z2l0aHViLmNvbSBzc2gtcnNh"
		})}, Compliant, 1},
		{"ssh: known hosts differ", BuiltInGitOpsSSH, sshParams, cc, []Resource{config(cc, "cluster-config", func(p map[string]any) {
			p["sshKnownHostsContents"] = "b3RoZXI="
		})}, NonCompliant, 1},
		{"ssh: default known hosts and none stored", BuiltInGitOpsSSH, gitopsParams(), cc, []Resource{config(cc, "cluster-config", nil)}, Compliant, 1},
		{"no secrets policy ignores known hosts", BuiltInGitOpsNoSecrets, gitopsParams(), cc, []Resource{config(cc, "cluster-config", func(p map[string]any) {
			p["sshKnownHostsContents"] = "b3RoZXI="
		})}, Compliant, 1},
		{"https: matching", BuiltInGitOpsHTTPS, gitopsParams(), cc, []Resource{config(cc, "cluster-config", nil)}, Compliant, 1},
	}
	eng := New(Options{})
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			res := evalBuiltin(t, eng, tc.def, tc.assigned, tc.cluster, tc.related...)
			if !res.Applicable || !res.IfMatched || res.Effect != "deployifnotexists" {
				t.Fatalf("applicable %v if %v effect %q", res.Applicable, res.IfMatched, res.Effect)
			}
			if res.ComplianceState != tc.want {
				t.Errorf("compliance = %s, want %s; existence %+v", res.ComplianceState, tc.want, res.ExistenceExpressions)
			}
			d := res.IfNotExistsDetails
			if d == nil || d.TotalResources != tc.total {
				t.Fatalf("ifNotExistsDetails = %+v, want total %d", d, tc.total)
			}
			wantID := ""
			if tc.total > 0 {
				wantID = tc.cluster.ID() + "/providers/Microsoft.KubernetesConfiguration/sourceControlConfigurations/cluster-config"
			}
			if d.ResourceID != wantID {
				t.Errorf("ifNotExistsDetails.resourceId = %q, want %q", d.ResourceID, wantID)
			}
			if res.Query.ID != tc.cluster.ID()+"/providers/Microsoft.KubernetesConfiguration/sourceControlConfigurations/cluster-config" || res.Query.Scope != tc.cluster.ID() {
				t.Errorf("query = %+v", res.Query)
			}
			if len(res.EvaluatedExpressions) != 1 || res.EvaluatedExpressions[0].Operator != "In" || res.EvaluatedExpressions[0].Result != "True" ||
				res.EvaluatedExpressions[0].ExpressionValue != tc.cluster.Type() {
				t.Errorf("evaluated expressions = %+v", res.EvaluatedExpressions)
			}
		})
	}
}

func TestBuiltInEffects(t *testing.T) {
	cc := connectedCluster("edge-01")
	for _, tc := range []struct {
		effect     string
		applicable bool
		want       string
	}{
		{"DeployIfNotExists", true, "deployifnotexists"},
		{"deployIfNotExists", true, "deployifnotexists"},
		{"AuditIfNotExists", true, "auditifnotexists"},
		{"auditIfNotExists", true, "auditifnotexists"},
		{"Disabled", false, "disabled"},
		{"disabled", false, "disabled"},
	} {
		p := gitopsParams()
		p["effect"] = tc.effect
		res := evalBuiltin(t, New(Options{}), BuiltInGitOpsNoSecrets, p, cc)
		if res.Applicable != tc.applicable || res.Effect != tc.want {
			t.Errorf("effect %s: applicable %v effect %q, want %v %q", tc.effect, res.Applicable, res.Effect, tc.applicable, tc.want)
		}
		if !tc.applicable && (res.ComplianceState != "" || res.IfNotExistsDetails != nil) {
			t.Errorf("effect %s: a disabled policy has no state, got %+v", tc.effect, res)
		}
	}
	// The default effect is DeployIfNotExists.
	if res := evalBuiltin(t, New(Options{}), BuiltInGitOpsSSH, gitopsParams(), cc); res.Effect != "deployifnotexists" {
		t.Errorf("default effect = %q", res.Effect)
	}
}

func TestBuiltInNotApplicable(t *testing.T) {
	storage := Resource{
		"id":       "/subscriptions/" + testSub + "/resourceGroups/rg/providers/Microsoft.Storage/storageAccounts/sa1",
		"name":     "sa1",
		"type":     "Microsoft.Storage/storageAccounts",
		"location": "westeurope",
	}
	rg := Resource{"id": "/subscriptions/" + testSub + "/resourceGroups/rg", "name": "rg", "type": "Microsoft.Resources/resourceGroups", "location": "westeurope"}
	noLocation := connectedCluster("x")
	delete(noLocation, "location")
	for name, r := range map[string]Resource{"storage account": storage, "resource group": rg, "cluster without location": noLocation} {
		res := evalBuiltin(t, New(Options{}), BuiltInGitOpsNoSecrets, gitopsParams(), r)
		if res.Applicable || res.ComplianceState != "" || res.NotApplicableReason == "" {
			t.Errorf("%s: %+v", name, res)
		}
	}
}

func TestReadOnlyNormalisation(t *testing.T) {
	cc := connectedCluster("edge-01")
	for _, tc := range []struct {
		mode   ReadOnlyNormalisation
		stored string
		params string
		want   ComplianceState
	}{
		{Converge, "--git-readonly", "", Compliant},
		{Literal, "--git-readonly", "", NonCompliant},
		{Converge, "--git-readonly ", "", Compliant},
		{Literal, "--git-readonly ", "", Compliant},
		{Converge, "", "", Compliant},
		{Literal, "", "", Compliant},
		{Converge, "--git-readonly  --git-path=x", "--git-path=x", Compliant},
		{Literal, "--git-readonly  --git-path=x", "--git-path=x", NonCompliant},
		{Converge, "--git-path=y", "--git-path=x", NonCompliant},
		{Converge, "--git-readonly", "--git-path=x", NonCompliant},
	} {
		p := gitopsParams()
		p["operatorParams"] = tc.params
		res := evalBuiltin(t, New(Options{ReadOnlyNormalisation: tc.mode}), BuiltInGitOpsNoSecrets, p, cc,
			config(cc, "cluster-config", func(m map[string]any) { m["operatorParams"] = tc.stored }))
		if res.ComplianceState != tc.want {
			t.Errorf("%s: stored %q param %q: %s, want %s", tc.mode, tc.stored, tc.params, res.ComplianceState, tc.want)
		}
	}
	if New(Options{}).opts.ReadOnlyNormalisation != Converge {
		t.Error("the zero Options must converge")
	}
	for s, want := range map[string]ReadOnlyNormalisation{"": Converge, "converge": Converge, "LITERAL": Literal} {
		if got, err := ParseReadOnlyNormalisation(s); err != nil || got != want || (s != "" && !strings.EqualFold(got.String(), s)) {
			t.Errorf("ParseReadOnlyNormalisation(%q) = %v, %v", s, got, err)
		}
	}
	if _, err := ParseReadOnlyNormalisation("trim"); err == nil {
		t.Error("ParseReadOnlyNormalisation accepted trim")
	}
}

func TestBuiltInParameters(t *testing.T) {
	def := mustBuiltin(t, BuiltInGitOpsSSH)
	p := mustResolve(t, def, gitopsParams())
	wantDefaults := map[string]any{"operatorType": "Flux", "operatorParams": "", "enableHelmOperator": "true",
		"chartVersion": "1.2.0", "chartValues": "", "sshKnownHostsContents": "", "keyVaultResourceId": "",
		"sshPrivateKeyKeyVaultSecretName": "", "effect": "DeployIfNotExists", "operatorScope": "cluster"}
	for k, v := range wantDefaults {
		if p[k] != v {
			t.Errorf("%s = %#v, want %#v", k, p[k], v)
		}
	}
	if len(p) != 14 {
		t.Errorf("%d parameters resolved, want 14", len(p))
	}
	// Names are matched case-insensitively and come back as declared.
	p2 := mustResolve(t, def, map[string]any{"CONFIGURATIONRESOURCENAME": "a", "operatorinstancename": "b", "operatorNamespace": "c", "repositoryUrl": "d"})
	if p2["configurationResourceName"] != "a" || p2["operatorInstanceName"] != "b" {
		t.Errorf("case-insensitive names: %v", p2)
	}

	for _, tc := range []struct {
		name     string
		assigned map[string]any
		code     string
		message  string
	}{
		{"required missing", map[string]any{"operatorNamespace": "x"}, CodeMissingPolicyParameter,
			"The policy assignment 'gitops-baseline' is missing the parameter(s) 'configurationResourceName,operatorInstanceName,repositoryUrl' as defined in the policy definition '" + BuiltInGitOpsSSH + "'."},
		{"null is not given", merge(gitopsParams(), map[string]any{"repositoryUrl": nil}), CodeMissingPolicyParameter, ""},
		{"undefined", merge(gitopsParams(), map[string]any{"gitUser": "x", "branch": "main"}), CodeUndefinedPolicyParameter,
			"The policy assignment 'gitops-baseline' has the parameter(s) 'branch,gitUser' which are not defined in the policy definition '" + BuiltInGitOpsSSH + "'."},
		{"allowed values are case-sensitive", merge(gitopsParams(), map[string]any{"operatorScope": "Cluster"}), CodePolicyParameterValueNotAllowed,
			"The value 'Cluster' is not allowed for policy parameter 'operatorScope' in policy definition '" + BuiltInGitOpsSSH + "'. The allowed values are 'cluster, namespace'."},
		{"effect outside allowed", merge(gitopsParams(), map[string]any{"effect": "Deny"}), CodePolicyParameterValueNotAllowed, ""},
		{"boolean for a string", merge(gitopsParams(), map[string]any{"enableHelmOperator": true}), CodeInvalidPolicyParameters,
			"The policy assignment 'gitops-baseline' parameter 'enableHelmOperator' value does not match the expected parameter type defined in the policy definition '" + BuiltInGitOpsSSH + "'. Details 'The expected policy parameter type: 'String'. The actual policy parameter type 'Boolean'.'."},
	} {
		_, err := def.ResolveParameters("gitops-baseline", tc.assigned)
		e := wantCode(t, err, tc.code)
		if tc.message != "" && e.Message != tc.message {
			t.Errorf("%s:\n got %s\nwant %s", tc.name, e.Message, tc.message)
		}
	}
}

func merge(a, b map[string]any) map[string]any {
	out := map[string]any{}
	for k, v := range a {
		out[k] = v
	}
	for k, v := range b {
		out[k] = v
	}
	return out
}

func TestBuiltInDeployment(t *testing.T) {
	cc, mc := connectedCluster("edge-01"), managedCluster("aks-01")
	secrets := map[string]string{"ssh-key": "LS0tLS1CRUdJTiBPUEVOU1NI", "https-user": "Z2l0", "https-key": "dG9rZW4="}
	var refs []KeyVaultReference
	resolve := func(ref KeyVaultReference) (string, error) {
		refs = append(refs, ref)
		s, ok := secrets[ref.SecretName]
		if !ok {
			return "", errors.New("secret not found")
		}
		return s, nil
	}
	vault := "/subscriptions/" + testSub + "/resourceGroups/rg-kv/providers/Microsoft.KeyVault/vaults/kv1"
	for _, tc := range []struct {
		def       string
		cluster   Resource
		extra     map[string]any
		protected map[string]any
		refs      int
	}{
		{BuiltInGitOpsNoSecrets, cc, nil, nil, 0},
		{BuiltInGitOpsNoSecrets, mc, nil, nil, 0},
		{BuiltInGitOpsSSH, cc, map[string]any{"keyVaultResourceId": vault, "sshPrivateKeyKeyVaultSecretName": "ssh-key", "sshKnownHostsContents": "a2g="},
			map[string]any{"sshPrivateKey": secrets["ssh-key"]}, 1},
		{BuiltInGitOpsHTTPS, mc, map[string]any{"keyVaultResourceId": vault, "httpsUserKeyVaultSecretName": "https-user", "httpsKeyKeyVaultSecretName": "https-key"},
			map[string]any{"httpsUser": secrets["https-user"], "httpsKey": secrets["https-key"]}, 2},
	} {
		t.Run(tc.def+"/"+tc.cluster.Type(), func(t *testing.T) {
			refs = nil
			def := mustBuiltin(t, tc.def)
			params := mustResolve(t, def, merge(gitopsParams(), tc.extra))
			dep, err := New(Options{}).Deployment(def, params, Input{Resource: tc.cluster, ResolveSecret: resolve})
			if err != nil {
				t.Fatalf("Deployment: %v", err)
			}
			if len(dep.Resources) != 1 {
				t.Fatalf("%d resources deploy, want exactly the one for %s", len(dep.Resources), tc.cluster.Type())
			}
			r := dep.Resources[0]
			wantID := tc.cluster.ID() + "/providers/Microsoft.KubernetesConfiguration/sourceControlConfigurations/cluster-config"
			if r.ID != wantID || r.APIVersion != "2021-03-01" || r.Type != "Microsoft.KubernetesConfiguration/sourceControlConfigurations" ||
				r.TemplateType != tc.cluster.Type()+"/providers/sourceControlConfigurations" || r.Name != tc.cluster.Name()+"/Microsoft.KubernetesConfiguration/cluster-config" {
				t.Errorf("resource %s %s %s %s %s", r.ID, r.Type, r.TemplateType, r.Name, r.APIVersion)
			}
			props := r.Body["properties"].(map[string]any)
			want := map[string]any{
				"operatorInstanceName": "cluster-config", "operatorNamespace": "cluster-config", "operatorScope": "cluster",
				"operatorType": "Flux", "operatorParams": "", "repositoryUrl": "https://github.com/Azure/arc-k8s-demo",
				"enableHelmOperator":     "true", // a string: template parameters are strings
				"helmOperatorProperties": map[string]any{"chartVersion": "1.2.0", "chartValues": ""},
			}
			if tc.def == BuiltInGitOpsSSH {
				want["sshKnownHostsContents"] = "a2g="
			}
			if tc.protected != nil {
				want["configurationProtectedSettings"] = tc.protected
			}
			if !reflect.DeepEqual(props, want) {
				t.Errorf("properties\n got %#v\nwant %#v", props, want)
			}
			if len(r.Body) != 1 {
				t.Errorf("body has more than properties: %v", sortedKeys(r.Body))
			}
			if dep.Scope != "ResourceGroup" || dep.ResourceGroup != map[bool]string{true: "rg-fleet", false: "rg-aks"}[tc.cluster.Type() == cc.Type()] ||
				dep.SubscriptionID != testSub || dep.Mode != "incremental" {
				t.Errorf("deployment %s %s %s %s", dep.Scope, dep.SubscriptionID, dep.ResourceGroup, dep.Mode)
			}
			if got := dep.Parameters["clusterResourceType"]; !reflect.DeepEqual(got, map[string]any{"value": tc.cluster.Type()}) {
				t.Errorf("clusterResourceType = %v", got)
			}
			if got := dep.Parameters["clusterLocation"]; !reflect.DeepEqual(got, map[string]any{"value": tc.cluster.Location()}) {
				t.Errorf("clusterLocation = %v", got)
			}
			if len(refs) != tc.refs {
				t.Errorf("%d secrets resolved, want %d", len(refs), tc.refs)
			}
			for _, ref := range refs {
				if ref.VaultID != vault {
					t.Errorf("reference %+v", ref)
				}
				// The reference stays a reference in the recorded parameters.
				entry := dep.Parameters[ref.Parameter].(map[string]any)
				if _, ok := entry["value"]; ok || entry["reference"].(map[string]any)["secretName"] != ref.SecretName {
					t.Errorf("deployment parameter %s = %v", ref.Parameter, entry)
				}
			}
		})
	}
	t.Run("unresolved reference", func(t *testing.T) {
		def := mustBuiltin(t, BuiltInGitOpsSSH)
		_, err := New(Options{}).Deployment(def, mustResolve(t, def, gitopsParams()), Input{Resource: cc})
		if !errors.Is(err, ErrUnresolvedReference) {
			t.Fatalf("err = %v, want ErrUnresolvedReference", err)
		}
	})
	t.Run("resolver failure", func(t *testing.T) {
		def := mustBuiltin(t, BuiltInGitOpsHTTPS)
		_, err := New(Options{}).Deployment(def, mustResolve(t, def, gitopsParams()), Input{Resource: cc, ResolveSecret: resolve})
		if err == nil || !strings.Contains(err.Error(), "secret not found") {
			t.Fatalf("err = %v", err)
		}
	})
}

// TestDeploymentConverges closes the loop: what the deployment PUTs, stored
// the way the resource provider stores it, satisfies the existence
// condition.
func TestDeploymentConverges(t *testing.T) {
	for _, helm := range []string{"true", "false"} {
		for _, name := range []string{BuiltInGitOpsNoSecrets, BuiltInGitOpsSSH, BuiltInGitOpsHTTPS} {
			cc := connectedCluster("edge-07")
			def := mustBuiltin(t, name)
			params := mustResolve(t, def, merge(gitopsParams(), map[string]any{"enableHelmOperator": helm, "chartValues": "--set helm.versions=v3"}))
			dep, err := New(Options{}).Deployment(def, params, Input{Resource: cc, ResolveSecret: func(KeyVaultReference) (string, error) { return "c2VjcmV0", nil }})
			if err != nil {
				t.Fatal(err)
			}
			r := dep.Resources[0]
			props := deepCopy(r.Body["properties"]).(map[string]any)
			delete(props, "configurationProtectedSettings")                     // write-only
			props["enableHelmOperator"] = props["enableHelmOperator"] == "true" // the RP stores a bool
			props["operatorParams"] = "--git-readonly"                          // the RP adds the flag
			stored := Resource{"id": r.ID, "name": "cluster-config", "type": r.Type, "properties": props}
			st := newStore(stored)
			res, err := New(Options{}).Evaluate(def, params, Input{Resource: cc, Related: st.related})
			if err != nil {
				t.Fatal(err)
			}
			if res.ComplianceState != Compliant {
				t.Errorf("%s helm=%s: %s after deploying; %+v", name, helm, res.ComplianceState, res.ExistenceExpressions)
			}
			res, err = New(Options{ReadOnlyNormalisation: Literal}).Evaluate(def, params, Input{Resource: cc, Related: st.related})
			if err != nil || res.ComplianceState != NonCompliant {
				t.Errorf("%s helm=%s literal: %v %v, want the trap to keep it NonCompliant", name, helm, res.ComplianceState, err)
			}
		}
	}
}

// TestConcurrentUse evaluates and renders one parsed definition from many
// goroutines; with -race it proves the engine shares nothing mutable.
func TestConcurrentUse(t *testing.T) {
	def := mustBuiltin(t, BuiltInGitOpsSSH)
	params := mustResolve(t, def, gitopsParams())
	eng := New(Options{})
	done := make(chan error)
	for i := 0; i < 8; i++ {
		go func() {
			cc := connectedCluster("edge-01")
			st := newStore(config(cc, "cluster-config", nil))
			in := Input{Resource: cc, Related: st.related, ResolveSecret: func(KeyVaultReference) (string, error) { return "k", nil }}
			for j := 0; j < 20; j++ {
				if _, err := eng.Evaluate(def, params, in); err != nil {
					done <- err
					return
				}
				if _, err := eng.Deployment(def, params, in); err != nil {
					done <- err
					return
				}
			}
			done <- nil
		}()
	}
	for i := 0; i < 8; i++ {
		if err := <-done; err != nil {
			t.Fatal(err)
		}
	}
}

// TestEvaluateFillsDefaults: parameters the caller leaves out fall back to
// their defaults, and a stray related resource the store returns is not
// counted.
func TestEvaluateFillsDefaults(t *testing.T) {
	def := mustBuiltin(t, BuiltInGitOpsNoSecrets)
	cc := connectedCluster("edge-01")
	junk := []Resource{
		config(connectedCluster("edge-02"), "cluster-config", nil), // another cluster's
		{"id": cc.ID() + "/providers/Microsoft.KubernetesConfiguration/extensions/cluster-config", "name": "cluster-config", "type": "Microsoft.KubernetesConfiguration/extensions"},
		nil,
	}
	res, err := New(Options{}).Evaluate(def, gitopsParams(), Input{Resource: cc,
		Related: func(RelatedQuery) ([]Resource, error) { return append(junk, config(cc, "cluster-config", nil)), nil }})
	if err != nil {
		t.Fatal(err)
	}
	if res.Effect != "deployifnotexists" || res.ComplianceState != Compliant || res.IfNotExistsDetails.TotalResources != 1 {
		t.Errorf("%+v %+v", res, res.IfNotExistsDetails)
	}
	res, err = New(Options{}).Evaluate(def, gitopsParams(), Input{Resource: cc,
		Related: func(RelatedQuery) ([]Resource, error) { return junk, nil }})
	if err != nil || res.ComplianceState != NonCompliant || res.IfNotExistsDetails.TotalResources != 0 {
		t.Errorf("junk only: %+v %v", res, err)
	}
	// A required parameter that was never resolved is an evaluation error.
	if _, err := New(Options{}).Evaluate(def, nil, Input{Resource: cc}); !errors.Is(err, ErrEvaluation) {
		t.Errorf("err = %v", err)
	}
}
