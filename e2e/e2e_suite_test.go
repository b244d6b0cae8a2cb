// Package e2e holds gitopsim's Ginkgo suites. They start the simulator once
// through the public sim API and check it only through real clients
// (client-go here; the Azure SDK and git as those parts arrive).
//
// The backend comes from $GITOPSIM_E2E_CLUSTER (envtest by default); specs
// carry the label of the backend they need. On kind, $GITOPSIM_E2E_KIND_IMAGE
// is the node image (default: kind's own; `make e2e-kind` passes the one
// `make kind-image` builds) and $GITOPSIM_E2E_KIND_NAME the cluster's name
// (default gitopsim-e2e, deleted first when a killed run left it; a name you
// give is reused as it is), created when missing and then deleted at the end.
package e2e_test

import (
	"context"
	"log/slog"
	"os"
	"testing"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore/policy"
	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	"k8s.io/client-go/kubernetes"
	kindcluster "sigs.k8s.io/kind/pkg/cluster"

	"github.com/gitopsim/gitopsim/sim"
	"github.com/gitopsim/gitopsim/sim/arm"
	"github.com/gitopsim/gitopsim/sim/azsdk"
	"github.com/gitopsim/gitopsim/sim/clock"
	"github.com/gitopsim/gitopsim/sim/cluster"
)

var (
	stack *sim.Sim
	admin kubernetes.Interface
	// clk is the suite's virtual clock: specs move time themselves, so
	// "15 minutes offline" or "49 hours later" take no real time.
	clk *clock.Virtual
)

func TestE2E(t *testing.T) {
	RegisterFailHandler(Fail)
	suite, reporter := GinkgoConfiguration()
	// GITOPSIM_E2E_LABELS narrows the suite where -ginkgo.label-filter
	// cannot be passed: "go test ./..." gives its flags to every package.
	// make test runs the slow corpus in a second, race-free step with it.
	if labels := os.Getenv("GITOPSIM_E2E_LABELS"); labels != "" {
		if suite.LabelFilter != "" {
			labels = "(" + suite.LabelFilter + ") && (" + labels + ")"
		}
		suite.LabelFilter = labels
	}
	RunSpecs(t, "gitopsim e2e", suite, reporter)
}

var _ = BeforeSuite(func(ctx SpecContext) {
	backend := os.Getenv("GITOPSIM_E2E_CLUSTER")
	if backend == "" {
		backend = cluster.Envtest
	}
	kindName := os.Getenv("GITOPSIM_E2E_KIND_NAME")
	if backend == cluster.Kind && kindName == "" {
		// The suite's own cluster starts empty: one left by a killed run
		// holds namespaces the specs' names would collide with. A cluster
		// named in GITOPSIM_E2E_KIND_NAME is the user's, reused as it is.
		kindName = "gitopsim-e2e"
		_ = kindcluster.NewProvider(kindcluster.ProviderWithDocker()).Delete(kindName, "")
	}
	var err error
	clk = clock.NewVirtual(time.Time{})
	stack, err = sim.New(sim.Options{
		Workdir: GinkgoT().TempDir(),
		Clock:   clk,
		// Specs onboard their own connected clusters, so that each one's
		// agent sees only its own configurations; `gitopsim up`'s local
		// cluster is covered by the CLI tests.
		Local:  sim.LocalCluster{Disabled: true},
		Logger: slog.New(slog.NewTextHandler(GinkgoWriter, nil)),
		Cluster: cluster.Options{
			Backend: backend, Kubeconfig: os.Getenv("GITOPSIM_E2E_KUBECONFIG"),
			KindNodeImage: os.Getenv("GITOPSIM_E2E_KIND_IMAGE"), KindClusterName: kindName,
		},
		// Small pages, so that listing specs cross page boundaries.
		// Tokens outlive the virtual days the agent specs skip over.
		ARM: arm.Options{PageSize: 3, TokenLifetime: 365 * 24 * time.Hour},
	})
	Expect(err).NotTo(HaveOccurred())
	if err := stack.Available(); err != nil {
		if backend == cluster.Kind {
			Fail("the kind backend cannot start here (make e2e-kind starts Docker itself): " + err.Error())
		}
		Fail("gitopsim cannot start here (run `make tools`): " + err.Error())
	}
	Expect(stack.Start(ctx)).To(Succeed())
	DeferCleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		Expect(stack.Stop(ctx)).To(Succeed())
	})
	Expect(stack.WriteEndpoints()).To(Succeed())
	admin, err = kubernetes.NewForConfig(stack.Cluster().AdminConfig())
	Expect(err).NotTo(HaveOccurred())
}, NodeTimeout(8*time.Minute))

func policyScope() policy.TokenRequestOptions {
	return policy.TokenRequestOptions{Scopes: []string{azsdk.Audience + "/.default"}}
}
