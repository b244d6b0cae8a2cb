package e2e_test

import (
	"fmt"
	"strings"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore/to"
	"github.com/Azure/azure-sdk-for-go/sdk/resourcemanager/authorization/armauthorization/v2"
	"github.com/Azure/azure-sdk-for-go/sdk/resourcemanager/kubernetesconfiguration/armkubernetesconfiguration/v2"
	"github.com/Azure/azure-sdk-for-go/sdk/resourcemanager/resources/armpolicy"
	"github.com/google/uuid"
	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"github.com/gitopsim/gitopsim/sim"
	"github.com/gitopsim/gitopsim/sim/azsdk"
	"github.com/gitopsim/gitopsim/sim/policy"
	"github.com/gitopsim/gitopsim/sim/policy/engine"
)

// Azure Policy end to end: an assignment of the no-secrets GitOps
// built-in, made with the official SDK, reaches a cluster connected after
// it (DeployIfNotExists, 10 minutes after the cluster's creation), whose
// agent installs the configuration, and the cluster turns Compliant; a
// cluster that was there before stays NonCompliant, as Azure leaves it to
// a remediation task.
var _ = Describe("Azure Policy", Label("policy", "envtest"), func() {
	It("deploys the GitOps baseline to new clusters of a resource group, as the assignment's identity", func(ctx SpecContext) {
		az, err := azsdk.New(stack.Endpoints().ARM)
		Expect(err).NotTo(HaveOccurred())
		assignments, err := armpolicy.NewAssignmentsClient(az.SubscriptionID, az.Credential, az.Options)
		Expect(err).NotTo(HaveOccurred())
		roles, err := armauthorization.NewRoleAssignmentsClient(az.SubscriptionID, az.Credential, az.Options)
		Expect(err).NotTo(HaveOccurred())
		configs, err := armkubernetesconfiguration.NewSourceControlConfigurationsClient(az.SubscriptionID, az.Credential, az.Options)
		Expect(err).NotTo(HaveOccurred())

		n := clusterSeq.Add(1)
		rg := fmt.Sprintf("e2e-policy-%d", n)
		ns := fmt.Sprintf("baseline-%d", n)
		repo := newRepo("baseline", true, map[string]string{"cm.yaml": cmYAML(ns, "baseline", "v1")})
		onboardIn := func(name string) *sim.Connected {
			c, err := stack.Onboard(ctx, sim.OnboardOptions{Name: fmt.Sprintf("%s-%d", name, n), ResourceGroup: rg})
			Expect(err).NotTo(HaveOccurred())
			DeferCleanup(func(ctx SpecContext) { Expect(c.Agent.Stop(ctx)).To(Succeed()) })
			return c
		}
		existing := onboardIn("existing")

		By("assigning the built-in to the resource group, with a managed identity")
		scope := "/subscriptions/" + az.SubscriptionID + "/resourceGroups/" + rg
		params := map[string]*armpolicy.ParameterValuesValue{}
		for k, v := range map[string]string{
			"configurationResourceName": "baseline", "operatorInstanceName": "baseline", "operatorNamespace": ns,
			"operatorScope": "cluster", "operatorParams": "--git-branch=main", "repositoryUrl": httpsURL(repo),
			"enableHelmOperator": "false",
		} {
			params[k] = &armpolicy.ParameterValuesValue{Value: v}
		}
		a, err := assignments.Create(ctx, scope, "gitops-baseline", armpolicy.Assignment{
			Location: to.Ptr("eastus"),
			Identity: &armpolicy.Identity{Type: to.Ptr(armpolicy.ResourceIdentityTypeSystemAssigned)},
			Properties: &armpolicy.AssignmentProperties{
				PolicyDefinitionID: to.Ptr("/providers/Microsoft.Authorization/policyDefinitions/" + engine.BuiltInGitOpsNoSecrets),
				Parameters:         params,
			},
		}, nil)
		Expect(err).NotTo(HaveOccurred())
		principal := *a.Identity.PrincipalID
		_, err = roles.Create(ctx, scope, uuid.NewString(), armauthorization.RoleAssignmentCreateParameters{
			Properties: &armauthorization.RoleAssignmentProperties{
				RoleDefinitionID: to.Ptr("/subscriptions/" + az.SubscriptionID + "/providers/Microsoft.Authorization/roleDefinitions/" + policy.RoleContributor),
				PrincipalID:      to.Ptr(principal),
				PrincipalType:    to.Ptr(armauthorization.PrincipalTypeServicePrincipal),
			},
		}, nil)
		Expect(err).NotTo(HaveOccurred())

		state := func(clusterID string) engine.ComplianceState {
			for _, s := range stack.Policy().States() {
				if strings.EqualFold(s.ResourceID, clusterID) && strings.EqualFold(s.PolicyAssignmentID, *a.ID) {
					return s.ComplianceState
				}
			}
			return ""
		}
		By("evaluating the existing cluster once the assignment is in effect: NonCompliant, nothing deployed")
		withinVirtual(6*time.Minute, 30*time.Second, func(g Gomega) {
			g.Expect(state(existing.ID)).To(Equal(engine.NonCompliant))
		})

		By("deploying to a cluster connected afterwards, 10 minutes after its creation")
		fresh := onboardIn("new")
		start := clk.Now()
		withinVirtual(20*time.Minute, 30*time.Second, func(g Gomega) {
			c, err := configs.Get(ctx, rg, "Microsoft.Kubernetes", "connectedClusters", fresh.Name, "baseline", nil)
			g.Expect(err).NotTo(HaveOccurred())
			g.Expect(*c.Properties.RepositoryURL).To(Equal(httpsURL(repo)))
		})
		Expect(clk.Since(start)).To(BeNumerically(">=", 10*time.Minute), "DeployIfNotExists waits evaluationDelay (PT10M)")

		By("the agent installs it, and the cluster turns Compliant at its next evaluation")
		withinVirtual(30*time.Minute, 30*time.Second, func(g Gomega) {
			g.Expect(cmValue(g, ns, "baseline")).To(Equal("v1"))
			g.Expect(state(fresh.ID)).To(Equal(engine.Compliant))
		})
		Expect(state(existing.ID)).To(Equal(engine.NonCompliant), "an existing cluster needs a remediation task")
		_, err = configs.Get(ctx, rg, "Microsoft.Kubernetes", "connectedClusters", existing.Name, "baseline", nil)
		Expect(err).To(HaveOccurred(), "nothing is deployed to a cluster that existed before the assignment")
	})
})
