package e2e_test

import (
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/resourcemanager/kubernetesconfiguration/armkubernetesconfiguration/v2"
	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"github.com/gitopsim/gitopsim/sim/azsdk"
	"github.com/gitopsim/gitopsim/sim/scenario"
	sm "github.com/gitopsim/gitopsim/sim/simmatchers"
)

var _ = Describe("Scenarios from a Ginkgo suite", Label("envtest"), func() {
	It("runs a scenario file on the suite's simulator and checks the result with gitopsim's matchers", func(ctx SpecContext) {
		res, err := scenario.Run(ctx, stack, "testdata/library-use.yaml", GinkgoWriter)
		Expect(err).NotTo(HaveOccurred())
		Expect(res).To(sm.Pass())

		az, err := azsdk.New(stack.Endpoints().ARM)
		Expect(err).NotTo(HaveOccurred())
		configs, err := armkubernetesconfiguration.NewSourceControlConfigurationsClient(az.SubscriptionID, az.Credential, az.Options)
		Expect(err).NotTo(HaveOccurred())
		got, err := configs.Get(ctx, "e2e-library", "Microsoft.Kubernetes", "connectedClusters", "library", "lib", nil)
		Expect(err).NotTo(HaveOccurred())
		Expect(got).To(sm.HaveComplianceState("Installed"))
		Expect(got).NotTo(sm.HaveComplianceState("Failed"))

		cm := sm.Object(stack.Cluster().AdminConfig(), "v1", "ConfigMap", "library-use", "lib")
		withinVirtual(time.Minute, 5*time.Second, func(g Gomega) {
			g.Expect(cm).To(sm.Exist())
			g.Expect(cm).To(sm.HaveData("from", "scenario"))
		})
		Expect(got).To(sm.HaveComplianceMessage("resources applied"))
		Expect(sm.Object(stack.Cluster().AdminConfig(), "v1", "ConfigMap", "library-use", "absent")).NotTo(sm.Exist())
	})

	It("runs a policy scenario on the suite's simulator and reports its milestones", Label("policy"), func(ctx SpecContext) {
		res, err := scenario.Run(ctx, stack, "testdata/library-policy.yaml", GinkgoWriter)
		Expect(err).NotTo(HaveOccurred())
		Expect(res).To(sm.Pass())

		cm := sm.Object(stack.Cluster().AdminConfig(), "v1", "ConfigMap", "library-policy", "from-policy")
		withinVirtual(10*time.Minute, 30*time.Second, func(g Gomega) {
			g.Expect(cm).To(sm.HaveData("from", "policy"))
		})
		// The suite's simulator keeps the documented timing: in effect
		// after 5 minutes, deployed 10 minutes after the cluster connected
		// (at 5m), Compliant 15 minutes after the deployment.
		Expect(res.Policy).To(HaveLen(1))
		m := res.Policy[0]
		Expect(m.Effective).To(Equal("00:05:00"))
		Expect(m.Deployments).To(HaveLen(1))
		Expect(m.Deployments[0].By).To(Equal("automatic"))
		Expect(m.Deployments[0].First).To(Equal("00:15:00"))
		Expect(m.AllCompliant).NotTo(BeEmpty())
		Expect(res.Timeline).To(ContainSubstring("last cluster Compliant"))
	})

	It("reports a broken scenario file with its position instead of running it", func(ctx SpecContext) {
		_, err := scenario.Run(ctx, stack, "../sim/scenario/testdata/invalid/bad-duration.yaml", nil)
		Expect(err).To(MatchError(ContainSubstring(`bad-duration.yaml:9:16: spec.steps[0].advance: invalid duration "5 minutes"`)))
	})
})
