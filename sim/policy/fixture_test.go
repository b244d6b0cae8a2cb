package policy_test

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	azpolicy "github.com/Azure/azure-sdk-for-go/sdk/azcore/policy"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/to"
	"github.com/Azure/azure-sdk-for-go/sdk/resourcemanager/authorization/armauthorization/v2"
	"github.com/Azure/azure-sdk-for-go/sdk/resourcemanager/resources/armpolicy"
	"github.com/Azure/azure-sdk-for-go/sdk/resourcemanager/resources/armresources"

	"github.com/gitopsim/gitopsim/sim"
	"github.com/gitopsim/gitopsim/sim/arm"
	"github.com/gitopsim/gitopsim/sim/azsdk"
	"github.com/gitopsim/gitopsim/sim/clock"
	"github.com/gitopsim/gitopsim/sim/policy"
)

// fixture is an ARM server hosting the policy provider, with official
// SDK clients pointed at it over TLS.
type fixture struct {
	t        *testing.T
	srv      *arm.Server
	p        *policy.Provider
	az       *azsdk.Clients
	sub      string
	defs     *armpolicy.DefinitionsClient
	sets     *armpolicy.SetDefinitionsClient
	assigns  *armpolicy.AssignmentsClient
	roles    *armauthorization.RoleAssignmentsClient
	roleDefs *armauthorization.RoleDefinitionsClient
	groups   *armresources.ResourceGroupsClient
	workdir  string
	stateDir string
	clk      *clock.Virtual
}

// start boots a server (again, when f is given, on f's state dir).
func start(t *testing.T, f *fixture) *fixture {
	t.Helper()
	if f == nil {
		f = &fixture{t: t, workdir: t.TempDir(), stateDir: t.TempDir(), clk: clock.NewVirtual(time.Time{})}
	}
	log := slog.New(slog.NewTextHandler(t.Output(), nil))
	// Tokens outlive the virtual days some tests skip over.
	srv, err := arm.New(arm.Options{Workdir: f.workdir, StateDir: f.stateDir, Clock: f.clk, Logger: log, PageSize: 2, TokenLifetime: 365 * 24 * time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	p, err := policy.New(policy.Options{ARM: srv, Clock: f.clk, Logger: log})
	if err != nil {
		t.Fatal(err)
	}
	if err := srv.Host(p); err != nil {
		t.Fatal(err)
	}
	if err := srv.Host(p.Insights(policy.InsightsOptions{PageSize: 2})); err != nil {
		t.Fatal(err)
	}
	if err := srv.Start(t.Context()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { srv.Stop(context.Background()) })
	f.srv, f.p = srv, p
	if f.az, err = azsdk.New(sim.ARMEndpoint{
		URL: srv.URL(), CAFile: srv.CAFile(), TenantID: srv.TenantID(), SubscriptionID: srv.SubscriptionID(),
		AuthorityHost: srv.AuthorityHost(), ClientID: srv.ClientID(), ClientSecret: srv.ClientSecret(),
	}); err != nil {
		t.Fatal(err)
	}
	f.sub = f.az.SubscriptionID
	must := func(err error) {
		if err != nil {
			t.Fatal(err)
		}
	}
	f.defs, err = armpolicy.NewDefinitionsClient(f.sub, f.az.Credential, f.az.Options)
	must(err)
	f.sets, err = armpolicy.NewSetDefinitionsClient(f.sub, f.az.Credential, f.az.Options)
	must(err)
	f.assigns, err = armpolicy.NewAssignmentsClient(f.sub, f.az.Credential, f.az.Options)
	must(err)
	f.roles, err = armauthorization.NewRoleAssignmentsClient(f.sub, f.az.Credential, f.az.Options)
	must(err)
	f.roleDefs, err = armauthorization.NewRoleDefinitionsClient(f.az.Credential, f.az.Options)
	must(err)
	f.groups, err = armresources.NewResourceGroupsClient(f.sub, f.az.Credential, f.az.Options)
	must(err)
	return f
}

func (f *fixture) group(name string) string {
	f.t.Helper()
	if _, err := f.groups.CreateOrUpdate(f.t.Context(), name, armresources.ResourceGroup{Location: to.Ptr("westeurope")}, nil); err != nil {
		f.t.Fatal(err)
	}
	return "/subscriptions/" + f.sub + "/resourceGroups/" + name
}

// raw sends a request with a valid token and returns status and body.
func (f *fixture) raw(method, path, body string) (int, string) {
	f.t.Helper()
	tok, err := f.az.Credential.GetToken(f.t.Context(), azpolicy.TokenRequestOptions{Scopes: []string{azsdk.Audience + "/.default"}})
	if err != nil {
		f.t.Fatal(err)
	}
	req, _ := http.NewRequestWithContext(f.t.Context(), method, f.srv.URL()+path, strings.NewReader(body))
	req.Header.Set("Authorization", "Bearer "+tok.Token)
	req.Header.Set("Content-Type", "application/json")
	resp, err := f.az.HTTPClient.Do(req)
	if err != nil {
		f.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// wantErr checks an SDK error's status and code.
func wantErr(t *testing.T, err error, status int, code string) {
	t.Helper()
	var re *azcore.ResponseError
	if !errors.As(err, &re) {
		t.Fatalf("error = %v, want %d %s", err, status, code)
	}
	if re.StatusCode != status || re.ErrorCode != code {
		t.Errorf("error = %d %s, want %d %s\n%v", re.StatusCode, re.ErrorCode, status, code, err)
	}
}

// Built-in GitOps definitions.
const (
	noSecrets = "1d61c4d2-aef2-432b-87fc-7f96b019b7e1"
	sshDef    = "c050047b-b21b-4822-8a2d-c1e37c3c0c6a"
	httpsDef  = "a6f560f4-f582-4b67-b123-a37dcd1bf7ea"
	builtInID = "/providers/Microsoft.Authorization/policyDefinitions/"
)

// gitopsParams are the required parameters of the no-secrets built-in.
func gitopsParams() map[string]*armpolicy.ParameterValuesValue {
	v := func(s string) *armpolicy.ParameterValuesValue { return &armpolicy.ParameterValuesValue{Value: s} }
	return map[string]*armpolicy.ParameterValuesValue{
		"configurationResourceName": v("cluster-config"), "operatorInstanceName": v("cluster-config"),
		"operatorNamespace": v("cluster-config"), "operatorScope": v("cluster"),
		"repositoryUrl": v("https://github.com/Azure/arc-k8s-demo"), "enableHelmOperator": v("false"),
	}
}

func (f *fixture) listDefs(opts *armpolicy.DefinitionsClientListOptions) []string {
	f.t.Helper()
	var names []string
	for pg := f.defs.NewListPager(opts); pg.More(); {
		page, err := pg.NextPage(f.t.Context())
		if err != nil {
			f.t.Fatal(err)
		}
		for _, d := range page.Value {
			names = append(names, *d.Name)
		}
	}
	return names
}

func (f *fixture) listAssignments(filter string) []string {
	f.t.Helper()
	var opts *armpolicy.AssignmentsClientListOptions
	if filter != "" {
		opts = &armpolicy.AssignmentsClientListOptions{Filter: &filter}
	}
	var names []string
	for pg := f.assigns.NewListPager(opts); pg.More(); {
		page, err := pg.NextPage(f.t.Context())
		if err != nil {
			f.t.Fatal(err)
		}
		for _, a := range page.Value {
			names = append(names, *a.Name)
		}
	}
	return names
}

func (f *fixture) listRoles(scope, filter string) []string {
	f.t.Helper()
	var opts *armauthorization.RoleAssignmentsClientListForScopeOptions
	if filter != "" {
		// armauthorization puts $filter into the URL unencoded, spaces
		// and all; Azure's front door takes that, the ARM server's
		// HTTP/1.1 parser does not (README, Differences), so spaces go in
		// encoded.
		filter = strings.ReplaceAll(filter, " ", "%20")
		opts = &armauthorization.RoleAssignmentsClientListForScopeOptions{Filter: &filter}
	}
	var names []string
	for pg := f.roles.NewListForScopePager(scope, opts); pg.More(); {
		page, err := pg.NextPage(f.t.Context())
		if err != nil {
			f.t.Fatal(err)
		}
		for _, a := range page.Value {
			names = append(names, *a.Name)
		}
	}
	return names
}
