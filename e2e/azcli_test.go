package e2e_test

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore/runtime"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/to"
	"github.com/Azure/azure-sdk-for-go/sdk/resourcemanager/resources/armresources"
	"github.com/google/uuid"
	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"github.com/gitopsim/gitopsim/sim"
	"github.com/gitopsim/gitopsim/sim/azsdk"
)

// azCLI runs the real Azure CLI (Debian's azure-cli) as a user who has only
// endpoints.json: a private config dir, gitopsim's CA for TLS, and nothing
// else (no proxy settings, no patched az). Everything az prints is kept,
// so that a spec can check no secret ever shows up in it.
type azCLI struct {
	env []string

	mu  sync.Mutex
	out strings.Builder
}

func newAzCLI(caFile string) *azCLI {
	GinkgoHelper()
	home := GinkgoT().TempDir()
	return &azCLI{env: []string{
		"PATH=" + os.Getenv("PATH"),
		"HOME=" + home,
		"AZURE_CONFIG_DIR=" + filepath.Join(home, ".azure"),
		// requests (ARM, MSAL) reads REQUESTS_CA_BUNDLE; urllib (cloud
		// metadata from ARM_CLOUD_METADATA_URL) reads SSL_CERT_FILE.
		"REQUESTS_CA_BUNDLE=" + caFile,
		"SSL_CERT_FILE=" + caFile,
		// Telemetry would start an uploader process that has nowhere to go.
		"AZURE_CORE_COLLECT_TELEMETRY=false",
		"LANG=C.UTF-8",
	}}
}

// run runs az and returns its stdout and stderr. Only what az prints is
// kept, not the command line (which carries --password).
func (a *azCLI) run(ctx context.Context, args ...string) (string, string, error) {
	cmd := exec.CommandContext(ctx, "az", args...)
	cmd.Env = a.env
	var stdout, stderr strings.Builder
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	a.mu.Lock()
	a.out.WriteString(stdout.String() + stderr.String())
	a.mu.Unlock()
	return stdout.String(), stderr.String(), err
}

// ok runs az, which must succeed, and returns its stdout.
func (a *azCLI) ok(ctx context.Context, args ...string) string {
	GinkgoHelper()
	stdout, stderr, err := a.run(ctx, args...)
	Expect(err).NotTo(HaveOccurred(), "az %s\n%s", shownArgs(args), stderr)
	return stdout
}

// shownArgs is a command line for a failure message, with the password
// replaced: test output is a report, and secrets stay out of reports.
func shownArgs(args []string) string {
	out := make([]string, len(args))
	for i, a := range args {
		switch {
		case strings.HasPrefix(a, "--password=") || strings.HasPrefix(a, "-p="):
			out[i] = a[:strings.Index(a, "=")+1] + "[redacted]"
		case i > 0 && (args[i-1] == "--password" || args[i-1] == "-p"):
			out[i] = "[redacted]"
		default:
			out[i] = a
		}
	}
	return strings.Join(out, " ")
}

// json runs az with JSON output and decodes it into v.
func (a *azCLI) json(ctx context.Context, v any, args ...string) {
	GinkgoHelper()
	out := a.ok(ctx, append(args, "--output", "json")...)
	Expect(json.Unmarshal([]byte(out), v)).To(Succeed(), "az %s printed:\n%s", shownArgs(args), out)
}

func (a *azCLI) transcript() string {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.out.String()
}

// The Azure CLI needs no workaround: it discovers gitopsim as a custom
// cloud, logs in through the issuer's ADFS authority, and drives resource
// groups, the generic resource API and configurations (az rest).
var _ = Describe("the Azure CLI, unmodified", Label("azcli"), Ordered, func() {
	var (
		ep       *sim.Endpoints
		cli      *azCLI
		sdk      *azsdk.Clients
		groups   *armresources.ResourceGroupsClient
		rg       string
		base     string
		cluster  string
		httpsKey string
	)

	BeforeAll(func() {
		if _, err := exec.LookPath("az"); err != nil {
			Skip("the Azure CLI (az) is not on PATH; `make e2e` installs Debian's azure-cli when it can: " + err.Error())
		}
		var err error
		ep, err = sim.ReadEndpoints(stack.EndpointsPath())
		Expect(err).NotTo(HaveOccurred())
		cli = newAzCLI(ep.ARM.CAFile)
		// The Go SDK sets up what az has no command for (onboarding a
		// cluster) and the neighbours az's filters must leave out.
		sdk, err = azsdk.New(ep.ARM)
		Expect(err).NotTo(HaveOccurred())
		groups, err = armresources.NewResourceGroupsClient(sdk.SubscriptionID, sdk.Credential, sdk.Options)
		Expect(err).NotTo(HaveOccurred())
		base = strings.TrimSuffix(ep.ARM.URL, "/")
		rg = fmt.Sprintf("e2e-azcli-%d", groupSeq.Add(1))
		httpsKey = fmt.Sprintf("azcli-https-key-%d", GinkgoRandomSeed())
	})

	It("registers gitopsim as a cloud, explicitly or from /metadata/endpoints", func(ctx SpecContext) {
		cli.ok(ctx, "cloud", "register", "--name", "gitopsim",
			"--endpoint-resource-manager", base+"/",
			"--endpoint-active-directory", base+"/adfs",
			"--endpoint-active-directory-resource-id", "https://management.core.windows.net/",
			"--endpoint-active-directory-graph-resource-id", "https://graph.windows.net/")

		By("discovering the rest from the resource manager alone")
		cli.ok(ctx, "cloud", "register", "--name", "gitopsim-discovered", "--endpoint-resource-manager", base+"/")
		var endpoints map[string]any
		cli.json(ctx, &endpoints, "cloud", "show", "--name", "gitopsim-discovered", "--query", "endpoints")
		Expect(endpoints).To(HaveKeyWithValue("activeDirectory", base+"/adfs"))
		Expect(endpoints).To(HaveKeyWithValue("activeDirectoryResourceId", "https://management.core.windows.net/"))
		Expect(endpoints).To(HaveKeyWithValue("activeDirectoryGraphResourceId", "https://graph.windows.net/"))
		Expect(endpoints).To(HaveKeyWithValue("resourceManager", base+"/"))

		cli.ok(ctx, "cloud", "set", "--name", "gitopsim")
	}, SpecTimeout(2*time.Minute))

	It("refuses a wrong secret with a clear message, then logs in with the service principal", func(ctx SpecContext) {
		_, stderr, err := cli.run(ctx, "login", "--service-principal", "--username", ep.ARM.ClientID,
			"--password=not-the-secret-e2e", "--tenant", ep.ARM.TenantID)
		Expect(err).To(HaveOccurred())
		Expect(stderr).To(ContainSubstring("AADSTS7000215: Invalid client secret provided"))
		Expect(stderr).NotTo(ContainSubstring("not-the-secret-e2e"))

		var subs []map[string]any
		cli.json(ctx, &subs, "login", "--service-principal", "--username", ep.ARM.ClientID,
			// The = form: a secret may start with '-', which az would
			// take for an option.
			"--password="+ep.ARM.ClientSecret, "--tenant", ep.ARM.TenantID)
		Expect(subs).NotTo(BeEmpty())

		var account map[string]any
		cli.json(ctx, &account, "account", "show")
		Expect(account).To(HaveKeyWithValue("id", ep.ARM.SubscriptionID))
		Expect(account).To(HaveKeyWithValue("tenantId", ep.ARM.TenantID))
		Expect(account).To(HaveKeyWithValue("environmentName", "gitopsim"))
		Expect(account).To(HaveKeyWithValue("managedByTenants", BeEmpty()))
		Expect(account["managedByTenants"]).NotTo(BeNil())
		Expect(account).To(HaveKeyWithValue("user", HaveKeyWithValue("type", "servicePrincipal")))
	}, SpecTimeout(2*time.Minute))

	It("lists locations", func(ctx SpecContext) {
		var names []string
		cli.json(ctx, &names, "account", "list-locations", "--query", "[].name")
		Expect(names).To(ContainElements("eastus", "westeurope"))
		Expect(len(names)).To(BeNumerically(">", 3), "one page, however small the suite's pages are")
	}, SpecTimeout(time.Minute))

	It("creates, shows, lists and checks a resource group", func(ctx SpecContext) {
		_, err := groups.CreateOrUpdate(ctx, rg+"-untagged", armresources.ResourceGroup{Location: to.Ptr("westeurope")}, nil)
		Expect(err).NotTo(HaveOccurred())
		var g map[string]any
		cli.json(ctx, &g, "group", "create", "--name", rg, "--location", "westeurope", "--tags", "suite=azcli")
		Expect(g).To(HaveKeyWithValue("name", rg))
		cli.json(ctx, &g, "group", "show", "--name", rg)
		Expect(g).To(HaveKeyWithValue("location", "westeurope"))
		Expect(g).To(HaveKeyWithValue("tags", HaveKeyWithValue("suite", "azcli")))
		var names []string
		cli.json(ctx, &names, "group", "list", "--tag", "suite=azcli", "--query", "[].name")
		Expect(names).To(Equal([]string{rg}))
		Expect(strings.TrimSpace(cli.ok(ctx, "group", "exists", "--name", rg))).To(Equal("true"))
	}, SpecTimeout(2*time.Minute))

	It("drives a configuration with az rest and finds the cluster with az resource", func(ctx SpecContext) {
		o, err := sdk.Onboard(ctx, rg, "arc-az", "westeurope")
		Expect(err).NotTo(HaveOccurred())
		cluster = o.ID
		_, err = sdk.Onboard(ctx, rg+"-untagged", "arc-other", "westeurope") // what az resource list's filters leave out
		Expect(err).NotTo(HaveOccurred())

		By("PUT, GET, list and DELETE of sourceControlConfigurations, as az k8s-configuration sends them (api-version 2021-03-01)")
		cfgs := cluster + "/providers/Microsoft.KubernetesConfiguration/sourceControlConfigurations"
		url := cfgs + "/cfg-az?api-version=2021-03-01"
		b64 := func(s string) string { return base64.StdEncoding.EncodeToString([]byte(s)) }
		body := fmt.Sprintf(`{"properties":{"repositoryUrl":"https://127.0.0.1/team/app.git","operatorNamespace":"team-az","operatorInstanceName":"team-az",`+
			`"operatorType":"flux","operatorParams":"","configurationProtectedSettings":{"httpsUser":%q,"httpsKey":%q},"operatorScope":"namespace"}}`, b64("azcli"), b64(httpsKey))
		var cfg map[string]any
		cli.json(ctx, &cfg, "rest", "--method", "put", "--url", url, "--body", body)
		Expect(cfg).To(HaveKeyWithValue("properties", HaveKeyWithValue("complianceStatus", HaveKeyWithValue("complianceState", "Pending"))))
		cli.json(ctx, &cfg, "rest", "--method", "get", "--url", url)
		Expect(cfg).To(HaveKeyWithValue("id", HavePrefix(cluster)))
		Expect(cfg).To(HaveKeyWithValue("properties", HaveKeyWithValue("repositoryUrl", "https://127.0.0.1/team/app.git")))
		var names []string
		cli.json(ctx, &names, "rest", "--method", "get", "--url", cfgs+"?api-version=2021-03-01", "--query", "value[].name")
		Expect(names).To(Equal([]string{"cfg-az"}))

		By("az resource list: the cluster, not its configuration (an extension resource)")
		var ids []string
		cli.json(ctx, &ids, "resource", "list", "--resource-group", rg, "--query", "[].id")
		Expect(ids).To(Equal([]string{cluster}))
		cli.json(ctx, &ids, "resource", "list", "--resource-type", "Microsoft.Kubernetes/connectedClusters", "--name", "arc-az", "--query", "[].id")
		Expect(ids).To(Equal([]string{cluster}))

		By("az resource show by group, name and type (an empty parent path, //), and by id")
		var res map[string]any
		cli.json(ctx, &res, "resource", "show", "--resource-group", rg, "--name", "arc-az", "--resource-type", "Microsoft.Kubernetes/connectedClusters")
		Expect(res).To(HaveKeyWithValue("id", cluster))
		Expect(res).To(HaveKeyWithValue("properties", HaveKeyWithValue("provisioningState", "Succeeded")))
		cli.json(ctx, &res, "resource", "show", "--ids", cluster)
		Expect(res).To(HaveKeyWithValue("id", cluster))

		cli.ok(ctx, "rest", "--method", "delete", "--url", url)
		_, stderr, err := cli.run(ctx, "rest", "--method", "get", "--url", url)
		Expect(err).To(HaveOccurred())
		Expect(stderr).To(ContainSubstring("Not Found"))
	}, SpecTimeout(3*time.Minute))

	It("assigns the GitOps built-in, summarizes compliance and remediates with az policy", func(ctx SpecContext) {
		const noSecrets = "1d61c4d2-aef2-432b-87fc-7f96b019b7e1"
		By("az policy definition list: the three Flux v1 GitOps built-ins")
		var names []string
		cli.json(ctx, &names, "policy", "definition", "list", "--query", "[?policyType=='BuiltIn' && contains(displayName, 'GitOps')].name")
		Expect(names).To(ConsistOf(noSecrets, "c050047b-b21b-4822-8a2d-c1e37c3c0c6a", "a6f560f4-f582-4b67-b123-a37dcd1bf7ea"))

		By("az policy assignment create at the resource group, with a system-assigned identity")
		params := `{"configurationResourceName":{"value":"baseline-az"},"operatorInstanceName":{"value":"baseline-az"},` +
			`"operatorNamespace":{"value":"baseline-az"},"operatorScope":{"value":"cluster"},` +
			`"repositoryUrl":{"value":"https://127.0.0.1/team/baseline.git"},"enableHelmOperator":{"value":"false"}}`
		var assignment struct {
			ID       string `json:"id"`
			Identity struct {
				PrincipalID string `json:"principalId"`
			} `json:"identity"`
		}
		cli.json(ctx, &assignment, "policy", "assignment", "create", "--name", "gitops-az", "--policy", noSecrets,
			"--resource-group", rg, "--params", params, "--mi-system-assigned", "--location", "westeurope")
		Expect(assignment.ID).To(HaveSuffix("/resourceGroups/" + rg + "/providers/Microsoft.Authorization/policyAssignments/gitops-az"))
		Expect(assignment.Identity.PrincipalID).NotTo(BeEmpty())

		By("granting the identity Contributor on the group")
		scope := "/subscriptions/" + ep.ARM.SubscriptionID + "/resourceGroups/" + rg
		_, stderr, err := cli.run(ctx, "role", "assignment", "create", "--assignee-object-id", assignment.Identity.PrincipalID,
			"--assignee-principal-type", "ServicePrincipal", "--role", "Contributor", "--scope", scope)
		if err != nil {
			// Debian's az 2.45 crashes here before it sends anything: its
			// role module and the packaged azure-mgmt-authorization
			// disagree ('RoleAssignmentsOperations' object has no
			// attribute 'config'). The same PUT through az rest.
			Expect(stderr).To(ContainSubstring("has no attribute 'config'"), "az role assignment create failed otherwise")
			By("az role assignment create crashes in Debian's az 2.45; the same role assignment with az rest")
			body := fmt.Sprintf(`{"properties":{"roleDefinitionId":"/subscriptions/%s/providers/Microsoft.Authorization/roleDefinitions/b24988ac-6180-42a0-ab88-20f7382dd24c","principalId":%q,"principalType":"ServicePrincipal"}}`,
				ep.ARM.SubscriptionID, assignment.Identity.PrincipalID)
			cli.ok(ctx, "rest", "--method", "put", "--url", scope+"/providers/Microsoft.Authorization/roleAssignments/"+uuid.NewString()+"?api-version=2022-04-01", "--body", body)
		}

		By("the existing cluster is NonCompliant once the assignment is in effect, and nothing is deployed to it")
		clk.Advance(5 * time.Minute)
		var states []string
		cli.json(ctx, &states, "policy", "state", "list", "--resource-group", rg, "--filter", "PolicyAssignmentName eq 'gitops-az'", "--query", "[].complianceState")
		Expect(states).To(Equal([]string{"NonCompliant"}))

		By("az policy state summarize")
		var summary struct {
			Results struct {
				NonCompliantResources int `json:"nonCompliantResources"`
			} `json:"results"`
			PolicyAssignments []struct {
				PolicyAssignmentID string `json:"policyAssignmentId"`
			} `json:"policyAssignments"`
		}
		out, stderr, err := cli.run(ctx, "policy", "state", "summarize", "--resource-group", rg, "-o", "json")
		if err != nil {
			// Debian's az 2.45 calls the packaged azure-mgmt-policyinsights
			// with its arguments one place off, so the path it sends holds
			// Python reprs; gitopsim refuses it as Azure would.
			Expect(stderr).To(ContainSubstring("is not supported; use 'latest'"), "az policy state summarize failed otherwise")
			By("az policy state summarize sends a mangled path in Debian's az 2.45; the same POST with az rest")
			out = cli.ok(ctx, "rest", "--method", "post", "--url", scope+"/providers/Microsoft.PolicyInsights/policyStates/latest/summarize?api-version=2019-10-01", "--query", "value[0]")
		}
		Expect(json.Unmarshal([]byte(out), &summary)).To(Succeed(), out)
		Expect(summary.Results.NonCompliantResources).To(Equal(1))
		Expect(summary.PolicyAssignments).To(HaveLen(1))
		Expect(summary.PolicyAssignments[0].PolicyAssignmentID).To(Equal(assignment.ID))

		By("az policy remediation create: the documented delays on the clock")
		var rem map[string]any
		cli.json(ctx, &rem, "policy", "remediation", "create", "--name", "fix-az", "--resource-group", rg, "--policy-assignment", "gitops-az")
		Expect(rem).To(HaveKeyWithValue("provisioningState", "Accepted"))
		Expect(rem).To(HaveKeyWithValue("resourceDiscoveryMode", "ExistingNonCompliant"))
		clk.Advance(3 * time.Minute)
		cli.json(ctx, &rem, "policy", "remediation", "show", "--name", "fix-az", "--resource-group", rg)
		Expect(rem).To(HaveKeyWithValue("provisioningState", "Succeeded"))
		Expect(rem).To(HaveKeyWithValue("deploymentStatus", And(HaveKeyWithValue("totalDeployments", BeNumerically("==", 1)), HaveKeyWithValue("successfulDeployments", BeNumerically("==", 1)))))
		var deployed []string
		cli.json(ctx, &deployed, "policy", "remediation", "deployment", "list", "--name", "fix-az", "--resource-group", rg, "--query", "[?status=='Succeeded'].remediatedResourceId")
		Expect(deployed).To(Equal([]string{cluster}))
		var cfg map[string]any
		cli.json(ctx, &cfg, "rest", "--method", "get", "--url", cluster+"/providers/Microsoft.KubernetesConfiguration/sourceControlConfigurations/baseline-az?api-version=2021-03-01")
		Expect(cfg).To(HaveKeyWithValue("properties", HaveKeyWithValue("repositoryUrl", "https://127.0.0.1/team/baseline.git")))

		By("Compliant at the cluster's next evaluation, 15 minutes after the deployment")
		clk.Advance(15 * time.Minute)
		cli.json(ctx, &states, "policy", "state", "list", "--resource-group", rg, "--filter", "PolicyAssignmentName eq 'gitops-az'", "--query", "[].complianceState")
		Expect(states).To(Equal([]string{"Compliant"}))
		cli.ok(ctx, "policy", "assignment", "delete", "--name", "gitops-az", "--resource-group", rg)
	}, SpecTimeout(3*time.Minute))

	It("deletes the group", func(ctx SpecContext) {
		cli.ok(ctx, "group", "delete", "--name", rg, "--yes")
		Expect(strings.TrimSpace(cli.ok(ctx, "group", "exists", "--name", rg))).To(Equal("false"))
		poller, err := groups.BeginDelete(ctx, rg+"-untagged", nil)
		Expect(err).NotTo(HaveOccurred())
		_, err = poller.PollUntilDone(ctx, &runtime.PollUntilDoneOptions{Frequency: 20 * time.Millisecond})
		Expect(err).NotTo(HaveOccurred())
	}, SpecTimeout(time.Minute))

	AfterAll(func() {
		if cli == nil {
			return
		}
		By("no secret in anything az printed, nor in gitopsim's request log")
		out := cli.transcript()
		reqLog, err := os.ReadFile(filepath.Join(ep.Workdir, "arm", "requests.jsonl"))
		Expect(err).NotTo(HaveOccurred())
		for _, secret := range []string{ep.ARM.ClientSecret, "not-the-secret-e2e", httpsKey, base64.StdEncoding.EncodeToString([]byte(httpsKey))} {
			Expect(out).NotTo(ContainSubstring(secret))
			Expect(string(reqLog)).NotTo(ContainSubstring(secret))
		}
		Expect(string(reqLog)).To(ContainSubstring(`"route":"adfsToken"`))
	})
})
