package agent

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha1"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"path"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/go-git/go-git/v5/plumbing"
	"github.com/go-git/go-git/v5/plumbing/object"
	authenticationv1 "k8s.io/api/authentication/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	apimeta "k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/yaml"

	"github.com/gitopsim/gitopsim/sim/clock"
)

// Flux's markers (spec §4.3).
const (
	LabelGCMark      = "fluxcd.io/sync-gc-mark"
	AnnSyncChecksum  = "fluxcd.io/sync-checksum"
	AnnIgnore        = "fluxcd.io/ignore"
	annIgnoreLegacy  = "flux.weave.works/ignore"
	clusterNamespace = "<cluster>"
	fluxManager      = "flux"
	maxMessageErrors = 10
)

// manifest is one object from git.
type manifest struct {
	obj      *unstructured.Unstructured
	source   string // file path in the repo
	checksum string
	id       string // set once the scope is known
	rank     int
}

// resourceError is a per-resource apply failure.
type resourceError struct {
	id  string
	err string
}

// syncResult is one sync's outcome.
type syncResult struct {
	applied  int
	errs     []resourceError
	skipped  []string
	ignored  int
	deleted  []string
	wouldDel []string
}

// sync applies the head revision and reports whether the status changed.
func (o *operator) sync() bool {
	ctx, cancel := context.WithTimeout(o.a.ctx, 2*time.Minute)
	defer cancel()
	rev := o.head
	short := rev.String()[:7]
	res, err := o.applyRevision(ctx, rev)
	if err != nil {
		changed := o.setStatus(opStatus{phase: "Installed", message: fmt.Sprintf("sync of revision %s failed: %v", short, err), level: "Error"})
		if changed {
			o.a.event(o.name, "SyncFailed", "configuration %s: sync of %s failed: %v", o.name, short, err)
		}
		return changed
	}
	if o.helm != nil && (res.applied > 0 || len(res.deleted) > 0) {
		o.helm.kick()
	}
	var tagErr error
	if err := o.moveSyncTag(ctx, rev); err != nil {
		tagErr = err
	}
	msg, level := res.summary(short)
	if tagErr != nil {
		msg += "; " + tagErr.Error()
		level = "Error"
	}
	changed := o.setStatus(opStatus{phase: "Installed", message: msg, level: level, synced: rev.String()})
	if changed {
		reason := "Synced"
		if level != "Information" {
			reason = "SyncFailed"
		}
		o.a.event(o.name, reason, "configuration %s: %s", o.name, msg)
	}
	return changed
}

func (r syncResult) summary(short string) (string, string) {
	var b strings.Builder
	level := "Information"
	fmt.Fprintf(&b, "synced revision %s: %d resources applied", short, r.applied)
	if r.ignored > 0 {
		fmt.Fprintf(&b, ", %d ignored", r.ignored)
	}
	if len(r.deleted) > 0 {
		fmt.Fprintf(&b, ", %d garbage-collected (%s)", len(r.deleted), strings.Join(r.deleted, ", "))
	}
	if len(r.wouldDel) > 0 {
		fmt.Fprintf(&b, ", %d would be garbage-collected (dry run: %s)", len(r.wouldDel), strings.Join(r.wouldDel, ", "))
	}
	if len(r.skipped) > 0 {
		level = "Warning"
		fmt.Fprintf(&b, "; not applying resources; excluded by namespace constraints: %s", strings.Join(r.skipped, ", "))
	}
	if len(r.errs) > 0 {
		level = "Error"
		fmt.Fprintf(&b, "; %d resources failed:", len(r.errs))
		for i, e := range r.errs {
			if i == maxMessageErrors {
				fmt.Fprintf(&b, " ... and %d more", len(r.errs)-i)
				break
			}
			fmt.Fprintf(&b, " %s: %s;", e.id, e.err)
		}
	}
	return strings.TrimSuffix(b.String(), ";"), level
}

// applyRevision loads the manifests of rev and applies them; the error is
// for failures that stop the whole sync (unreadable manifests).
func (o *operator) applyRevision(ctx context.Context, rev plumbing.Hash) (syncResult, error) {
	var res syncResult
	commit, err := o.repo.CommitObject(rev)
	if err != nil {
		return res, err
	}
	tree, err := commit.Tree()
	if err != nil {
		return res, err
	}
	ms, err := loadManifests(tree, o.p.Paths)
	if err != nil {
		return res, err
	}
	syncSet := o.syncSetName()
	seen := map[string]string{}
	var crdsApplied bool
	// Ranks are known from kinds; scope needs the API's discovery, which
	// may only learn a kind once its CRD (ranked earlier) is applied.
	sort.SliceStable(ms, func(i, j int) bool { return ms[i].rank < ms[j].rank })
	keep := map[string]bool{}
	for _, m := range ms {
		namespaced, err := o.a.namespaced(ctx, m.obj.GroupVersionKind(), crdsApplied)
		if err != nil {
			id := resourceID(m.obj.GetNamespace(), m.obj.GetKind(), m.obj.GetName())
			res.errs = append(res.errs, resourceError{id, err.Error()})
			keep[id] = true
			continue
		}
		if namespaced && m.obj.GetNamespace() == "" {
			m.obj.SetNamespace(o.p.DefaultNamespace)
		}
		if !namespaced {
			m.obj.SetNamespace("")
		}
		ns := m.obj.GetNamespace()
		if !namespaced {
			ns = clusterNamespace
		}
		m.id = resourceID(ns, m.obj.GetKind(), m.obj.GetName())
		if prev, dup := seen[m.id]; dup {
			return res, fmt.Errorf("duplicate definition of '%s' (in %s and %s)", m.id, prev, m.source)
		}
		seen[m.id] = m.source
		keep[m.id] = true
		if !o.allowed(m.obj, namespaced) {
			res.skipped = append(res.skipped, m.id)
			continue
		}
		if ignored(m.obj.GetAnnotations()) {
			res.ignored++
			continue
		}
		live, err := o.client.get(ctx, m.obj, namespaced)
		if err == nil && live != nil && ignored(live.GetAnnotations()) {
			res.ignored++
			continue
		}
		labels := m.obj.GetLabels()
		if labels == nil {
			labels = map[string]string{}
		}
		labels[LabelGCMark] = gcMark(syncSet, m.id)
		m.obj.SetLabels(labels)
		ann := m.obj.GetAnnotations()
		if ann == nil {
			ann = map[string]string{}
		}
		ann[AnnSyncChecksum] = m.checksum
		m.obj.SetAnnotations(ann)
		if err := o.client.apply(ctx, m.obj, namespaced); err != nil {
			res.errs = append(res.errs, resourceError{m.id, err.Error()})
			continue
		}
		res.applied++
		if m.obj.GetKind() == "CustomResourceDefinition" {
			crdsApplied = true
			o.a.waitEstablished(ctx, m.obj.GetName())
		}
	}
	slices.SortFunc(res.errs, func(a, b resourceError) int { return strings.Compare(a.id, b.id) })
	slices.Sort(res.skipped)
	if o.p.GC {
		o.collectGarbage(ctx, syncSet, keep, &res)
	}
	return res, nil
}

// allowed applies --k8s-allow-namespace: namespaced objects only in the
// listed namespaces, Namespace objects only for those names, every other
// cluster-scoped kind passes (and meets RBAC).
func (o *operator) allowed(obj *unstructured.Unstructured, namespaced bool) bool {
	if len(o.p.AllowNamespaces) == 0 {
		return true
	}
	if namespaced {
		return slices.Contains(o.p.AllowNamespaces, obj.GetNamespace())
	}
	if obj.GetKind() == "Namespace" && obj.GroupVersionKind().Group == "" {
		return slices.Contains(o.p.AllowNamespaces, obj.GetName())
	}
	return true
}

func ignored(ann map[string]string) bool {
	for _, k := range []string{AnnIgnore, annIgnoreLegacy} {
		if v := ann[k]; v == "true" || v == "sync_only" {
			return true
		}
	}
	return false
}

// syncSetName identifies this operator's sync set: repo, branch and paths.
func (o *operator) syncSetName() string {
	h := sha256.New()
	h.Write([]byte(safeURL(o.spec.RepositoryURL)))
	h.Write([]byte(o.p.Branch))
	for _, p := range o.p.Paths {
		h.Write([]byte(p))
	}
	return base64.RawURLEncoding.EncodeToString(h.Sum(nil))
}

func gcMark(syncSet, id string) string {
	sum := sha256.Sum256([]byte(syncSet + id))
	return "sha256." + base64.RawURLEncoding.EncodeToString(sum[:])
}

func resourceID(ns, kind, name string) string {
	return ns + ":" + strings.ToLower(kind) + "/" + name
}

// kindRank orders applies as fluxd does (spec §4.3); deletes run in
// reverse.
func kindRank(kind string) int {
	switch kind {
	case "Namespace":
		return 0
	case "CustomResourceDefinition", "ServiceAccount", "ClusterRole", "Role", "PodSecurityPolicy", "PersistentVolume", "Service":
		return 1
	case "ResourceQuota", "LimitRange", "Secret", "ConfigMap", "RoleBinding", "ClusterRoleBinding", "PersistentVolumeClaim", "Ingress":
		return 2
	case "Deployment", "DaemonSet", "StatefulSet", "ReplicaSet", "ReplicationController", "Job", "CronJob", "Pod":
		return 3
	}
	return 4
}

// loadManifests reads every YAML file under the git paths, recursively,
// like fluxd without manifest generation.
func loadManifests(tree *object.Tree, paths []string) ([]*manifest, error) {
	var out []*manifest
	for _, p := range paths {
		sub := tree
		if p != "" {
			t, err := tree.Tree(p)
			if err != nil {
				return nil, fmt.Errorf("git path %q not found in the repository", p)
			}
			sub = t
		}
		var files []*object.File
		if err := sub.Files().ForEach(func(f *object.File) error {
			ext := strings.ToLower(path.Ext(f.Name))
			if (ext == ".yaml" || ext == ".yml") && path.Base(f.Name) != ".flux.yaml" {
				files = append(files, f)
			}
			return nil
		}); err != nil {
			return nil, err
		}
		sort.Slice(files, func(i, j int) bool { return files[i].Name < files[j].Name })
		for _, f := range files {
			content, err := f.Contents()
			if err != nil {
				return nil, err
			}
			full := path.Join(p, f.Name)
			ms, err := parseManifests(full, []byte(content))
			if err != nil {
				return nil, err
			}
			out = append(out, ms...)
		}
	}
	return out, nil
}

func parseManifests(file string, content []byte) ([]*manifest, error) {
	var out []*manifest
	r := utilyaml.NewYAMLReader(bufio.NewReader(bytes.NewReader(content)))
	for doc := 1; ; doc++ {
		raw, err := r.Read()
		if errors.Is(err, io.EOF) {
			return out, nil
		}
		if err != nil {
			return nil, fmt.Errorf("parsing %s: %v", file, err)
		}
		var m map[string]any
		if err := yaml.Unmarshal(raw, &m); err != nil {
			return nil, fmt.Errorf("parsing %s (document %d): %v", file, doc, err)
		}
		if len(m) == 0 {
			continue
		}
		u := &unstructured.Unstructured{Object: m}
		if u.GetAPIVersion() == "" || u.GetKind() == "" {
			return nil, fmt.Errorf("parsing %s (document %d): a resource needs apiVersion and kind", file, doc)
		}
		items := []*unstructured.Unstructured{u}
		if strings.HasSuffix(u.GetKind(), "List") {
			list, err := u.ToList()
			if err != nil {
				return nil, fmt.Errorf("parsing %s (document %d): %v", file, doc, err)
			}
			items = items[:0]
			for i := range list.Items {
				items = append(items, &list.Items[i])
			}
		}
		for _, it := range items {
			if it.GetName() == "" {
				return nil, fmt.Errorf("parsing %s (document %d): %s has no metadata.name", file, doc, it.GetKind())
			}
			b, _ := json.Marshal(it.Object)
			sum := sha1.Sum(b)
			out = append(out, &manifest{obj: it, source: file, checksum: hex.EncodeToString(sum[:]), rank: kindRank(it.GetKind())})
		}
	}
}

// namespaced tells whether a kind is namespaced, asking discovery again
// when the kind is unknown and a CRD was just applied.
func (a *Agent) namespaced(ctx context.Context, gvk schema.GroupVersionKind, retry bool) (bool, error) {
	wall := clock.Real()
	for i := 0; ; i++ {
		m, err := a.mapper.RESTMapping(gvk.GroupKind(), gvk.Version)
		if err == nil {
			return m.Scope.Name() == apimeta.RESTScopeNameNamespace, nil
		}
		if !apimeta.IsNoMatchError(err) {
			return false, err
		}
		if i == 0 || (retry && i < 50) {
			a.mapper.Reset()
			if i > 0 {
				if err := wall.Sleep(ctx, 20*time.Millisecond); err != nil {
					return false, err
				}
			}
			continue
		}
		return false, fmt.Errorf("no matches for kind %q in version %q", gvk.Kind, gvk.GroupVersion().String())
	}
}

func (a *Agent) gvr(gvk schema.GroupVersionKind) (schema.GroupVersionResource, error) {
	m, err := a.mapper.RESTMapping(gvk.GroupKind(), gvk.Version)
	if err != nil {
		return schema.GroupVersionResource{}, err
	}
	return m.Resource, nil
}

// waitEstablished waits (wall time, bounded) for a CRD the operator
// applied to be served, so that its objects apply in the same sync.
func (a *Agent) waitEstablished(ctx context.Context, name string) {
	wall := clock.Real()
	for range 100 {
		got, err := a.dyn.Resource(gvrCRD).Get(ctx, name, metav1.GetOptions{})
		if err == nil && established(got) {
			a.mapper.Reset()
			return
		}
		if wall.Sleep(ctx, 20*time.Millisecond) != nil {
			return
		}
	}
}

// collectGarbage deletes objects this sync set created that are no longer
// in git (spec §4.4), or lists them in a dry run.
func (o *operator) collectGarbage(ctx context.Context, syncSet string, keep map[string]bool, res *syncResult) {
	type victim struct {
		id   string
		rank int
		gvr  schema.GroupVersionResource
		ns   string
		name string
	}
	var victims []victim
	for _, r := range o.a.listableResources() {
		namespaces := []string{""}
		if r.namespaced && len(o.p.AllowNamespaces) > 0 {
			namespaces = o.p.AllowNamespaces
		}
		if !r.namespaced && len(o.p.AllowNamespaces) > 0 && r.gvr.Resource != "namespaces" {
			// A confined fluxd does not list cluster-scoped kinds.
			continue
		}
		for _, ns := range namespaces {
			list, err := o.client.dyn.Resource(r.gvr).Namespace(ns).List(ctx, metav1.ListOptions{LabelSelector: LabelGCMark})
			if err != nil {
				continue // Forbidden lists are skipped silently, as fluxd does
			}
			for _, it := range list.Items {
				if len(it.GetOwnerReferences()) > 0 {
					continue
				}
				itNS := it.GetNamespace()
				if !r.namespaced {
					itNS = clusterNamespace
				}
				id := resourceID(itNS, it.GetKind(), it.GetName())
				if keep[id] || it.GetLabels()[LabelGCMark] != gcMark(syncSet, id) || ignored(it.GetAnnotations()) {
					continue
				}
				victims = append(victims, victim{id, kindRank(it.GetKind()), r.gvr, it.GetNamespace(), it.GetName()})
			}
		}
	}
	sort.Slice(victims, func(i, j int) bool {
		if victims[i].rank != victims[j].rank {
			return victims[i].rank > victims[j].rank
		}
		return victims[i].id < victims[j].id
	})
	for _, v := range victims {
		if o.p.GCDry {
			res.wouldDel = append(res.wouldDel, v.id)
			continue
		}
		err := o.client.dyn.Resource(v.gvr).Namespace(v.ns).Delete(ctx, v.name, metav1.DeleteOptions{})
		if err != nil && !apierrors.IsNotFound(err) {
			res.errs = append(res.errs, resourceError{v.id, "delete: " + err.Error()})
			continue
		}
		res.deleted = append(res.deleted, v.id)
	}
}

// apiResource is a kind the API serves with list and delete.
type apiResource struct {
	gvr        schema.GroupVersionResource
	namespaced bool
}

// listableResources returns the preferred version of every resource that
// can be listed and deleted, minus the ones fluxd never lists.
func (a *Agent) listableResources() []apiResource {
	lists, err := a.disco.ServerPreferredResources()
	if err != nil && len(lists) == 0 {
		return nil
	}
	var out []apiResource
	for _, l := range lists {
		gv, err := schema.ParseGroupVersion(l.GroupVersion)
		if err != nil || gv.Group == "metrics.k8s.io" || gv.Group == "events.k8s.io" {
			continue
		}
		for _, r := range l.APIResources {
			if strings.Contains(r.Name, "/") || !slices.Contains(r.Verbs, "list") || !slices.Contains(r.Verbs, "delete") {
				continue
			}
			if gv.Group == "" && (r.Name == "events" || r.Name == "endpoints" || r.Name == "componentstatuses") {
				continue
			}
			out = append(out, apiResource{gv.WithResource(r.Name), r.Namespaced})
		}
	}
	return out
}

// saClient acts as the operator's ServiceAccount, with a token from the
// TokenRequest API, so the API server's RBAC decides what it may do.
type saClient struct {
	a        *Agent
	ns, name string
	cfg      *rest.Config
	dyn      dynamic.Interface

	mu    sync.Mutex
	token string
	at    time.Time // wall time the token was issued
}

// tokenRefresh is how old (wall time) a token may get before it is
// renewed; the API server's tokens live an hour.
const tokenRefresh = 30 * time.Minute

func newSAClient(a *Agent, ns, name string) *saClient {
	c := &saClient{a: a, ns: ns, name: name}
	cfg := rest.AnonymousClientConfig(a.opts.Kube)
	cfg.QPS, cfg.Burst = 1000, 2000
	cfg.WrapTransport = func(rt http.RoundTripper) http.RoundTripper {
		return roundTripFunc(func(req *http.Request) (*http.Response, error) {
			tok, err := c.bearer(req.Context())
			if err != nil {
				return nil, err
			}
			req = req.Clone(req.Context())
			req.Header.Set("Authorization", "Bearer "+tok)
			return rt.RoundTrip(req)
		})
	}
	c.cfg = cfg
	c.dyn = dynamic.NewForConfigOrDie(cfg)
	return c
}

// restConfig is a client config acting as the ServiceAccount, for the
// Helm SDK.
func (c *saClient) restConfig() *rest.Config { return rest.CopyConfig(c.cfg) }

type roundTripFunc func(*http.Request) (*http.Response, error)

func (f roundTripFunc) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }

func (c *saClient) bearer(ctx context.Context) (string, error) {
	wall := clock.Real()
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.token != "" && wall.Since(c.at) < tokenRefresh {
		return c.token, nil
	}
	tr, err := c.a.kube.CoreV1().ServiceAccounts(c.ns).CreateToken(ctx, c.name, &authenticationv1.TokenRequest{}, metav1.CreateOptions{})
	if err != nil {
		return "", fmt.Errorf("token for serviceaccount %s/%s: %w", c.ns, c.name, err)
	}
	c.token, c.at = tr.Status.Token, wall.Now()
	return c.token, nil
}

func (c *saClient) resource(obj *unstructured.Unstructured, namespaced bool) (dynamic.ResourceInterface, error) {
	gvr, err := c.a.gvr(obj.GroupVersionKind())
	if err != nil {
		return nil, err
	}
	if namespaced {
		return c.dyn.Resource(gvr).Namespace(obj.GetNamespace()), nil
	}
	return c.dyn.Resource(gvr), nil
}

func (c *saClient) get(ctx context.Context, obj *unstructured.Unstructured, namespaced bool) (*unstructured.Unstructured, error) {
	r, err := c.resource(obj, namespaced)
	if err != nil {
		return nil, err
	}
	return r.Get(ctx, obj.GetName(), metav1.GetOptions{})
}

func (c *saClient) apply(ctx context.Context, obj *unstructured.Unstructured, namespaced bool) error {
	r, err := c.resource(obj, namespaced)
	if err != nil {
		return err
	}
	_, err = r.Apply(ctx, obj.GetName(), obj, metav1.ApplyOptions{FieldManager: fluxManager, Force: true})
	return err
}

func (c *saClient) annotateSecret(ctx context.Context, name, key, value string) error {
	patch, _ := json.Marshal(map[string]any{"metadata": map[string]any{"annotations": map[string]string{key: value}}})
	_, err := c.dyn.Resource(gvrSecret).Namespace(c.ns).Patch(ctx, name, types.MergePatchType, patch, metav1.PatchOptions{FieldManager: fluxManager})
	return err
}
