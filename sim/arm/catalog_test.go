package arm_test

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore/runtime"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/to"
	"github.com/Azure/azure-sdk-for-go/sdk/resourcemanager/resources/armresources"

	"github.com/gitopsim/gitopsim/sim/arm"
	"github.com/gitopsim/gitopsim/sim/arm/armtest"
)

// lockedBuffer collects the request log, which the server writes from its
// own goroutines.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// form posts a form, as MSAL does, and decodes the JSON answer.
func (f *fixture) form(u string, v url.Values) (int, map[string]any) {
	f.t.Helper()
	req, err := http.NewRequestWithContext(f.t.Context(), http.MethodPost, u, strings.NewReader(v.Encode()))
	if err != nil {
		f.t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	resp, err := f.az.HTTPClient.Do(req)
	if err != nil {
		f.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		f.t.Fatalf("POST %s: %d %s", u, resp.StatusCode, b)
	}
	return resp.StatusCode, m
}

func (f *fixture) getJSON(u, token string, into any) int {
	f.t.Helper()
	status, body := f.raw(http.MethodGet, u, token, "")
	if status == http.StatusOK {
		if err := json.Unmarshal(body, into); err != nil {
			f.t.Fatalf("GET %s: %v in %s", u, err, body)
		}
	}
	return status
}

// msalForm is what MSAL Python 1.21 (az 2.45) posts for
// az login --service-principal (/tmp wire log of the research).
func msalForm(id, secret string) url.Values {
	return url.Values{
		"client_id": {id}, "client_secret": {secret}, "grant_type": {"client_credentials"},
		"client_info": {"1"}, "claims": {`{"access_token": {"xms_cc": {"values": ["CP1"]}}}`},
		"scope": {"https://management.core.windows.net//.default"},
	}
}

func TestADFSAuthorityForTheAzureCLI(t *testing.T) {
	reqLog := &lockedBuffer{}
	f := start(t, arm.Options{RequestLog: reqLog})
	base := f.srv.URL()

	// Discovery as MSAL builds it for an ADFS authority: <authority>/.well-known/openid-configuration, no token.
	var doc map[string]any
	if status := f.getJSON(base+"/adfs/.well-known/openid-configuration", "", &doc); status != 200 {
		t.Fatalf("ADFS discovery: %d", status)
	}
	if doc["token_endpoint"] != base+"/adfs/oauth2/token" || doc["authorization_endpoint"] != base+"/adfs/oauth2/authorize" ||
		doc["jwks_uri"] != base+"/adfs/discovery/keys" || doc["issuer"] != base+"/"+f.srv.TenantID()+"/v2.0" {
		t.Errorf("ADFS discovery document: %v", doc)
	}
	var keys struct{ Keys []map[string]string }
	if status := f.getJSON(base+"/adfs/discovery/keys", "", &keys); status != 200 || len(keys.Keys) != 1 || keys.Keys[0]["alg"] != "ES256" {
		t.Errorf("ADFS keys: %d %v", status, keys)
	}

	// The token MSAL asks for works on ARM.
	status, tok := f.form(base+"/adfs/oauth2/token", msalForm(f.srv.ClientID(), f.srv.ClientSecret()))
	access, _ := tok["access_token"].(string)
	if status != 200 || access == "" || tok["token_type"] != "Bearer" || tok["expires_in"] == nil {
		t.Fatalf("ADFS token: %d %v", status, tok)
	}
	if status, body := f.raw(http.MethodGet, base+"/subscriptions?api-version=2019-11-01", access, ""); status != 200 {
		t.Errorf("ARM with the ADFS token: %d %s", status, body)
	}

	// Wrong credentials get Entra ID's answers, which az prints, and no secret comes back.
	status, refused := f.form(base+"/adfs/oauth2/token", msalForm(f.srv.ClientID(), "wrong-secret-value"))
	desc, _ := refused["error_description"].(string)
	if status != 401 || refused["error"] != "invalid_client" || !strings.HasPrefix(desc, "AADSTS7000215: Invalid client secret provided.") ||
		strings.Contains(desc, "wrong-secret-value") {
		t.Errorf("wrong secret: %d %v", status, refused)
	}
	status, refused = f.form(base+"/adfs/oauth2/token", msalForm(f.srv.ClientSecret(), f.srv.ClientSecret()))
	desc, _ = refused["error_description"].(string)
	if status != 400 || !strings.HasPrefix(desc, "AADSTS700016:") || strings.Contains(desc, f.srv.ClientSecret()) {
		t.Errorf("the secret as client id: %d %v", status, refused)
	}
	// Under /adfs, an unknown path is a 404, not a demand for a token.
	if status, body := f.raw(http.MethodGet, base+"/adfs/userinfo", "", ""); status != 404 {
		t.Errorf("unknown ADFS path: %d %s", status, body)
	}
	if log := reqLog.String(); !strings.Contains(log, `"route":"adfsToken"`) || strings.Contains(log, f.srv.ClientSecret()) || strings.Contains(log, "wrong-secret-value") {
		t.Errorf("request log has no token requests or has a secret:\n%s", log)
	}
}

func TestMetadataEndpointsPointAtTheADFSAuthority(t *testing.T) {
	f := start(t, arm.Options{})
	base := f.srv.URL()

	// az cloud register (msrestazure) reads the 2015-01-01 object.
	var old struct {
		GalleryEndpoint, GraphEndpoint string
		Authentication                 struct {
			LoginEndpoint string
			Audiences     []string
		}
	}
	if status := f.getJSON(base+"/metadata/endpoints?api-version=2015-01-01", "", &old); status != 200 {
		t.Fatalf("2015-01-01: %d", status)
	}
	if old.Authentication.LoginEndpoint != base+"/adfs" || len(old.Authentication.Audiences) == 0 ||
		old.Authentication.Audiences[0] != "https://management.core.windows.net/" || old.GalleryEndpoint == "" || old.GraphEndpoint != "https://graph.windows.net/" {
		t.Errorf("2015-01-01 metadata: %+v", old)
	}

	// ARM_CLOUD_METADATA_URL (az's cloud.py) wants an array of clouds.
	for _, v := range []string{"2019-05-01", "2022-09-01"} {
		var clouds []struct {
			Name, ResourceManager string
			Authentication        struct {
				LoginEndpoint, Tenant, IdentityProvider string
				Audiences                               []string
			}
			Suffixes map[string]string
		}
		if status := f.getJSON(base+"/metadata/endpoints?api-version="+v, "", &clouds); status != 200 || len(clouds) != 1 {
			t.Fatalf("%s: %d %+v", v, status, clouds)
		}
		c := clouds[0]
		if c.Name != "gitopsim" || c.ResourceManager != base+"/" || c.Authentication.LoginEndpoint != base+"/adfs" ||
			c.Authentication.Tenant != "adfs" || c.Authentication.IdentityProvider != "ADFS" ||
			len(c.Authentication.Audiences) == 0 || c.Suffixes == nil {
			t.Errorf("%s metadata: %+v", v, c)
		}
	}
	// The login endpoint it names is an authority MSAL can discover.
	var doc map[string]any
	if status := f.getJSON(old.Authentication.LoginEndpoint+"/.well-known/openid-configuration", "", &doc); status != 200 {
		t.Errorf("discovery under the advertised login endpoint: %d", status)
	}
}

// catalogFixture has two groups with connected clusters in each, a managed
// cluster and a configuration (which /resources must not list).
func catalogFixture(t *testing.T, opts arm.Options) (*fixture, *armresources.Client) {
	f := start(t, opts)
	f.group("rg1")
	f.group("rg2")
	create := func(rg, name, loc string, tags map[string]*string) {
		body := armtest.ConnectedCluster()
		body.Location, body.Tags = to.Ptr(loc), tags
		poller, err := f.ccs.BeginCreate(t.Context(), rg, name, body, nil)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := poller.PollUntilDone(t.Context(), &runtime.PollUntilDoneOptions{Frequency: 10 * time.Millisecond}); err != nil {
			t.Fatal(err)
		}
	}
	create("rg1", "arc1", "eastus", map[string]*string{"env": to.Ptr("dev")})
	create("rg2", "arc2", "West Europe", map[string]*string{"Env": to.Ptr("prod"), "team": to.Ptr("a")})
	status, body := f.raw(http.MethodPut, f.srv.URL()+"/subscriptions/"+f.srv.SubscriptionID()+"/resourceGroups/rg1/providers/Microsoft.ContainerService/managedClusters/aks1?api-version=2023-05-01",
		f.token(), `{"location":"eastus","properties":{}}`)
	if status != 201 {
		t.Fatalf("managed cluster: %d %s", status, body)
	}
	if _, _, err := f.putConfig("rg1", "arc1", "cfg", config("https://127.0.0.1/team/app.git")); err != nil {
		t.Fatal(err)
	}
	client, err := armresources.NewClient(f.srv.SubscriptionID(), f.az.Credential, f.az.Options)
	if err != nil {
		t.Fatal(err)
	}
	return f, client
}

// listed runs a pager to the end and returns the names and the pages it took.
func listed[T any](t *testing.T, pager *runtime.Pager[T], value func(T) []*armresources.GenericResourceExpanded) ([]*armresources.GenericResourceExpanded, int) {
	t.Helper()
	var all []*armresources.GenericResourceExpanded
	pages := 0
	for pager.More() {
		page, err := pager.NextPage(t.Context())
		if err != nil {
			t.Fatal(err)
		}
		pages++
		all = append(all, value(page)...)
	}
	return all, pages
}

func names(rs []*armresources.GenericResourceExpanded) []string {
	var out []string
	for _, r := range rs {
		out = append(out, *r.Name)
	}
	return out
}

func TestResourcesList(t *testing.T) {
	f, client := catalogFixture(t, arm.Options{})
	list := func(filter string, expand string, top int32) []*armresources.GenericResourceExpanded {
		t.Helper()
		opts := &armresources.ClientListOptions{}
		if filter != "" {
			opts.Filter = to.Ptr(filter)
		}
		if expand != "" {
			opts.Expand = to.Ptr(expand)
		}
		if top > 0 {
			opts.Top = to.Ptr(top)
		}
		rs, _ := listed(t, client.NewListPager(opts), func(p armresources.ClientListResponse) []*armresources.GenericResourceExpanded { return p.Value })
		return rs
	}

	// Tracked resources only: no groups, no sourceControlConfigurations.
	all := list("", "", 0)
	if got := names(all); !slices.Equal(got, []string{"aks1", "arc1", "arc2"}) {
		t.Fatalf("all resources: %v", got)
	}
	arc1 := all[1]
	if *arc1.ID != "/subscriptions/"+f.srv.SubscriptionID()+"/resourceGroups/rg1/providers/Microsoft.Kubernetes/connectedClusters/arc1" ||
		*arc1.Type != "Microsoft.Kubernetes/connectedClusters" || *arc1.Location != "eastus" || *arc1.Tags["env"] != "dev" ||
		arc1.Identity == nil || *arc1.Identity.Type != armresources.ResourceIdentityTypeSystemAssigned || arc1.Properties != nil ||
		arc1.CreatedTime != nil || arc1.ProvisioningState != nil {
		t.Errorf("arc1 as a generic resource: %+v", arc1)
	}
	if *all[0].Type != "Microsoft.ContainerService/managedClusters" {
		t.Errorf("aks1 type %s", *all[0].Type)
	}

	expanded := list("", "createdTime,changedTime,provisioningState", 0)
	for _, r := range expanded {
		if r.CreatedTime == nil || r.ChangedTime == nil || r.ProvisioningState == nil || *r.ProvisioningState != "Succeeded" {
			t.Errorf("expanded %s: %+v", *r.Name, r)
		}
	}

	for _, tc := range []struct{ filter, want string }{
		{"resourceGroup eq 'RG1'", "aks1 arc1"},
		{"name eq 'arc1'", "arc1"},
		{"resourceType eq 'microsoft.kubernetes/connectedclusters'", "arc1 arc2"},
		{"resourceType ne 'Microsoft.Kubernetes/connectedClusters'", "aks1"},
		{"location eq 'westeurope'", "arc2"},
		{"location eq 'West Europe'", "arc2"},
		{"identity eq 'SystemAssigned'", "arc1 arc2"},
		{"plan eq 'x'", ""},
		{"substringof('ARC', name)", "arc1 arc2"},
		{"substringof('g2', resourceGroup) or name eq 'aks1'", "aks1 arc2"},
		// What az resource list -g/--name/--resource-type sends, combined.
		{"resourceGroup eq 'rg1' and name eq 'arc1' and resourceType eq 'Microsoft.Kubernetes/connectedClusters'", "arc1"},
		{"tagName eq 'env' and tagValue eq 'dev'", "arc1"},
		{"tagname eq 'ENV' and tagvalue eq 'prod'", "arc2"}, // az's spelling; tag names are case-insensitive
		{"tagName eq 'env' and tagValue eq 'PROD'", ""},     // values are not
		{"tagName eq 'team'", "arc2"},
		{"startswith(tagName, 'te')", "arc2"},
		{"name eq 'it''s'", ""},
	} {
		got := strings.Join(names(list(tc.filter, "", 0)), " ")
		if got != tc.want {
			t.Errorf("$filter=%s: got %q, want %q", tc.filter, got, tc.want)
		}
	}
	// Filtering by tag leaves the tags out of the results, as the spec says.
	if r := list("tagName eq 'env' and tagValue eq 'dev'", "", 0); len(r) != 1 || r[0].Tags != nil {
		t.Errorf("tag-filtered results carry tags: %+v", r)
	}

	// az sends an empty $filter and its own spelling of $expand; the group-scoped route lists the group only.
	token := f.token()
	sub := f.srv.URL() + "/subscriptions/" + f.srv.SubscriptionID()
	var page struct {
		Value []map[string]any
	}
	if status := f.getJSON(sub+"/resources?$filter=&$expand=createdTime%2CchangedTime%2CprovisioningState&api-version=2021-04-01", token, &page); status != 200 ||
		len(page.Value) != 3 || page.Value[0]["createdTime"] == nil {
		t.Errorf("az's request: %d %v", status, page.Value)
	}
	byGroup, _ := listed(t, client.NewListByResourceGroupPager("rg2", nil), func(p armresources.ClientListByResourceGroupResponse) []*armresources.GenericResourceExpanded {
		return p.Value
	})
	if got := names(byGroup); !slices.Equal(got, []string{"arc2"}) {
		t.Errorf("rg2's resources: %v", got)
	}
	status, body := f.raw(http.MethodGet, sub+"/resourceGroups/nope/resources?api-version=2021-04-01", token, "")
	if status != 404 || !strings.Contains(string(body), "ResourceGroupNotFound") {
		t.Errorf("resources of a missing group: %d %s", status, body)
	}

	// What ARM cannot evaluate is a 400 InvalidFilterInQueryString naming the filter.
	for _, bad := range []string{
		"foo eq 'x'", "name gt 'a'", "name eq arc1", "name eq 'arc1", "name eq 'a' and", "tagValue eq 'dev'",
		"tagName eq 'env' and name eq 'arc1'", "tagName eq 'env' or tagName eq 'team'", "tagName ne 'env'",
		"substringof('a', location)", "startswith(name, 'a')", "(name eq 'a')",
	} {
		status, body := f.raw(http.MethodGet, sub+"/resources?api-version=2021-04-01&$filter="+url.QueryEscape(bad), token, "")
		if status != 400 || !strings.Contains(string(body), `"code":"InvalidFilterInQueryString"`) || !strings.Contains(string(body), "Invalid $filter") {
			t.Errorf("$filter=%s: %d %s", bad, status, body)
		}
	}
	for _, q := range []string{"$expand=properties", "$top=0", "$top=x"} {
		if status, body := f.raw(http.MethodGet, sub+"/resources?api-version=2021-04-01&"+q, token, ""); status != 400 || !strings.Contains(string(body), "InvalidParameter") {
			t.Errorf("%s: %d %s", q, status, body)
		}
	}
}

func TestResourcesListPaging(t *testing.T) {
	f, client := catalogFixture(t, arm.Options{PageSize: 2})
	// $top is ARM's page size, and nextLink keeps the filter and the expansion.
	pager := client.NewListPager(&armresources.ClientListOptions{
		Top: to.Ptr[int32](1), Filter: to.Ptr("substringof('a', name)"), Expand: to.Ptr("provisioningState"),
	})
	rs, pages := listed(t, pager, func(p armresources.ClientListResponse) []*armresources.GenericResourceExpanded { return p.Value })
	if got := names(rs); pages != 3 || !slices.Equal(got, []string{"aks1", "arc1", "arc2"}) || rs[2].ProvisioningState == nil {
		t.Errorf("$top=1: %d pages, %v", pages, got)
	}
	rs, pages = listed(t, client.NewListPager(&armresources.ClientListOptions{Filter: to.Ptr("resourceType eq 'Microsoft.Kubernetes/connectedClusters'")}),
		func(p armresources.ClientListResponse) []*armresources.GenericResourceExpanded { return p.Value })
	if got := names(rs); pages != 1 || !slices.Equal(got, []string{"arc1", "arc2"}) {
		t.Errorf("filtered to one page: %d pages, %v", pages, got)
	}
	var page struct{ NextLink string }
	f.getJSON(f.srv.URL()+"/subscriptions/"+f.srv.SubscriptionID()+"/resources?api-version=2021-04-01&$filter="+url.QueryEscape("name ne 'x'"), f.token(), &page)
	if next, err := url.Parse(page.NextLink); err != nil || next.Query().Get("$filter") != "name ne 'x'" || next.Query().Get("$skiptoken") == "" {
		t.Errorf("nextLink %q", page.NextLink)
	}
}

func TestResourceGroupsFilterByTag(t *testing.T) {
	f := start(t, arm.Options{})
	for name, tags := range map[string]map[string]*string{
		"a": {"team": to.Ptr("x")}, "b": {"Team": to.Ptr("y")}, "c": nil,
	} {
		if _, err := f.groups.CreateOrUpdate(t.Context(), name, armresources.ResourceGroup{Location: to.Ptr("eastus"), Tags: tags}, nil); err != nil {
			t.Fatal(err)
		}
	}
	list := func(filter string) []string {
		var out []string
		pager := f.groups.NewListPager(&armresources.ResourceGroupsClientListOptions{Filter: to.Ptr(filter)})
		for pager.More() {
			page, err := pager.NextPage(t.Context())
			if err != nil {
				t.Fatal(err)
			}
			for _, g := range page.Value {
				out = append(out, *g.Name)
				if g.Tags == nil {
					t.Errorf("group %s listed without its tags", *g.Name)
				}
			}
		}
		return out
	}
	// az group list --tag team=x sends lower-case tagname/tagvalue.
	if got := list("tagname eq 'team' and tagvalue eq 'x'"); !slices.Equal(got, []string{"a"}) {
		t.Errorf("team=x: %v", got)
	}
	if got := list("tagName eq 'TEAM'"); !slices.Equal(got, []string{"a", "b"}) {
		t.Errorf("team: %v", got)
	}
	status, body := f.raw(http.MethodGet, f.srv.URL()+"/subscriptions/"+f.srv.SubscriptionID()+"/resourcegroups?api-version=2021-04-01&$filter="+url.QueryEscape("name eq 'a'"), f.token(), "")
	if status != 400 || !strings.Contains(string(body), "InvalidFilterInQueryString") {
		t.Errorf("name filter on groups: %d %s", status, body)
	}
}

func TestLocationsTenantsAndSubscriptions(t *testing.T) {
	f := start(t, arm.Options{PageSize: 2})
	token := f.token()
	sub := f.srv.URL() + "/subscriptions/" + f.srv.SubscriptionID()

	type location struct {
		ID, Name, DisplayName, RegionalDisplayName, Type string
		Latitude                                         string
		Metadata                                         *struct {
			RegionType, RegionCategory, GeographyGroup, Latitude, Longitude, PhysicalLocation string
			PairedRegion                                                                      []struct{ Name, ID string }
		}
	}
	var page struct {
		Value    []location
		NextLink *string
	}
	// What az account list-locations asks: one page however small pages are, the 2019-11-01 shape.
	if status := f.getJSON(sub+"/locations?api-version=2019-11-01", token, &page); status != 200 || page.NextLink != nil || len(page.Value) < 10 {
		t.Fatalf("locations: %d, %d regions, nextLink %v", status, len(page.Value), page.NextLink)
	}
	listedNames := map[string]bool{}
	for _, l := range page.Value {
		listedNames[l.Name] = true
	}
	for _, want := range []string{"eastus", "westeurope"} {
		if !listedNames[want] {
			t.Errorf("%s missing from the locations", want)
		}
	}
	for _, l := range page.Value {
		if l.ID != "/subscriptions/"+f.srv.SubscriptionID()+"/locations/"+l.Name || l.DisplayName == "" || !strings.HasSuffix(l.RegionalDisplayName, ") "+l.DisplayName) ||
			l.Type != "" || l.Metadata == nil || l.Metadata.RegionType != "Physical" || l.Metadata.Latitude == "" || len(l.Metadata.PairedRegion) != 1 {
			t.Errorf("location %+v", l)
			continue
		}
		if p := l.Metadata.PairedRegion[0]; !listedNames[p.Name] || p.ID != "/subscriptions/"+f.srv.SubscriptionID()+"/locations/"+p.Name {
			t.Errorf("%s is paired with %+v, which is not listed", l.Name, p)
		}
	}
	page.Value = nil
	f.getJSON(sub+"/locations?api-version=2016-06-01", token, &page)
	if len(page.Value) == 0 || page.Value[0].Latitude == "" || page.Value[0].Metadata != nil {
		t.Errorf("2016-06-01 locations: %+v", page.Value)
	}
	page.Value = nil
	f.getJSON(sub+"/locations?api-version=2022-12-01", token, &page)
	if len(page.Value) == 0 || page.Value[0].Type != "Region" {
		t.Errorf("2022-12-01 locations: %+v", page.Value)
	}

	var tenants struct{ Value []map[string]any }
	if status := f.getJSON(f.srv.URL()+"/tenants?api-version=2019-11-01", token, &tenants); status != 200 || len(tenants.Value) != 1 ||
		tenants.Value[0]["tenantId"] != f.srv.TenantID() || tenants.Value[0]["id"] != "/tenants/"+f.srv.TenantID() || tenants.Value[0]["tenantCategory"] != "Home" {
		t.Errorf("tenants: %d %v", status, tenants.Value)
	}

	var s map[string]any
	f.getJSON(sub+"?api-version=2019-11-01", token, &s)
	if m, ok := s["managedByTenants"].([]any); !ok || len(m) != 0 || s["tags"] == nil {
		t.Errorf("subscription: %v", s)
	}
}

func TestProviderVersionsNewestFirstAndEmptySegments(t *testing.T) {
	f := start(t, arm.Options{})
	f.group("rg1")
	f.connectedCluster("rg1", "arc1")
	token := f.token()
	sub := f.srv.URL() + "/subscriptions/" + f.srv.SubscriptionID()
	var provider struct {
		ResourceTypes []struct {
			ResourceType string
			APIVersions  []string
		}
	}
	f.getJSON(sub+"/providers/Microsoft.Kubernetes?api-version=2021-04-01", token, &provider)
	var versions []string
	for _, rt := range provider.ResourceTypes {
		if rt.ResourceType == "connectedClusters" {
			versions = rt.APIVersions
		}
	}
	if len(versions) < 2 || !slices.IsSortedFunc(versions, func(a, b string) int { return strings.Compare(b, a) }) {
		t.Fatalf("connectedClusters apiVersions not newest first: %v", versions)
	}
	// az resource show picks the first version without "preview".
	picked := versions[slices.IndexFunc(versions, func(v string) bool { return !strings.Contains(v, "preview") })]
	for _, v := range versions {
		if !strings.Contains(v, "preview") && v > picked {
			t.Errorf("az would pick %s, not the newest GA %s", picked, v)
		}
	}

	// az resource show -g rg1 -n arc1 --resource-type Microsoft.Kubernetes/connectedClusters sends an empty parent path.
	status, body := f.raw(http.MethodGet, sub+"/resourcegroups/rg1/providers/Microsoft.Kubernetes//connectedClusters/arc1?api-version="+picked, token, "")
	if status != 200 || !strings.Contains(string(body), `"name":"arc1"`) {
		t.Errorf("path with //: %d %s", status, body)
	}
}

func TestTags(t *testing.T) {
	f := start(t, arm.Options{})
	f.group("rg1")
	cc := f.connectedCluster("rg1", "arc1")
	tags, err := armresources.NewTagsClient(f.srv.SubscriptionID(), f.az.Credential, f.az.Options)
	if err != nil {
		t.Fatal(err)
	}
	ctx := t.Context()
	get := func(scope string) map[string]string {
		t.Helper()
		res, err := tags.GetAtScope(ctx, scope, nil)
		if err != nil {
			t.Fatal(err)
		}
		if *res.Name != "default" || *res.Type != "Microsoft.Resources/tags" || *res.ID != scope+"/providers/Microsoft.Resources/tags/default" {
			t.Errorf("tags resource %s %s %s", *res.ID, *res.Name, *res.Type)
		}
		out := map[string]string{}
		for k, v := range res.Properties.Tags {
			out[k] = *v
		}
		return out
	}
	ptrs := func(kv ...string) map[string]*string {
		m := map[string]*string{}
		for i := 0; i < len(kv); i += 2 {
			m[kv[i]] = to.Ptr(kv[i+1])
		}
		return m
	}

	// az tag create --resource-id, az tag update --operation Merge/Delete, az tag delete.
	if _, err := tags.CreateOrUpdateAtScope(ctx, *cc.ID, armresources.TagsResource{Properties: &armresources.Tags{Tags: ptrs("a", "b")}}, nil); err != nil {
		t.Fatal(err)
	}
	_, err = tags.UpdateAtScope(ctx, *cc.ID, armresources.TagsPatchResource{Operation: to.Ptr(armresources.TagsPatchOperationMerge), Properties: &armresources.Tags{Tags: ptrs("c", "d", "A", "B2")}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if got := get(*cc.ID); len(got) != 2 || got["A"] != "B2" || got["c"] != "d" {
		t.Errorf("after merge: %v", got)
	}
	// The cluster itself carries them.
	cl, err := f.ccs.Get(ctx, "rg1", "arc1", nil)
	if err != nil || *cl.Tags["c"] != "d" {
		t.Errorf("cluster tags: %v %v", err, cl.Tags)
	}
	_, err = tags.UpdateAtScope(ctx, *cc.ID, armresources.TagsPatchResource{Operation: to.Ptr(armresources.TagsPatchOperationDelete), Properties: &armresources.Tags{Tags: ptrs("c", "other")}}, nil)
	if err != nil || len(get(*cc.ID)) != 2 {
		t.Errorf("delete with a different value removed the tag: %v %v", err, get(*cc.ID))
	}
	group := "/subscriptions/" + f.srv.SubscriptionID() + "/resourceGroups/rg1"
	if _, err := tags.CreateOrUpdateAtScope(ctx, group, armresources.TagsResource{Properties: &armresources.Tags{Tags: ptrs("c", "e")}}, nil); err != nil {
		t.Fatal(err)
	}
	g, err := f.groups.Get(ctx, "rg1", nil)
	if err != nil || *g.Tags["c"] != "e" {
		t.Errorf("group tags: %v %v", err, g.Tags)
	}

	// az tag list: names with their values and counts.
	var details []*armresources.TagDetails
	pager := tags.NewListPager(nil)
	for pager.More() {
		page, err := pager.NextPage(ctx)
		if err != nil {
			t.Fatal(err)
		}
		details = append(details, page.Value...)
	}
	var summary []string
	for _, d := range details {
		s := *d.TagName + "=" + string(rune('0'+*d.Count.Value)) + ":"
		for _, v := range d.Values {
			s += " " + *v.TagValue + "/" + string(rune('0'+*v.Count.Value))
		}
		summary = append(summary, s)
	}
	if got := strings.Join(summary, "; "); got != "A=1: B2/1; c=2: d/1 e/1" {
		t.Errorf("tag names: %s", got)
	}

	if _, err := tags.DeleteAtScope(ctx, *cc.ID, nil); err != nil {
		t.Fatal(err)
	}
	if got := get(*cc.ID); len(got) != 0 {
		t.Errorf("after delete: %v", got)
	}
	_, err = tags.GetAtScope(ctx, "/subscriptions/"+f.srv.SubscriptionID()+"/resourceGroups/rg1/providers/Microsoft.Kubernetes/connectedClusters/nope", nil)
	if re := responseError(t, err); re.StatusCode != 404 || re.ErrorCode != "ResourceNotFound" {
		t.Errorf("tags of a missing cluster: %v", err)
	}
	_, err = tags.UpdateAtScope(ctx, group, armresources.TagsPatchResource{Operation: to.Ptr(armresources.TagsPatchOperation("Append")), Properties: &armresources.Tags{}}, nil)
	if re := responseError(t, err); re.StatusCode != 400 {
		t.Errorf("unknown operation: %v", err)
	}
}
