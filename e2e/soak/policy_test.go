package soak

import (
	"context"
	"fmt"
	"slices"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore/to"
	"github.com/Azure/azure-sdk-for-go/sdk/resourcemanager/resources/armpolicy"
)

// Azure Policy's resources are state like any other: the soak assigns an
// audit definition of its own to the clusters' resource group and
// removes assignments again, and what Policy lists must be what it
// acknowledged, across every restart. Audit only: an effect that
// deploys would make configurations the model does not expect.

// auditDefinition is the soak's custom definition, made once.
const auditDefinition = "soak-audit-clusters"

func (w *world) policyClients() error {
	var err error
	if w.defs, err = armpolicy.NewDefinitionsClient(w.az.SubscriptionID, w.az.Credential, w.clientOptions()); err != nil {
		return err
	}
	w.assigns, err = armpolicy.NewAssignmentsClient(w.az.SubscriptionID, w.az.Credential, w.clientOptions())
	return err
}

func (w *world) assignPolicy() {
	ctx, cancel := context.WithTimeout(w.ctx, time.Minute)
	defer cancel()
	if !w.defined {
		_, err := w.defs.CreateOrUpdate(ctx, auditDefinition, armpolicy.Definition{Properties: &armpolicy.DefinitionProperties{
			DisplayName: to.Ptr("soak: audit connected clusters"), Mode: to.Ptr("Indexed"),
			PolicyRule: map[string]any{
				"if":   map[string]any{"field": "type", "equals": "Microsoft.Kubernetes/connectedClusters"},
				"then": map[string]any{"effect": "audit"},
			},
		}}, nil)
		if !w.ackedErr("define policy", auditDefinition, err) {
			return
		}
		w.defined = true
	}
	w.seq++
	name := fmt.Sprintf("audit-%d", w.seq)
	id := "/subscriptions/" + w.az.SubscriptionID + "/providers/Microsoft.Authorization/policyDefinitions/" + auditDefinition
	_, err := w.assigns.Create(ctx, w.rgScope(), name, armpolicy.Assignment{Properties: &armpolicy.AssignmentProperties{PolicyDefinitionID: &id}}, nil)
	if w.ackedErr("assign policy", name, err) {
		w.assignments[name] = true
	}
}

func (w *world) unassignPolicy() {
	names := make([]string, 0, len(w.assignments))
	for n := range w.assignments {
		names = append(names, n)
	}
	slices.Sort(names)
	name := names[w.rng.IntN(len(names))]
	ctx, cancel := context.WithTimeout(w.ctx, time.Minute)
	defer cancel()
	_, err := w.assigns.Delete(ctx, w.rgScope(), name, nil)
	if w.ackedErr("remove policy assignment", name, err) {
		delete(w.assignments, name)
	}
}

func (w *world) rgScope() string {
	return "/subscriptions/" + w.az.SubscriptionID + "/resourceGroups/" + resourceGroup
}

// checkPolicy fails the soak when Policy lists other assignments than
// the ones it acknowledged, or lost the definition.
func (w *world) checkPolicy(ctx context.Context) {
	var got []string
	for pg := w.assigns.NewListForResourceGroupPager(resourceGroup, nil); pg.More(); {
		page, err := pg.NextPage(ctx)
		if err != nil {
			w.t.Errorf("list policy assignments: %v", err)
			return
		}
		for _, a := range page.Value {
			got = append(got, *a.Name)
		}
	}
	var want []string
	for n := range w.assignments {
		want = append(want, n)
	}
	slices.Sort(got)
	slices.Sort(want)
	if !slices.Equal(got, want) {
		w.t.Errorf("at %v: policy assignments %v, acknowledged %v", w.elapsed(), got, want)
	}
	if w.defined {
		if _, err := w.defs.Get(ctx, auditDefinition, nil); err != nil {
			w.t.Errorf("at %v: the soak's policy definition: %v", w.elapsed(), err)
		}
	}
}
