// Package simmatchers holds Gomega matchers for suites built on gitopsim:
// the compliance state of a configuration as the Azure SDK returns it, an
// object's presence in a cluster, and a scenario's result.
//
//	Eventually(func() (armkubernetesconfiguration.SourceControlConfiguration, error) {
//		r, err := client.Get(ctx, rg, "Microsoft.Kubernetes", "connectedClusters", cluster, name, nil)
//		return r.SourceControlConfiguration, err
//	}).Should(simmatchers.HaveComplianceState("Installed"))
//
//	Eventually(simmatchers.Object(cfg, "v1", "ConfigMap", "team-a", "app-config")).Should(simmatchers.Exist())
package simmatchers

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"

	"github.com/Azure/azure-sdk-for-go/sdk/resourcemanager/kubernetesconfiguration/armkubernetesconfiguration/v2"
	"github.com/onsi/gomega/gcustom"
	"github.com/onsi/gomega/types"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/discovery"
	"k8s.io/client-go/discovery/cached/memory"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/restmapper"

	"github.com/gitopsim/gitopsim/sim/scenario"
)

// compliance pulls complianceStatus out of what the SDK returns, by value
// or by pointer.
func compliance(actual any) (*armkubernetesconfiguration.ComplianceStatus, error) {
	var c *armkubernetesconfiguration.SourceControlConfiguration
	switch v := actual.(type) {
	case armkubernetesconfiguration.SourceControlConfiguration:
		c = &v
	case *armkubernetesconfiguration.SourceControlConfiguration:
		c = v
	case armkubernetesconfiguration.SourceControlConfigurationsClientGetResponse:
		c = &v.SourceControlConfiguration
	default:
		return nil, fmt.Errorf("expected a SourceControlConfiguration, got %T", actual)
	}
	if c == nil || c.Properties == nil || c.Properties.ComplianceStatus == nil {
		return nil, fmt.Errorf("the configuration has no complianceStatus")
	}
	return c.Properties.ComplianceStatus, nil
}

func str[T ~string](p *T) string {
	if p == nil {
		return ""
	}
	return string(*p)
}

// HaveComplianceState matches a configuration whose complianceState is
// state (Pending, Installed, Failed, ...).
func HaveComplianceState(state string) types.GomegaMatcher {
	return gcustom.MakeMatcher(func(actual any) (bool, error) {
		cs, err := compliance(actual)
		if err != nil {
			return false, err
		}
		return str(cs.ComplianceState) == state, nil
	}).WithTemplate("Expected configuration\n{{.FormattedActual}}\n{{.To}} have complianceState {{.Data}}", state)
}

// HaveComplianceMessage matches a configuration whose compliance message
// (the operator's message inside the JSON string, or the raw string)
// contains substr.
func HaveComplianceMessage(substr string) types.GomegaMatcher {
	return gcustom.MakeMatcher(func(actual any) (bool, error) {
		cs, err := compliance(actual)
		if err != nil {
			return false, err
		}
		msg := str(cs.Message)
		var parts struct{ OperatorMessage string }
		_ = json.Unmarshal([]byte(msg), &parts)
		return strings.Contains(msg, substr) || strings.Contains(parts.OperatorMessage, substr), nil
	}).WithTemplate("Expected configuration\n{{.FormattedActual}}\n{{.To}} have a compliance message containing {{.Data}}", substr)
}

// ObjectRef names a Kubernetes object; Object builds one that Exist can
// look up.
type ObjectRef struct {
	Config                            *rest.Config
	APIVersion, Kind, Namespace, Name string
}

// Object refers to an object in the cluster cfg points at (for example a
// sim.Connected's Backend.AdminConfig()).
func Object(cfg *rest.Config, apiVersion, kind, namespace, name string) ObjectRef {
	return ObjectRef{Config: cfg, APIVersion: apiVersion, Kind: kind, Namespace: namespace, Name: name}
}

func (o ObjectRef) String() string {
	if o.Namespace == "" {
		return fmt.Sprintf("%s %s", o.Kind, o.Name)
	}
	return fmt.Sprintf("%s %s/%s", o.Kind, o.Namespace, o.Name)
}

// get returns the object, nil when it does not exist.
func (o ObjectRef) get(ctx context.Context) (*unstructured.Unstructured, error) {
	gv, err := schema.ParseGroupVersion(o.APIVersion)
	if err != nil {
		return nil, err
	}
	dc, err := discovery.NewDiscoveryClientForConfig(o.Config)
	if err != nil {
		return nil, err
	}
	m := restmapper.NewDeferredDiscoveryRESTMapper(memory.NewMemCacheClient(dc))
	mapping, err := m.RESTMapping(schema.GroupKind{Group: gv.Group, Kind: o.Kind}, gv.Version)
	if meta.IsNoMatchError(err) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	c, err := dynamic.NewForConfig(o.Config)
	if err != nil {
		return nil, err
	}
	var ri dynamic.ResourceInterface = c.Resource(mapping.Resource)
	if mapping.Scope.Name() == meta.RESTScopeNameNamespace {
		ri = c.Resource(mapping.Resource).Namespace(o.Namespace)
	}
	u, err := ri.Get(ctx, o.Name, metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		return nil, nil
	}
	return u, err
}

// Exist matches an ObjectRef whose object exists in its cluster. Use it
// with Eventually to wait for a sync, or with Consistently and Not to
// check that nothing arrives.
func Exist() types.GomegaMatcher {
	return gcustom.MakeMatcher(func(o ObjectRef) (bool, error) {
		u, err := o.get(context.Background())
		return u != nil, err
	}).WithTemplate("Expected {{.Actual}} {{.To}} exist in the cluster")
}

// HaveData matches an ObjectRef to a ConfigMap (or any object with a data
// map) whose data[key] is value.
func HaveData(key, value string) types.GomegaMatcher {
	return gcustom.MakeMatcher(func(o ObjectRef) (bool, error) {
		u, err := o.get(context.Background())
		if err != nil || u == nil {
			return false, err
		}
		v, _, _ := unstructured.NestedString(u.Object, "data", key)
		return v == value, nil
	}).WithTemplate("Expected {{.Actual}} {{.To}} have data {{.Data}}", key+"="+value)
}

// Pass matches a scenario result that passed; its failure message is the
// scenario's failures and timeline.
func Pass() types.GomegaMatcher {
	return gcustom.MakeMatcher(func(r *scenario.Result) (bool, error) {
		if r == nil {
			return false, fmt.Errorf("no scenario result")
		}
		return r.Passed, nil
	}).WithTemplate("Expected scenario {{.Actual.Name}} {{.To}} pass; failures:\n{{range .Actual.Failures}}  {{.}}\n{{end}}timeline:\n{{.Actual.Timeline}}")
}
