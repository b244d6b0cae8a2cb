package policy_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	azpolicy "github.com/Azure/azure-sdk-for-go/sdk/azcore/policy"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/to"
	"github.com/Azure/azure-sdk-for-go/sdk/resourcemanager/policyinsights/armpolicyinsights"

	"github.com/gitopsim/gitopsim/sim/arm/armtest"
	"github.com/gitopsim/gitopsim/sim/azsdk"
	"github.com/gitopsim/gitopsim/sim/policy"
)

// insightsFixture is a fixture whose server also hosts
// Microsoft.PolicyInsights, with pages of two records.
type insightsFixture struct {
	*fixture
	states *armpolicyinsights.PolicyStatesClient
}

func startInsights(t *testing.T) *insightsFixture {
	t.Helper()
	f := start(t, nil)
	if err := f.p.Start(t.Context()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(f.p.Stop)
	states, err := armpolicyinsights.NewPolicyStatesClient(f.az.Credential, f.az.Options)
	if err != nil {
		t.Fatal(err)
	}
	return &insightsFixture{fixture: f, states: states}
}

func (f *insightsFixture) cluster(rg, name string) string {
	f.t.Helper()
	id := "/subscriptions/" + f.sub + "/resourceGroups/" + rg + "/providers/Microsoft.Kubernetes/connectedClusters/" + name
	body := fmt.Sprintf(`{"location":"westeurope","identity":{"type":"SystemAssigned"},"properties":{"agentPublicKeyCertificate":%q}}`, armtest.AgentKey())
	if code, out := f.raw(http.MethodPut, id+"?api-version=2021-10-01", body); code >= 300 {
		f.t.Fatalf("PUT cluster: %d %s", code, out)
	}
	return id
}

const baselineRepo = "https://127.0.0.1/team/baseline.git"

// assign assigns the no-secrets built-in at scope.
func (f *insightsFixture) assign(scope, name string) string {
	f.t.Helper()
	id := scope + "/providers/Microsoft.Authorization/policyAssignments/" + name
	values := map[string]any{}
	for k, v := range map[string]string{
		"configurationResourceName": "cluster-config", "operatorInstanceName": "cluster-config",
		"operatorNamespace": "cluster-config", "operatorScope": "cluster",
		"repositoryUrl": baselineRepo, "enableHelmOperator": "false",
	} {
		values[k] = map[string]any{"value": v}
	}
	body, _ := json.Marshal(map[string]any{
		"location": "westeurope", "identity": map[string]string{"type": "SystemAssigned"},
		"properties": map[string]any{"policyDefinitionId": builtInID + noSecrets, "parameters": values},
	})
	if code, out := f.raw(http.MethodPut, id+"?api-version=2025-03-01", string(body)); code != http.StatusCreated {
		f.t.Fatalf("PUT assignment: %d %s", code, out)
	}
	return id
}

// configure gives a cluster the configuration the baseline asks for.
func (f *insightsFixture) configure(cluster string) {
	f.t.Helper()
	body := fmt.Sprintf(`{"properties":{"repositoryUrl":%q,"operatorInstanceName":"cluster-config","operatorNamespace":"cluster-config","operatorScope":"cluster","operatorType":"Flux","operatorParams":"","enableHelmOperator":false}}`, baselineRepo)
	if code, out := f.raw(http.MethodPut, cluster+"/providers/Microsoft.KubernetesConfiguration/sourceControlConfigurations/cluster-config?api-version=2021-03-01", body); code >= 300 {
		f.t.Fatalf("PUT configuration: %d %s", code, out)
	}
}

// list reads every page of a pager of policy states.
func list[T any](t *testing.T, pg interface {
	More() bool
	NextPage(context.Context) (T, error)
}, value func(T) []*armpolicyinsights.PolicyState) []*armpolicyinsights.PolicyState {
	t.Helper()
	var out []*armpolicyinsights.PolicyState
	pages := 0
	for pg.More() {
		page, err := pg.NextPage(t.Context())
		if err != nil {
			t.Fatal(err)
		}
		pages++
		out = append(out, value(page)...)
	}
	return out
}

func (f *insightsFixture) subStates(opts *armpolicyinsights.PolicyStatesClientListQueryResultsForSubscriptionOptions) []*armpolicyinsights.PolicyState {
	f.t.Helper()
	return list(f.t, f.states.NewListQueryResultsForSubscriptionPager(armpolicyinsights.PolicyStatesResourceLatest, f.sub, opts),
		func(p armpolicyinsights.PolicyStatesClientListQueryResultsForSubscriptionResponse) []*armpolicyinsights.PolicyState {
			return p.Value
		})
}

func resourceNames(states []*armpolicyinsights.PolicyState) []string {
	var out []string
	for _, s := range states {
		out = append(out, lastSeg(*s.ResourceID)+"@"+*s.PolicyAssignmentName+"="+*s.ComplianceState)
	}
	slices.Sort(out)
	return out
}

func lastSeg(id string) string { return id[strings.LastIndex(id, "/")+1:] }

// TestPolicyInsightsWithSDK queries, summarises and scans policy states
// with the unmodified armpolicyinsights client: three clusters in two
// resource groups, a subscription assignment and one on rg2; c1 gets its
// configuration and turns Compliant through an on-demand scan.
func TestPolicyInsightsWithSDK(t *testing.T) {
	f := startInsights(t)
	ctx := t.Context()
	rg1, rg2 := f.group("rg1"), f.group("rg2")
	c1, _, _ := f.cluster("rg1", "c1"), f.cluster("rg1", "c2"), f.cluster("rg2", "c3")
	subAssign := f.assign("/subscriptions/"+f.sub, "baseline")
	f.assign(rg2, "rg2-baseline")
	f.clk.Advance(5 * time.Minute)
	if got := len(f.p.States()); got != 4 {
		t.Fatalf("%d states after the assignments took effect, want 4", got)
	}

	// The scan: c1 configured, then rg1 evaluated on demand.
	f.configure(c1)
	poller, err := f.states.BeginTriggerResourceGroupEvaluation(ctx, f.sub, "rg1", nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := poller.Poll(ctx); err != nil || poller.Done() {
		t.Fatalf("the scan finished before the clock moved: done=%v err=%v", poller.Done(), err)
	}
	// A second trigger while it runs gets the same operation.
	first, _ := poller.ResumeToken()
	again, err := f.states.BeginTriggerResourceGroupEvaluation(ctx, f.sub, "rg1", nil)
	if err != nil {
		t.Fatal(err)
	}
	if second, _ := again.ResumeToken(); !strings.Contains(second, opID(first)) || opID(first) == "" {
		t.Errorf("second trigger: %s, want the operation of %s", second, first)
	}
	f.clk.Advance(0)
	if _, err := poller.Poll(ctx); err != nil || !poller.Done() {
		t.Fatalf("after the scan ran: done=%v err=%v", poller.Done(), err)
	}
	if _, err := poller.Result(ctx); err != nil {
		t.Fatal(err)
	}

	all := f.subStates(nil)
	want := []string{"c1@baseline=Compliant", "c2@baseline=NonCompliant", "c3@baseline=NonCompliant", "c3@rg2-baseline=NonCompliant"}
	if got := resourceNames(all); !slices.Equal(got, want) {
		t.Fatalf("subscription states (over pages of 2) = %v, want %v", got, want)
	}
	for _, s := range all {
		if *s.PolicyAssignmentName == "baseline" {
			if !strings.EqualFold(*s.PolicyAssignmentID, subAssign) || !strings.EqualFold(*s.PolicyAssignmentScope, "/subscriptions/"+f.sub) ||
				*s.PolicyDefinitionName != noSecrets || *s.PolicyDefinitionAction != "deployifnotexists" ||
				*s.IsCompliant != (*s.ComplianceState == "Compliant") || !strings.Contains(*s.PolicyAssignmentParameters, baselineRepo) ||
				*s.ResourceGroup == "" || *s.SubscriptionID != f.sub || s.Timestamp == nil || !strings.Contains(*s.ODataContext, "$metadata#latest") {
				t.Errorf("record: %s", mustJSON(s))
			}
		}
	}

	for _, tc := range []struct {
		name string
		opts armpolicyinsights.PolicyStatesClientListQueryResultsForSubscriptionOptions
		want []string
	}{
		{"filter", armpolicyinsights.PolicyStatesClientListQueryResultsForSubscriptionOptions{
			Filter: to.Ptr("IsCompliant eq false and (resourceGroup eq 'RG2' or ResourceId eq '" + strings.ToUpper(rg1) + "/providers/Microsoft.Kubernetes/connectedClusters/c2')")},
			[]string{"c2@baseline=NonCompliant", "c3@baseline=NonCompliant", "c3@rg2-baseline=NonCompliant"}},
		{"not", armpolicyinsights.PolicyStatesClientListQueryResultsForSubscriptionOptions{Filter: to.Ptr("not (PolicyAssignmentName eq 'baseline')")},
			[]string{"c3@rg2-baseline=NonCompliant"}},
		{"top", armpolicyinsights.PolicyStatesClientListQueryResultsForSubscriptionOptions{Top: to.Ptr[int32](1), Filter: to.Ptr("ComplianceState eq 'compliant'")},
			[]string{"c1@baseline=Compliant"}},
	} {
		opts := tc.opts
		if got := resourceNames(f.subStates(&opts)); !slices.Equal(got, tc.want) {
			t.Errorf("%s: %v, want %v", tc.name, got, tc.want)
		}
	}
	if got := f.subStates(&armpolicyinsights.PolicyStatesClientListQueryResultsForSubscriptionOptions{Top: to.Ptr[int32](3)}); len(got) != 3 {
		t.Errorf("$top=3 over pages of 2: %d records", len(got))
	}

	// $orderby and $select.
	ordered := f.subStates(&armpolicyinsights.PolicyStatesClientListQueryResultsForSubscriptionOptions{
		OrderBy: to.Ptr("ResourceId desc, policyAssignmentName asc"), Select: to.Ptr("resourceId, PolicyAssignmentName, complianceState")})
	if got := namesInOrder(ordered); !slices.Equal(got, []string{"c3@baseline", "c3@rg2-baseline", "c2@baseline", "c1@baseline"}) {
		t.Errorf("$orderby: %v", got)
	}
	if ordered[0].PolicyDefinitionID != nil || ordered[0].ComplianceState == nil {
		t.Errorf("$select kept or lost a property: %s", mustJSON(ordered[0]))
	}

	// $apply: the fleet query of the docs.
	grouped := f.subStates(&armpolicyinsights.PolicyStatesClientListQueryResultsForSubscriptionOptions{
		Filter:  to.Ptr("IsCompliant eq false"),
		Apply:   to.Ptr("groupby((PolicyAssignmentId, ResourceId))/groupby((PolicyAssignmentId), aggregate($count as NumNonCompliantResources))"),
		OrderBy: to.Ptr("NumNonCompliantResources desc"),
	})
	if len(grouped) != 2 || !strings.EqualFold(*grouped[0].PolicyAssignmentID, subAssign) ||
		grouped[0].AdditionalProperties["NumNonCompliantResources"] != float64(2) || grouped[1].AdditionalProperties["NumNonCompliantResources"] != float64(1) {
		t.Errorf("$apply groupby: %s", mustJSON(grouped))
	}
	counted := f.subStates(&armpolicyinsights.PolicyStatesClientListQueryResultsForSubscriptionOptions{Apply: to.Ptr("aggregate($count as NumStates)")})
	if len(counted) != 1 || counted[0].AdditionalProperties["NumStates"] != float64(4) {
		t.Errorf("$apply aggregate: %s", mustJSON(counted))
	}

	// The other scopes.
	rgStates := list(t, f.states.NewListQueryResultsForResourceGroupPager(armpolicyinsights.PolicyStatesResourceDefault, f.sub, "rg2", nil),
		func(p armpolicyinsights.PolicyStatesClientListQueryResultsForResourceGroupResponse) []*armpolicyinsights.PolicyState {
			return p.Value
		})
	if got := resourceNames(rgStates); !slices.Equal(got, []string{"c3@baseline=NonCompliant", "c3@rg2-baseline=NonCompliant"}) {
		t.Errorf("resource group states: %v", got)
	}
	subA := list(t, f.states.NewListQueryResultsForSubscriptionLevelPolicyAssignmentPager(armpolicyinsights.PolicyStatesResourceLatest, f.sub, "baseline", nil),
		func(p armpolicyinsights.PolicyStatesClientListQueryResultsForSubscriptionLevelPolicyAssignmentResponse) []*armpolicyinsights.PolicyState {
			return p.Value
		})
	if len(subA) != 3 {
		t.Errorf("subscription assignment states: %v", resourceNames(subA))
	}
	rgA := list(t, f.states.NewListQueryResultsForResourceGroupLevelPolicyAssignmentPager(armpolicyinsights.PolicyStatesResourceLatest, f.sub, "rg2", "rg2-baseline", nil),
		func(p armpolicyinsights.PolicyStatesClientListQueryResultsForResourceGroupLevelPolicyAssignmentResponse) []*armpolicyinsights.PolicyState {
			return p.Value
		})
	if got := resourceNames(rgA); !slices.Equal(got, []string{"c3@rg2-baseline=NonCompliant"}) {
		t.Errorf("resource group assignment states: %v", got)
	}

	// Errors.
	_, err = f.states.NewListQueryResultsForSubscriptionPager(armpolicyinsights.PolicyStatesResourceLatest, f.sub,
		&armpolicyinsights.PolicyStatesClientListQueryResultsForSubscriptionOptions{Filter: to.Ptr("Colour eq 'red'")}).NextPage(ctx)
	wantErr(t, err, http.StatusBadRequest, policy.CodeInvalidFilterInQuery)
	_, err = f.states.NewListQueryResultsForSubscriptionPager(armpolicyinsights.PolicyStatesResourceLatest, f.sub,
		&armpolicyinsights.PolicyStatesClientListQueryResultsForSubscriptionOptions{Filter: to.Ptr("IsCompliant eq false and (")}).NextPage(ctx)
	wantErr(t, err, http.StatusBadRequest, policy.CodeInvalidFilterInQuery)
	_, err = f.states.NewListQueryResultsForSubscriptionPager(armpolicyinsights.PolicyStatesResourceLatest, f.sub,
		&armpolicyinsights.PolicyStatesClientListQueryResultsForSubscriptionOptions{Apply: to.Ptr("groupby((Colour))")}).NextPage(ctx)
	wantErr(t, err, http.StatusBadRequest, policy.CodeInvalidQueryOption)

	// Summaries.
	sum, err := f.states.SummarizeForSubscription(ctx, armpolicyinsights.PolicyStatesSummaryResourceTypeLatest, f.sub, nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(sum.Value) != 1 {
		t.Fatalf("summary: %s", mustJSON(sum))
	}
	res := sum.Value[0].Results
	if *res.NonCompliantResources != 2 || *res.NonCompliantPolicies != 2 || details(res.ResourceDetails) != "compliant=1,noncompliant=2" ||
		len(sum.Value[0].PolicyAssignments) != 2 {
		t.Errorf("subscription summary: %s", mustJSON(sum.Value[0]))
	}
	top := sum.Value[0].PolicyAssignments[0]
	if !strings.EqualFold(*top.PolicyAssignmentID, subAssign) || *top.Results.NonCompliantResources != 2 ||
		len(top.PolicyDefinitions) != 1 || *top.PolicyDefinitions[0].Effect != "deployifnotexists" ||
		details(top.PolicyDefinitions[0].Results.ResourceDetails) != "compliant=1,noncompliant=2" {
		t.Errorf("assignment summary: %s", mustJSON(top))
	}
	sum, err = f.states.SummarizeForSubscription(ctx, armpolicyinsights.PolicyStatesSummaryResourceTypeLatest, f.sub,
		&armpolicyinsights.PolicyStatesClientSummarizeForSubscriptionOptions{Top: to.Ptr[int32](1), Filter: to.Ptr("ResourceGroup eq 'rg1'")})
	if err != nil {
		t.Fatal(err)
	}
	if res := sum.Value[0].Results; *res.NonCompliantResources != 1 || len(sum.Value[0].PolicyAssignments) != 1 {
		t.Errorf("filtered summary: %s", mustJSON(sum.Value[0]))
	}
	rgSum, err := f.states.SummarizeForResourceGroupLevelPolicyAssignment(ctx, armpolicyinsights.PolicyStatesSummaryResourceTypeLatest, f.sub, "rg2", "rg2-baseline", nil)
	if err != nil {
		t.Fatal(err)
	}
	if res := rgSum.Value[0].Results; *res.NonCompliantResources != 1 || details(res.ResourceDetails) != "noncompliant=1" {
		t.Errorf("assignment-scope summary: %s", mustJSON(rgSum.Value[0]))
	}
}

// opID is the asyncOperationResults id inside a poller's resume token.
func opID(token string) string {
	_, after, ok := strings.Cut(token, "asyncOperationResults/")
	if !ok {
		return ""
	}
	id, _, _ := strings.Cut(after, "?")
	return id
}

func namesInOrder(states []*armpolicyinsights.PolicyState) []string {
	var out []string
	for _, s := range states {
		out = append(out, lastSeg(*s.ResourceID)+"@"+*s.PolicyAssignmentName)
	}
	return out
}

func details(ds []*armpolicyinsights.ComplianceDetail) string {
	var out []string
	for _, d := range ds {
		out = append(out, fmt.Sprintf("%s=%d", *d.ComplianceState, *d.Count))
	}
	return strings.Join(out, ",")
}

func mustJSON(v any) string {
	b, _ := json.Marshal(v)
	return string(b)
}

// TestPolicyInsightsRawREST covers what az sends (api-version 2019-10-01,
// an encoded $filter) and the shape of the response, as well as the
// Location protocol of a subscription scan.
func TestPolicyInsightsRawREST(t *testing.T) {
	f := startInsights(t)
	f.group("rg1")
	f.cluster("rg1", "c1")
	f.assign("/subscriptions/"+f.sub, "baseline")
	f.clk.Advance(5 * time.Minute)
	base := "/subscriptions/" + f.sub + "/providers/Microsoft.PolicyInsights/policyStates/"
	code, out := f.raw(http.MethodPost, base+"latest/queryResults?api-version=2019-10-01&%24filter=complianceState%20eq%20%27NonCompliant%27", "")
	var page struct {
		Context string           `json:"@odata.context"`
		Count   int              `json:"@odata.count"`
		Value   []map[string]any `json:"value"`
	}
	if code != http.StatusOK || json.Unmarshal([]byte(out), &page) != nil || page.Count != 1 || len(page.Value) != 1 {
		t.Fatalf("queryResults: %d %s", code, out)
	}
	rec := page.Value[0]
	if v, ok := rec["@odata.id"]; !ok || v != nil {
		t.Errorf("@odata.id: %v", rec)
	}
	if _, ok := rec["policyAssignmentParameters"].(string); !ok {
		t.Errorf("policyAssignmentParameters is not a JSON string: %v", rec["policyAssignmentParameters"])
	}
	if code, _ := f.raw(http.MethodPost, base+"someday/queryResults?api-version=2019-10-01", ""); code != http.StatusBadRequest {
		t.Errorf("unknown policy states resource: %d", code)
	}
	if code, _ := f.raw(http.MethodPost, base+"default/summarize?api-version=2019-10-01", ""); code != http.StatusBadRequest {
		t.Errorf("summarize of default: %d", code)
	}

	// The scan's Location protocol.
	req := func(method, path string) (int, http.Header) {
		t.Helper()
		r, _ := http.NewRequestWithContext(t.Context(), method, path, nil)
		tok, err := f.az.Credential.GetToken(t.Context(), azpolicyTokenOptions())
		if err != nil {
			t.Fatal(err)
		}
		r.Header.Set("Authorization", "Bearer "+tok.Token)
		resp, err := f.az.HTTPClient.Do(r)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode, resp.Header
	}
	code, h := req(http.MethodPost, f.srv.URL()+base+"latest/triggerEvaluation?api-version=2019-10-01")
	loc := h.Get("Location")
	if code != http.StatusAccepted || !strings.HasPrefix(loc, "https://") || !strings.Contains(loc, "/subscriptions/"+f.sub+"/providers/Microsoft.PolicyInsights/asyncOperationResults/") ||
		!strings.Contains(loc, "api-version=2019-10-01") || h.Get("Retry-After") != "1" {
		t.Fatalf("triggerEvaluation: %d %v", code, h)
	}
	if code, _ := req(http.MethodGet, loc); code != http.StatusAccepted {
		t.Errorf("Location while the scan runs: %d", code)
	}
	f.clk.Advance(0)
	if code, out := f.raw(http.MethodGet, strings.TrimPrefix(loc, f.srv.URL()), ""); code != http.StatusOK || !strings.Contains(out, `"Succeeded"`) {
		t.Errorf("Location after the scan: %d %s", code, out)
	}
	if code, _ := f.raw(http.MethodGet, "/subscriptions/"+f.sub+"/providers/Microsoft.PolicyInsights/asyncOperationResults/nope?api-version=2019-10-01", ""); code != http.StatusNotFound {
		t.Errorf("unknown operation: %d", code)
	}
}

func azpolicyTokenOptions() azpolicy.TokenRequestOptions {
	return azpolicy.TokenRequestOptions{Scopes: []string{azsdk.Audience + "/.default"}}
}

// TestPolicyStatesWindow checks the $from-$to window and the default
// kind: latest has one record per resource and assignment, default every
// evaluation, both within the window (a day before the request by
// default).
func TestPolicyStatesWindow(t *testing.T) {
	f := startInsights(t)
	f.group("rg1")
	c1 := f.cluster("rg1", "c1")
	f.clk.Advance(16 * time.Minute) // the cluster's own evaluations pass, with nothing assigned
	f.assign("/subscriptions/"+f.sub, "baseline")
	f.clk.Advance(5 * time.Minute)
	f.configure(c1)
	f.clk.Advance(15 * time.Minute)
	evaluated := f.clk.Now()

	query := func(kind, extra string) (int, []string) {
		t.Helper()
		code, out := f.raw(http.MethodPost, "/subscriptions/"+f.sub+"/providers/Microsoft.PolicyInsights/policyStates/"+kind+"/queryResults?api-version=2019-10-01"+extra, "")
		if code != http.StatusOK {
			return code, []string{out}
		}
		var res struct {
			Value []struct{ ComplianceState string }
		}
		if err := json.Unmarshal([]byte(out), &res); err != nil {
			t.Fatal(err)
		}
		var states []string
		for _, v := range res.Value {
			states = append(states, v.ComplianceState)
		}
		return code, states
	}
	if _, got := query("latest", ""); !slices.Equal(got, []string{"Compliant"}) {
		t.Errorf("latest: %v", got)
	}
	if _, got := query("default", "&$orderby=timestamp%20asc"); !slices.Equal(got, []string{"NonCompliant", "Compliant"}) {
		t.Errorf("default: %v, want both evaluations, oldest first", got)
	}
	since := "&$from=" + evaluated.Add(-time.Minute).UTC().Format(time.RFC3339)
	if _, got := query("default", since); !slices.Equal(got, []string{"Compliant"}) {
		t.Errorf("default since the last evaluation: %v", got)
	}
	// The service's own spelling, with a space, in a nextLink.
	upTo := "&$to=" + strings.ReplaceAll(evaluated.Add(-time.Minute).UTC().Format("2006-01-02 15:04:05Z"), " ", "%20")
	if _, got := query("default", upTo); !slices.Equal(got, []string{"NonCompliant"}) {
		t.Errorf("default up to before the last evaluation: %v", got)
	}
	// latest within a window that ends before the last evaluation: the
	// state newest in the window, not the newest of all.
	if _, got := query("latest", upTo); !slices.Equal(got, []string{"NonCompliant"}) {
		t.Errorf("latest up to before the last evaluation: %v", got)
	}
	if code, out := query("latest", "&$from=yesterday"); code != http.StatusBadRequest {
		t.Errorf("bad $from: %d %v", code, out)
	}
	if code, out := query("default", since+"&$to="+evaluated.Add(-time.Hour).UTC().Format(time.RFC3339)); code != http.StatusBadRequest {
		t.Errorf("$from after $to: %d %v", code, out)
	}
	// Two days later: the daily cycle keeps a latest state in the
	// default window (the day before the request), and default no longer
	// holds the first evaluations.
	f.clk.Advance(49 * time.Hour)
	if _, got := query("latest", ""); !slices.Equal(got, []string{"Compliant"}) {
		t.Errorf("latest two days later: %v", got)
	}
	if _, got := query("default", "&$orderby=timestamp%20asc"); !slices.Equal(got, []string{"Compliant"}) {
		t.Errorf("default two days later: %v, want the one evaluation of the last day", got)
	}
}
