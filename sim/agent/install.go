package agent

import (
	"context"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"golang.org/x/crypto/ssh"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"

	"github.com/gitopsim/gitopsim/sim/arm"
	"github.com/gitopsim/gitopsim/sim/clock"
)

// Labels and annotations the agent puts on what it installs.
const (
	// LabelCluster marks objects of one connected cluster's agent (a hash
	// of its resource id), so several simulated clusters can share one
	// API server.
	LabelCluster = "gitopsim.dev/connected-cluster"
	// LabelConfiguration names the configuration an object belongs to.
	LabelConfiguration = "clusterconfig.azure.com/configuration-name"
	annGeneration      = "gitopsim.dev/generation"
	annClusterID       = "gitopsim.dev/connected-cluster-id"
	annGeneratedKey    = "gitopsim.dev/generated-key"
	annSimulated       = "gitopsim.dev/simulated"
	fieldManager       = "config-agent"
	statusManager      = "config-agent-status"
	// FluxImage is the image of the operator Deployment (never run: the
	// operator runs inside gitopsim). Its tag is the fluxd release whose
	// behaviour the simulated operator follows, 1.25.4, the last of Flux
	// v1: loading, flags, sync, garbage collection and kubectl's apply
	// are read from that tag. (Arc's own early docs showed 1.16.0, which
	// lacks --k8s-default-namespace and sync_only, among others.)
	FluxImage = "docker.io/fluxcd/flux:1.25.4"
)

var (
	gvrNamespace   = schema.GroupVersionResource{Version: "v1", Resource: "namespaces"}
	gvrSA          = schema.GroupVersionResource{Version: "v1", Resource: "serviceaccounts"}
	gvrSecret      = schema.GroupVersionResource{Version: "v1", Resource: "secrets"}
	gvrRole        = schema.GroupVersionResource{Group: "rbac.authorization.k8s.io", Version: "v1", Resource: "roles"}
	gvrRoleBinding = schema.GroupVersionResource{Group: "rbac.authorization.k8s.io", Version: "v1", Resource: "rolebindings"}
	gvrClusterRole = schema.GroupVersionResource{Group: "rbac.authorization.k8s.io", Version: "v1", Resource: "clusterroles"}
	gvrCRB         = schema.GroupVersionResource{Group: "rbac.authorization.k8s.io", Version: "v1", Resource: "clusterrolebindings"}
	gvrDeployment  = schema.GroupVersionResource{Group: "apps", Version: "v1", Resource: "deployments"}
	gvrCRD         = schema.GroupVersionResource{Group: "apiextensions.k8s.io", Version: "v1", Resource: "customresourcedefinitions"}
	// GitConfigGVR is where config-agent mirrors each configuration.
	GitConfigGVR = schema.GroupVersionResource{Group: "clusterconfig.azure.com", Version: "v1beta1", Resource: "gitconfigs"}
)

var errSettingsExpired = errors.New("protected settings expired before the agent fetched them")

// gitCreds is what an operator authenticates and verifies git with.
type gitCreds struct {
	signer     ssh.Signer // SSH remotes
	privatePEM []byte
	publicKey  string // authorized_keys form, reported as repositoryPublicKey
	generated  bool
	httpsUser  string
	httpsPass  string
	knownHosts string
}

func secretName(instance string) string { return instance + "-git-deploy" }

// credentials resolves a configuration's git credentials: protected
// settings from Azure when it still hands them out, else the deploy-key
// Secret written when they were fetched, else a generated key for SSH.
func (a *Agent) credentials(ctx context.Context, d arm.DesiredConfiguration, p fluxParams) (*gitCreds, error) {
	sp := d.Spec
	c := &gitCreds{knownHosts: a.opts.GitKnownHosts}
	if sp.SSHKnownHostsContents != "" {
		kh, err := base64.StdEncoding.DecodeString(sp.SSHKnownHostsContents)
		if err != nil {
			return nil, fmt.Errorf("sshKnownHostsContents is not base64: %w", err)
		}
		c.knownHosts = string(kh)
	}
	existing, err := a.kube.CoreV1().Secrets(sp.OperatorNamespace).Get(ctx, secretName(sp.OperatorInstanceName), metav1.GetOptions{})
	switch {
	case apierrors.IsNotFound(err):
		existing = nil
	case err != nil:
		return nil, fmt.Errorf("read deploy-key secret: %w", err)
	case existing.Labels[LabelCluster] != a.hash:
		existing = nil
	}
	decode := func(k string) (string, error) {
		b, err := base64.StdEncoding.DecodeString(d.ProtectedSettings[k])
		if err != nil {
			return "", fmt.Errorf("configurationProtectedSettings.%s is not base64", k)
		}
		return string(b), nil
	}
	switch {
	case len(d.ProtectedSettings) > 0:
		if d.ProtectedSettings["sshPrivateKey"] != "" {
			k, err := decode("sshPrivateKey")
			if err != nil {
				return nil, err
			}
			c.privatePEM = []byte(k)
		}
		if c.httpsUser, err = decode("httpsUser"); err != nil {
			return nil, err
		}
		if c.httpsPass, err = decode("httpsKey"); err != nil {
			return nil, err
		}
	case existing != nil && existing.Annotations[annGeneration] == strconv.FormatInt(d.Generation, 10):
		c.privatePEM = existing.Data["identity"]
		c.generated = existing.Annotations[annGeneratedKey] == "true"
		c.httpsUser, c.httpsPass = string(existing.Data["username"]), string(existing.Data["password"])
	case d.ProtectedSettingsExpired:
		return nil, errSettingsExpired
	case isSSH(sp.RepositoryURL) && existing != nil && existing.Annotations[annGeneratedKey] == "true":
		// fluxd keeps the key it generated in its secret.
		c.privatePEM, c.generated = existing.Data["identity"], true
	}
	if !isSSH(sp.RepositoryURL) {
		return c, nil
	}
	if len(c.privatePEM) == 0 {
		// No key given: fluxd has ssh-keygen make one (pkg/ssh/keygen.go,
		// with no -t: RSA of 3072 bits), and the user must add its public
		// half as a deploy key.
		if c.privatePEM, err = generateKey(p.KeyType, p.KeyBits); err != nil {
			return nil, err
		}
		c.generated = true
	}
	c.signer, err = ssh.ParsePrivateKey(c.privatePEM)
	if err != nil {
		return nil, errors.New("the SSH private key cannot be parsed")
	}
	c.publicKey = strings.TrimSpace(string(ssh.MarshalAuthorizedKey(c.signer.PublicKey())))
	return c, nil
}

// generateKey makes a deploy key as ssh-keygen -t typ -b bits would.
func generateKey(typ string, bits int) ([]byte, error) {
	var priv any
	var err error
	switch typ {
	case "ed25519":
		_, priv, err = ed25519.GenerateKey(rand.Reader)
	case "ecdsa":
		curve := map[int]elliptic.Curve{0: elliptic.P256(), 256: elliptic.P256(), 384: elliptic.P384(), 521: elliptic.P521()}[bits]
		priv, err = ecdsa.GenerateKey(curve, rand.Reader)
	default:
		if bits == 0 {
			bits = 3072
		}
		priv, err = rsa.GenerateKey(rand.Reader, bits)
	}
	if err != nil {
		return nil, err
	}
	blk, err := ssh.MarshalPrivateKey(priv, "flux")
	if err != nil {
		return nil, err
	}
	return pem.EncodeToMemory(blk), nil
}

func isSSH(url string) bool {
	u := strings.ToLower(url)
	return !strings.HasPrefix(u, "http://") && !strings.HasPrefix(u, "https://")
}

// apply server-side applies obj as config-agent.
func (a *Agent) apply(ctx context.Context, gvr schema.GroupVersionResource, obj map[string]any) error {
	u := &unstructured.Unstructured{Object: obj}
	_, err := a.dyn.Resource(gvr).Namespace(u.GetNamespace()).Apply(ctx, u.GetName(), u, metav1.ApplyOptions{FieldManager: fieldManager, Force: true})
	if err != nil {
		return fmt.Errorf("apply %s %s: %w", u.GetKind(), u.GetName(), err)
	}
	return nil
}

func (a *Agent) labels(config string) map[string]any {
	return map[string]any{LabelCluster: a.hash, LabelConfiguration: config}
}

func meta(name, ns string, labels map[string]any, ann map[string]any) map[string]any {
	m := map[string]any{"name": name, "labels": labels}
	if ns != "" {
		m["namespace"] = ns
	}
	if ann != nil {
		m["annotations"] = ann
	}
	return m
}

// installCRD installs the GitConfig CRD and waits until it is served.
func (a *Agent) installCRD(ctx context.Context) error {
	crd := map[string]any{
		"apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
		"metadata": map[string]any{"name": "gitconfigs.clusterconfig.azure.com"},
		"spec": map[string]any{
			"group": "clusterconfig.azure.com", "scope": "Namespaced",
			"names": map[string]any{"kind": "GitConfig", "listKind": "GitConfigList", "plural": "gitconfigs", "singular": "gitconfig"},
			"versions": []any{map[string]any{
				"name": "v1beta1", "served": true, "storage": true,
				"schema": map[string]any{"openAPIV3Schema": map[string]any{
					"type": "object",
					"properties": map[string]any{
						"spec":   map[string]any{"type": "object", "x-kubernetes-preserve-unknown-fields": true},
						"status": map[string]any{"type": "object", "x-kubernetes-preserve-unknown-fields": true},
					},
				}},
				"additionalPrinterColumns": []any{
					map[string]any{"name": "Status", "type": "string", "jsonPath": ".status.status"},
					map[string]any{"name": "Synced", "type": "boolean", "jsonPath": ".status.isSyncedWithAzure"},
					map[string]any{"name": "Age", "type": "date", "jsonPath": ".metadata.creationTimestamp"},
				},
			}},
		},
	}
	if err := a.apply(ctx, gvrCRD, crd); err != nil {
		return err
	}
	// Established takes a few milliseconds; this waits on the network, so
	// on wall time.
	wall := clock.Real()
	for i := 0; ; i++ {
		got, err := a.dyn.Resource(gvrCRD).Get(ctx, "gitconfigs.clusterconfig.azure.com", metav1.GetOptions{})
		if err == nil && established(got) {
			return nil
		}
		if i > 500 {
			return errors.New("GitConfig CRD not Established after 10s")
		}
		if err := wall.Sleep(ctx, 20*time.Millisecond); err != nil {
			return err
		}
	}
}

func established(crd *unstructured.Unstructured) bool {
	conds, _, _ := unstructured.NestedSlice(crd.Object, "status", "conditions")
	for _, c := range conds {
		m, _ := c.(map[string]any)
		if m["type"] == "Established" && m["status"] == "True" {
			return true
		}
	}
	return false
}

// installOperator writes every object Arc installs for a configuration.
// For a configuration without the Helm operator it also reports whether
// one may be left from an earlier generation, for reconcile to remove
// (see mayHaveHelmRelease for why it is asked here).
func (a *Agent) installOperator(ctx context.Context, d arm.DesiredConfiguration, c *gitCreds) (helmLeft bool, err error) {
	sp := d.Spec
	ns, inst := sp.OperatorNamespace, sp.OperatorInstanceName
	labels := a.labels(d.Name)
	gen := strconv.FormatInt(d.Generation, 10)
	if err := a.apply(ctx, gvrNamespace, map[string]any{"apiVersion": "v1", "kind": "Namespace", "metadata": meta(ns, "", map[string]any{LabelCluster: a.hash}, nil)}); err != nil {
		return false, err
	}
	if err := a.apply(ctx, gvrSA, map[string]any{"apiVersion": "v1", "kind": "ServiceAccount", "metadata": meta(inst, ns, labels, nil)}); err != nil {
		return false, err
	}
	subjects := []any{map[string]any{"kind": "ServiceAccount", "name": inst, "namespace": ns}}
	all := []any{map[string]any{"apiGroups": []any{"*"}, "resources": []any{"*"}, "verbs": []any{"*"}}}
	crName := clusterRoleName(ns, inst)
	if strings.EqualFold(sp.OperatorScope, "cluster") {
		rules := append(all, map[string]any{"nonResourceURLs": []any{"*"}, "verbs": []any{"*"}})
		if err := a.apply(ctx, gvrClusterRole, map[string]any{"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRole", "metadata": meta(crName, "", labels, nil), "rules": rules}); err != nil {
			return false, err
		}
		if err := a.apply(ctx, gvrCRB, map[string]any{"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRoleBinding", "metadata": meta(crName, "", labels, nil),
			"roleRef": map[string]any{"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": crName}, "subjects": subjects}); err != nil {
			return false, err
		}
		a.deleteIgnoringMissing(ctx, gvrRoleBinding, ns, inst)
		a.deleteIgnoringMissing(ctx, gvrRole, ns, inst)
	} else {
		if err := a.apply(ctx, gvrRole, map[string]any{"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "Role", "metadata": meta(inst, ns, labels, nil), "rules": all}); err != nil {
			return false, err
		}
		if err := a.apply(ctx, gvrRoleBinding, map[string]any{"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "RoleBinding", "metadata": meta(inst, ns, labels, nil),
			"roleRef": map[string]any{"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": inst}, "subjects": subjects}); err != nil {
			return false, err
		}
		// What a confined fluxd reads outside its namespace, as the Flux
		// chart grants it (chart/flux/templates/rbac-role.yaml: list and
		// watch CRDs, list namespaces), plus a get of its own namespace:
		// fluxd reads it before it lists what to garbage-collect there
		// (kubernetes.go, getAllowedAndExistingNamespaces). Arc's own
		// rules are not documented.
		rules := []any{
			map[string]any{"apiGroups": []any{"apiextensions.k8s.io"}, "resources": []any{"customresourcedefinitions"}, "verbs": []any{"list", "watch"}},
			map[string]any{"apiGroups": []any{""}, "resources": []any{"namespaces"}, "verbs": []any{"list"}},
			map[string]any{"apiGroups": []any{""}, "resources": []any{"namespaces"}, "resourceNames": []any{ns}, "verbs": []any{"get"}},
		}
		if err := a.apply(ctx, gvrClusterRole, map[string]any{"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRole", "metadata": meta(crName, "", labels, nil), "rules": rules}); err != nil {
			return false, err
		}
		if err := a.apply(ctx, gvrCRB, map[string]any{"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRoleBinding", "metadata": meta(crName, "", labels, nil),
			"roleRef": map[string]any{"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": crName}, "subjects": subjects}); err != nil {
			return false, err
		}
	}
	data := map[string]any{}
	put := func(k string, v []byte) {
		if len(v) > 0 {
			data[k] = base64.StdEncoding.EncodeToString(v)
		}
	}
	put("identity", c.privatePEM)
	if c.publicKey != "" {
		put("identity.pub", []byte(c.publicKey+"\n"))
	}
	put("username", []byte(c.httpsUser))
	put("password", []byte(c.httpsPass))
	put("known_hosts", []byte(c.knownHosts))
	secAnn := map[string]any{annGeneration: gen, annGeneratedKey: strconv.FormatBool(c.generated)}
	if err := a.apply(ctx, gvrSecret, map[string]any{"apiVersion": "v1", "kind": "Secret", "type": "Opaque", "metadata": meta(secretName(inst), ns, labels, secAnn), "data": data}); err != nil {
		return false, err
	}
	if !sp.EnableHelmOperator {
		helmLeft = a.mayHaveHelmRelease(ctx, ns, helmOperatorRelease(sp))
	}
	helm := map[string]any{}
	if sp.HasHelmProperties {
		helm = map[string]any{"chartVersion": sp.HelmChartVersion, "chartValues": sp.HelmChartValues}
	}
	sum := sha256.Sum256([]byte(d.ID))
	gc := map[string]any{
		"apiVersion": "clusterconfig.azure.com/v1beta1", "kind": "GitConfig",
		"metadata": meta(d.Name, ns, labels, map[string]any{annGeneration: gen, annClusterID: a.clusterID}),
		"spec": map[string]any{
			"correlationId": hex.EncodeToString(sum[:16]), "deleteOperator": false,
			"enableHelmOperator": strconv.FormatBool(sp.EnableHelmOperator), "giturl": sp.RepositoryURL,
			"helmOperatorProperties": helm, "operatorClientLocation": "azurearcfork8s.azurecr.io/arc-preview/fluxctl:0.1.3",
			"operatorInstanceName": inst, "operatorParams": sp.OperatorParams, "operatorScope": sp.OperatorScope, "operatorType": "flux",
		},
	}
	if err := a.apply(ctx, GitConfigGVR, gc); err != nil {
		return false, err
	}
	args := []any{"--git-url=" + sp.RepositoryURL, "--k8s-secret-name=" + secretName(inst), "--ssh-keygen-dir=/var/fluxd/keygen"}
	if strings.EqualFold(sp.OperatorScope, "namespace") {
		args = append(args, "--k8s-allow-namespace="+ns)
	}
	for _, f := range strings.Fields(sp.OperatorParams) {
		args = append(args, f)
	}
	container := map[string]any{"name": "flux", "image": FluxImage, "args": args,
		"ports": []any{map[string]any{"containerPort": int64(3030), "name": "http"}}}
	if c.httpsUser != "" {
		ref := func(k string) map[string]any {
			return map[string]any{"secretKeyRef": map[string]any{"name": secretName(inst), "key": k}}
		}
		container["env"] = []any{map[string]any{"name": "GIT_AUTHUSER", "valueFrom": ref("username")}, map[string]any{"name": "GIT_AUTHKEY", "valueFrom": ref("password")}}
	}
	sel := map[string]any{"instanceName": inst, "name": "flux"}
	return helmLeft, a.apply(ctx, gvrDeployment, map[string]any{
		"apiVersion": "apps/v1", "kind": "Deployment",
		// Zero replicas: the operator runs inside gitopsim, and a real
		// fluxd on a real cluster must not race it.
		"metadata": meta(inst, ns, labels, map[string]any{annSimulated: "true", annGeneration: gen}),
		"spec": map[string]any{
			"replicas": int64(0), "selector": map[string]any{"matchLabels": sel},
			"template": map[string]any{
				"metadata": map[string]any{"labels": sel},
				"spec":     map[string]any{"serviceAccountName": inst, "containers": []any{container}},
			},
		},
	})
}

func clusterRoleName(ns, inst string) string { return "flux-" + ns + "-" + inst }

func (a *Agent) deleteIgnoringMissing(ctx context.Context, gvr schema.GroupVersionResource, ns, name string) {
	err := a.dyn.Resource(gvr).Namespace(ns).Delete(ctx, name, metav1.DeleteOptions{})
	if err != nil && !apierrors.IsNotFound(err) {
		a.log.Warn("delete", "resource", gvr.Resource, "namespace", ns, "name", name, "err", err)
	}
}

// gitConfigRef is an installed operator as recorded by its GitConfig.
type gitConfigRef struct {
	name, namespace, instance, scope string
}

// listGitConfigs lists this agent's GitConfigs, in every namespace.
func (a *Agent) listGitConfigs(ctx context.Context) ([]gitConfigRef, error) {
	list, err := a.dyn.Resource(GitConfigGVR).List(ctx, metav1.ListOptions{LabelSelector: LabelCluster + "=" + a.hash})
	if err != nil {
		return nil, err
	}
	out := make([]gitConfigRef, 0, len(list.Items))
	for _, it := range list.Items {
		inst, _, _ := unstructured.NestedString(it.Object, "spec", "operatorInstanceName")
		scope, _, _ := unstructured.NestedString(it.Object, "spec", "operatorScope")
		out = append(out, gitConfigRef{name: it.GetName(), namespace: it.GetNamespace(), instance: inst, scope: scope})
	}
	return out, nil
}

// removeOperator uninstalls an operator whose configuration was deleted:
// the operator's own objects go, what it deployed stays, and so does the
// namespace.
func (a *Agent) removeOperator(ctx context.Context, gc gitConfigRef) {
	// Two phases, as Arc: mark the GitConfig, then remove.
	patch := []byte(`{"spec":{"deleteOperator":true}}`)
	_, _ = a.dyn.Resource(GitConfigGVR).Namespace(gc.namespace).Patch(ctx, gc.name, types.MergePatchType, patch, metav1.PatchOptions{FieldManager: statusManager})
	if in := a.instance(gc.name); in != nil && in.op != nil {
		in.op.stop()
	}
	a.deleteIgnoringMissing(ctx, gvrDeployment, gc.namespace, gc.instance)
	a.uninstallHelmOperator(gc.namespace, gc.instance)
	a.deleteIgnoringMissing(ctx, gvrSecret, gc.namespace, secretName(gc.instance))
	a.deleteIgnoringMissing(ctx, gvrRoleBinding, gc.namespace, gc.instance)
	a.deleteIgnoringMissing(ctx, gvrRole, gc.namespace, gc.instance)
	a.deleteIgnoringMissing(ctx, gvrCRB, "", clusterRoleName(gc.namespace, gc.instance))
	a.deleteIgnoringMissing(ctx, gvrClusterRole, "", clusterRoleName(gc.namespace, gc.instance))
	a.deleteIgnoringMissing(ctx, gvrSA, gc.namespace, gc.instance)
	a.deleteIgnoringMissing(ctx, GitConfigGVR, gc.namespace, gc.name)
	a.event(gc.name, "Removed", "configuration %s deleted in Azure: operator %s/%s removed, deployed workloads left in place", gc.name, gc.namespace, gc.instance)
}

// updateGitConfigStatus mirrors the operator's state into the GitConfig.
func (a *Agent) updateGitConfigStatus(ctx context.Context, in *instance) {
	st := in.op.status()
	in.reportMu.Lock()
	synced := in.hasReported && in.reported == a.compliance(in)
	in.reportMu.Unlock()
	status := map[string]any{
		"configAppliedTime": in.installedAt.UTC().Format(time.RFC3339), "isSyncedWithAzure": synced,
		"message": st.message, "operatorPropertiesHashed": hashProps(in.spec), "publicKey": in.publicKey,
		"retryCountPublicKey": int64(0), "status": st.phase,
	}
	// Patch only on change: a virtual clock may poll thousands of times.
	key, _ := json.Marshal(status)
	in.reportMu.Lock()
	same := in.gitConfigStatus == string(key)
	in.gitConfigStatus = string(key)
	in.reportMu.Unlock()
	if same {
		return
	}
	status["lastPolledStatusTime"] = a.clk.Now().UTC().Format(time.RFC3339)
	// A merge patch, not an apply: a GitConfig removed meanwhile must not
	// come back.
	patch, _ := json.Marshal(map[string]any{"status": status})
	if _, err := a.dyn.Resource(GitConfigGVR).Namespace(in.spec.OperatorNamespace).Patch(ctx, in.name, types.MergePatchType, patch, metav1.PatchOptions{FieldManager: statusManager}); err != nil && !apierrors.IsNotFound(err) {
		a.log.Warn("update GitConfig status", "configuration", in.name, "err", err)
	}
}

func hashProps(sp arm.ConfigSpec) string {
	h := sha256.Sum256([]byte(sp.RepositoryURL + "\x00" + sp.OperatorParams + "\x00" + sp.OperatorScope + "\x00" + sp.OperatorInstanceName + "\x00" + sp.OperatorNamespace))
	return hex.EncodeToString(h[:])
}
