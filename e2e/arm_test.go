package e2e_test

import (
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync/atomic"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/runtime"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/to"
	"github.com/Azure/azure-sdk-for-go/sdk/resourcemanager/hybridkubernetes/armhybridkubernetes"
	"github.com/Azure/azure-sdk-for-go/sdk/resourcemanager/kubernetesconfiguration/armkubernetesconfiguration/v2"
	"github.com/Azure/azure-sdk-for-go/sdk/resourcemanager/resources/armresources"
	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"github.com/gitopsim/gitopsim/sim"
	"github.com/gitopsim/gitopsim/sim/arm"
	"github.com/gitopsim/gitopsim/sim/arm/armtest"
	"github.com/gitopsim/gitopsim/sim/azsdk"
)

var groupSeq atomic.Int64

// The ARM specs use only what a user's program has: endpoints.json and the
// official Azure SDK for Go.
var _ = Describe("the ARM provider, through the official Azure SDK", Label("arm"), func() {
	var (
		az      *azsdk.Clients
		groups  *armresources.ResourceGroupsClient
		ccs     *armhybridkubernetes.ConnectedClusterClient
		configs *armkubernetesconfiguration.SourceControlConfigurationsClient
		rg      string
	)

	BeforeEach(func(ctx SpecContext) {
		e, err := sim.ReadEndpoints(stack.EndpointsPath())
		Expect(err).NotTo(HaveOccurred())
		az, err = azsdk.New(e.ARM)
		Expect(err).NotTo(HaveOccurred())
		groups, err = armresources.NewResourceGroupsClient(az.SubscriptionID, az.Credential, az.Options)
		Expect(err).NotTo(HaveOccurred())
		ccs, err = armhybridkubernetes.NewConnectedClusterClient(az.SubscriptionID, az.Credential, az.Options)
		Expect(err).NotTo(HaveOccurred())
		configs, err = armkubernetesconfiguration.NewSourceControlConfigurationsClient(az.SubscriptionID, az.Credential, az.Options)
		Expect(err).NotTo(HaveOccurred())
		rg = fmt.Sprintf("e2e-arm-%d", groupSeq.Add(1))
		_, err = groups.CreateOrUpdate(ctx, rg, armresources.ResourceGroup{Location: to.Ptr("westeurope")}, nil)
		Expect(err).NotTo(HaveOccurred())
	})

	scc := func(url string) armkubernetesconfiguration.SourceControlConfiguration {
		return armkubernetesconfiguration.SourceControlConfiguration{Properties: &armkubernetesconfiguration.SourceControlConfigurationProperties{
			RepositoryURL:        to.Ptr(url),
			OperatorNamespace:    to.Ptr("team-a"),
			OperatorInstanceName: to.Ptr("team-a"),
			OperatorType:         to.Ptr(armkubernetesconfiguration.OperatorTypeFlux),
			OperatorScope:        to.Ptr(armkubernetesconfiguration.OperatorScopeTypeNamespace),
		}}
	}
	put := func(ctx SpecContext, cluster, name string, body armkubernetesconfiguration.SourceControlConfiguration) (int, error) {
		var raw *http.Response
		_, err := configs.CreateOrUpdate(runtime.WithCaptureResponse(ctx, &raw), rg, "Microsoft.Kubernetes", "connectedClusters", cluster, name, body, nil)
		if raw == nil {
			return 0, err
		}
		return raw.StatusCode, err
	}
	errorCode := func(err error) string {
		var re *azcore.ResponseError
		if errors.As(err, &re) {
			return fmt.Sprintf("%d %s", re.StatusCode, re.ErrorCode)
		}
		return fmt.Sprint(err)
	}

	It("runs a connected cluster and its configurations through their whole life", func(ctx SpecContext) {
		By("onboarding a cluster: LRO PUT with Azure-AsyncOperation (api-version 2021-10-01)")
		o, err := az.Onboard(ctx, rg, "arc1", "westeurope")
		Expect(err).NotTo(HaveOccurred())
		got, err := ccs.Get(ctx, rg, "arc1", nil)
		Expect(err).NotTo(HaveOccurred())
		Expect(*got.Properties.ProvisioningState).To(Equal(armhybridkubernetes.ProvisioningStateSucceeded))
		Expect(*got.Properties.ConnectivityStatus).To(Equal(armhybridkubernetes.ConnectivityStatusConnecting))

		By("creating a configuration (201), replacing it (200) and reading it back (api-version 2023-05-01)")
		Expect(put(ctx, "arc1", "cfg0", scc("https://127.0.0.1/team/app.git"))).To(Equal(http.StatusCreated))
		Expect(put(ctx, "arc1", "cfg0", scc("https://127.0.0.1/team/other.git"))).To(Equal(http.StatusOK))
		cfg, err := configs.Get(ctx, rg, "Microsoft.Kubernetes", "connectedClusters", "arc1", "cfg0", nil)
		Expect(err).NotTo(HaveOccurred())
		Expect(*cfg.Properties.RepositoryURL).To(Equal("https://127.0.0.1/team/other.git"))
		Expect(*cfg.Properties.OperatorParams).To(Equal("--git-readonly"))
		Expect(*cfg.Properties.ComplianceStatus.ComplianceState).To(Equal(armkubernetesconfiguration.ComplianceStateTypePending))

		By("listing seven configurations across three pages")
		for i := 1; i < 7; i++ {
			Expect(put(ctx, "arc1", fmt.Sprintf("cfg%d", i), scc("https://127.0.0.1/team/app.git"))).To(Equal(http.StatusCreated))
		}
		var names []string
		pages := 0
		pager := configs.NewListPager(rg, "Microsoft.Kubernetes", "connectedClusters", "arc1", nil)
		for pager.More() {
			page, err := pager.NextPage(ctx)
			Expect(err).NotTo(HaveOccurred())
			pages++
			for _, v := range page.Value {
				names = append(names, *v.Name)
			}
		}
		Expect(pages).To(Equal(3))
		Expect(names).To(Equal([]string{"cfg0", "cfg1", "cfg2", "cfg3", "cfg4", "cfg5", "cfg6"}))

		By("reading the configurations as the cluster's agent")
		agent, err := arm.NewAgentClient(arm.AgentClientOptions{URL: stack.ARM().URL(), HTTPClient: az.HTTPClient, ClusterID: o.ID, Key: o.Key, Clock: stack.Clock()})
		Expect(err).NotTo(HaveOccurred())
		desired, err := agent.Configurations(ctx)
		Expect(err).NotTo(HaveOccurred())
		Expect(desired).To(HaveLen(7))

		By("deleting a configuration: 200, then 204")
		for _, want := range []int{http.StatusOK, http.StatusNoContent} {
			var raw *http.Response
			poller, err := configs.BeginDelete(runtime.WithCaptureResponse(ctx, &raw), rg, "Microsoft.Kubernetes", "connectedClusters", "arc1", "cfg0", nil)
			Expect(err).NotTo(HaveOccurred())
			_, err = poller.PollUntilDone(ctx, nil)
			Expect(err).NotTo(HaveOccurred())
			Expect(raw.StatusCode).To(Equal(want))
		}

		By("deleting the cluster: 202 with Location, polled to the end")
		var raw *http.Response
		poller, err := ccs.BeginDelete(runtime.WithCaptureResponse(ctx, &raw), rg, "arc1", nil)
		Expect(err).NotTo(HaveOccurred())
		Expect(raw.StatusCode).To(Equal(http.StatusAccepted))
		_, err = poller.PollUntilDone(ctx, &runtime.PollUntilDoneOptions{Frequency: 20 * time.Millisecond})
		Expect(err).NotTo(HaveOccurred())
		_, err = ccs.Get(ctx, rg, "arc1", nil)
		Expect(errorCode(err)).To(Equal("404 ResourceNotFound"))
	})

	It("answers ARM errors with their codes", func(ctx SpecContext) {
		By("a configuration under a cluster that does not exist")
		_, err := put(ctx, "ghost", "cfg", scc("https://127.0.0.1/x.git"))
		Expect(errorCode(err)).To(Equal("404 ResourceNotFound"))

		_, err = az.Onboard(ctx, rg, "arc2", "westeurope")
		Expect(err).NotTo(HaveOccurred())
		By("every validation rule of the spec, through the SDK")
		for _, tc := range armtest.ValidationCases() {
			_, err := put(ctx, "arc2", tc.Config, tc.Body)
			Expect(errorCode(err)).To(Equal("400 "+tc.Code), tc.Name)
			Expect(err.Error()).To(ContainSubstring(tc.Message), tc.Name)
		}

		By("a raw request with the az CLI's api-version 2021-03-01 and with an unknown one")
		tok, err := az.Credential.GetToken(ctx, policyScope())
		Expect(err).NotTo(HaveOccurred())
		base := stack.ARM().URL() + "/subscriptions/" + az.SubscriptionID + "/resourceGroups/" + rg +
			"/providers/Microsoft.Kubernetes/connectedClusters/arc2/providers/Microsoft.KubernetesConfiguration/sourceControlConfigurations/cli"
		status, _ := rawRequest(ctx, az, http.MethodPut, base+"?api-version=2021-03-01", tok.Token, `{"properties":{"repositoryUrl":"git@127.0.0.1:team/app","operatorType":"flux"}}`)
		Expect(status).To(Equal(http.StatusCreated))
		status, body := rawRequest(ctx, az, http.MethodGet, base+"?api-version=1999-01-01", tok.Token, "")
		Expect(status).To(Equal(http.StatusBadRequest))
		Expect(body).To(ContainSubstring("InvalidApiVersionParameter"))

		By("requests without a valid token")
		status, body = rawRequest(ctx, az, http.MethodGet, base+"?api-version=2021-03-01", "", "")
		Expect(status).To(Equal(http.StatusUnauthorized))
		Expect(body).To(ContainSubstring("AuthenticationFailed"))
		status, body = rawRequest(ctx, az, http.MethodGet, base+"?api-version=2021-03-01", tok.Token+"x", "")
		Expect(status).To(Equal(http.StatusUnauthorized))
		Expect(body).To(ContainSubstring("InvalidAuthenticationToken"))
	})

	It("keeps one cluster's agent out of another cluster's data", func(ctx SpecContext) {
		a, err := az.Onboard(ctx, rg, "arc-a", "westeurope")
		Expect(err).NotTo(HaveOccurred())
		b, err := az.Onboard(ctx, rg, "arc-b", "westeurope")
		Expect(err).NotTo(HaveOccurred())
		own, err := arm.NewAgentClient(arm.AgentClientOptions{URL: stack.ARM().URL(), HTTPClient: az.HTTPClient, ClusterID: a.ID, Key: a.Key, Clock: stack.Clock()})
		Expect(err).NotTo(HaveOccurred())
		_, err = own.Heartbeat(ctx, arm.Heartbeat{AgentVersion: "e2e"})
		Expect(err).NotTo(HaveOccurred())
		got, err := ccs.Get(ctx, rg, "arc-a", nil)
		Expect(err).NotTo(HaveOccurred())
		Expect(*got.Properties.ConnectivityStatus).To(Equal(armhybridkubernetes.ConnectivityStatusConnected))

		By("presenting a's signed token on b's path")
		tok, err := arm.SignAgentToken(a.ID, a.Key, stack.Clock())
		Expect(err).NotTo(HaveOccurred())
		path := strings.Replace(b.ID, "/subscriptions/", "/agent/v1/subscriptions/", 1) + "/configurations"
		status, body := rawRequest(ctx, az, http.MethodGet, stack.ARM().URL()+path, tok, "")
		Expect(status).To(Equal(http.StatusForbidden))
		Expect(body).To(ContainSubstring("AuthorizationFailed"))
	})
})

func rawRequest(ctx SpecContext, az *azsdk.Clients, method, url, token, body string) (int, string) {
	req, err := http.NewRequestWithContext(ctx, method, url, strings.NewReader(body))
	Expect(err).NotTo(HaveOccurred())
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := az.HTTPClient.Do(req)
	Expect(err).NotTo(HaveOccurred())
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	Expect(err).NotTo(HaveOccurred())
	return resp.StatusCode, string(b)
}
