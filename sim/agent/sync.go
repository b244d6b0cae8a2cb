package agent

import (
	"bytes"
	"context"
	"crypto/sha1"
	"encoding/hex"
	"fmt"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/go-git/go-git/v5/plumbing"
	"gopkg.in/yaml.v2"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/dynamic"

	"github.com/gitopsim/gitopsim/sim/agent/internal/resource"
)

// Flux's markers (spec §4.3).
const (
	LabelGCMark      = "fluxcd.io/sync-gc-mark"
	AnnSyncChecksum  = "fluxcd.io/sync-checksum"
	AnnIgnore        = "fluxcd.io/ignore"
	clusterNamespace = resource.ClusterScope
	maxMessageErrors = 10
)

// resourceError is a per-resource failure.
type resourceError struct {
	id  string
	err string
}

// syncResult is one sync's outcome.
type syncResult struct {
	applied int
	errs    []resourceError
	// excluded are outside --k8s-allow-namespace; noScope are of kinds
	// the cluster does not serve (yet).
	excluded, noScope []string
	ignored           int
	deleted, wouldDel []string
	// stale were marked for deletion but changed since fluxd applied
	// them, and are left alone.
	stale []string
	// terminating are deleted objects that are still there: fluxd's
	// kubectl delete waits for them.
	terminating []string
}

// sync applies the head revision and reports whether the status changed.
func (o *operator) sync() bool {
	// fluxd bounds a sync with --sync-timeout (pkg/daemon/sync.go, Sync),
	// but its kubectl runs without that context.
	ctx, cancel := context.WithTimeout(o.a.ctx, max(o.p.SyncTimeout, 2*time.Minute))
	defer cancel()
	rev := o.head
	res, err := o.applyRevision(ctx, rev)
	if err != nil {
		changed := o.setStatus(opStatus{phase: "Installed", message: fmt.Sprintf("sync of revision %s failed: %v", rev.String()[:7], err), level: "Error"})
		if changed {
			o.a.record(Event{Configuration: o.name, Reason: "SyncFailed", Revision: rev.String(), Message: fmt.Sprintf("configuration %s: sync of %s failed: %v", o.name, rev.String()[:7], err)})
		}
		return changed
	}
	if len(res.terminating) > 0 {
		o.blocked = &blockedSync{rev: rev, res: res}
		return o.setStatus(o.blocked.status())
	}
	return o.finishSync(ctx, rev, res)
}

// finishSync moves the sync marker and reports the sync.
func (o *operator) finishSync(ctx context.Context, rev plumbing.Hash, res syncResult) bool {
	if o.helm != nil && (res.applied > 0 || len(res.deleted) > 0) {
		o.helm.kick()
	}
	var tagErr error
	if err := o.moveSyncTag(ctx, rev); err != nil {
		tagErr = err
	}
	msg, level := res.summary(rev.String()[:7])
	if tagErr != nil {
		msg += "; " + tagErr.Error()
		level = "Error"
	}
	changed := o.setStatus(opStatus{phase: "Installed", message: msg, level: level, synced: rev.String()})
	if changed {
		// A sync with warnings (kinds without scope, excluded objects)
		// still synced; errors mean something was not applied.
		reason := "Synced"
		if level == "Error" {
			reason = "SyncFailed"
		}
		o.a.record(Event{Configuration: o.name, Reason: reason, Revision: rev.String(), Message: fmt.Sprintf("configuration %s: %s", o.name, msg)})
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
	if len(r.stale) > 0 {
		level = "Warning"
		fmt.Fprintf(&b, "; resource to be synced has not been updated; skipping garbage collection of %s", strings.Join(r.stale, ", "))
	}
	if len(r.noScope) > 0 {
		level = "Warning"
		fmt.Fprintf(&b, "; cannot find scope of %s; excluded until their scope is available", strings.Join(r.noScope, ", "))
	}
	if len(r.excluded) > 0 {
		level = "Warning"
		fmt.Fprintf(&b, "; not applying resources; excluded by namespace constraints: %s", strings.Join(r.excluded, ", "))
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

// stagedObject is a manifest ready for kubectl.
type stagedObject struct {
	id, source, kind, name string
	payload                []byte
}

// applyRevision loads the manifests of rev and syncs them, as fluxd's
// Daemon.Sync → Cluster.Sync does; the error is for failures that stop
// the whole sync (manifests that do not load).
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
	co, err := newCheckout(o.repo.Storer, tree)
	if err != nil {
		return res, fmt.Errorf("cloning repo: %w", err)
	}
	if o.p.ManifestGeneration {
		if f, ok := fluxConfigFile(co, o.p.RawPaths); ok {
			return res, fmt.Errorf("loading resources from repo: %s asks for manifest generation, which gitopsim does not simulate (its generators and updaters would run commands); drop --manifest-generation to load plain YAML", f)
		}
	}
	objs, err := loadManifests(co, o.p.RawPaths)
	if err != nil {
		return res, fmt.Errorf("loading resources from repo: %w", err)
	}
	resources := o.effectiveNamespaces(ctx, objs, &res)
	syncSet := o.syncSetName()
	checksums := map[string]string{}
	var staged []stagedObject
	for _, id := range sortedIDs(resources) {
		m := resources[id]
		if !o.allowed(id) {
			res.excluded = append(res.excluded, id)
			continue
		}
		// Recorded whether applied or not, so that GC spares it
		// (pkg/cluster/kubernetes/sync.go, Sync).
		sum := sha1.Sum(m.Bytes())
		checksum := hex.EncodeToString(sum[:])
		checksums[id] = checksum
		if skip, _ := resource.Ignore(m.Annotations()); skip {
			res.ignored++
			continue
		}
		if live := o.liveObject(ctx, m); live != nil {
			if skip, _ := resource.Ignore(live.GetAnnotations()); skip {
				res.ignored++
				continue
			}
		}
		payload, err := applyMetadata(m, id, syncSet, checksum)
		if err != nil {
			res.errs = append(res.errs, resourceError{id, err.Error()})
			break // as fluxd does
		}
		staged = append(staged, stagedObject{id: id, source: m.Source(), kind: m.Kind(), name: m.Name(), payload: payload})
	}
	failed := o.kubectlEach(staged, "apply", false)
	res.applied = len(staged) - len(failed)
	res.errs = append(res.errs, failed...)
	o.recordObjects(resources, staged, failed, res.excluded)
	if o.p.GC || o.p.GCDry {
		errs, err := o.collectGarbage(ctx, syncSet, checksums, &res)
		if err != nil {
			return res, err
		}
		res.errs = append(res.errs, errs...)
	}
	o.lastErrs = map[string]bool{}
	for _, e := range res.errs {
		o.lastErrs[e.id] = true
	}
	slices.SortFunc(res.errs, func(a, b resourceError) int { return strings.Compare(a.id, b.id) })
	return res, nil
}

// recordObjects keeps what the last sync did with each manifest, for
// Agent.Configurations.
func (o *operator) recordObjects(resources map[string]*resource.Manifest, staged []stagedObject, failed []resourceError, excluded []string) {
	status := map[string]SyncedObject{}
	for id, m := range resources {
		status[id] = SyncedObject{ID: id, Source: m.Source(), Status: ObjectIgnored}
	}
	for _, id := range excluded {
		if obj, ok := status[id]; ok {
			obj.Status = ObjectExcluded
			status[id] = obj
		}
	}
	for _, s := range staged {
		status[s.id] = SyncedObject{ID: s.id, Source: s.source, Status: ObjectApplied}
	}
	for _, f := range failed {
		obj := status[f.id]
		obj.ID, obj.Status, obj.Error = f.id, ObjectFailed, f.err
		status[f.id] = obj
	}
	objs := make([]SyncedObject, 0, len(status))
	for _, obj := range status {
		objs = append(objs, obj)
	}
	slices.SortFunc(objs, func(a, b SyncedObject) int { return strings.Compare(a.ID, b.ID) })
	o.stMu.Lock()
	o.objects = objs
	o.stMu.Unlock()
}

// effectiveNamespaces gives each manifest the namespace it would be
// applied in (manifests.go, setEffectiveNamespaces): the default
// namespace for namespaced kinds without one, none for cluster-scoped
// kinds. A kind the cluster does not serve and no CRD in the manifests
// defines is left out, with a warning, until its scope is known. The
// result is keyed by the ID after namespacing; of two manifests that
// meet there, one silently wins, as in fluxd.
func (o *operator) effectiveNamespaces(ctx context.Context, objs map[string]*resource.Manifest, res *syncResult) map[string]*resource.Manifest {
	known := crdScopes(objs)
	out := map[string]*resource.Manifest{}
	for _, id := range sortedIDs(objs) {
		m := objs[id]
		namespaced, err := o.a.lookupNamespaced(m.APIVersion(), m.Kind(), known)
		if err != nil {
			partial := strings.ToLower(m.Kind()) + "/" + m.Name()
			res.noScope = append(res.noScope, partial)
			if !o.scopeWarned[id] {
				o.scopeWarned[id] = true
				o.log.Warn("cannot find scope of resource; it will be excluded until its scope is available", "resource", partial, "err", err)
			}
			continue
		}
		delete(o.scopeWarned, id)
		switch {
		case !namespaced:
			m.SetNamespace("")
		case m.Namespace() == "":
			m.SetNamespace(o.p.DefaultNamespace)
		}
		out[m.ResourceID()] = m
	}
	return out
}

// lookupNamespaced asks discovery whether a kind is namespaced, falling
// back on the scopes of CRDs in the manifests (namespacer.go,
// lookupNamespaced). fluxd's discovery cache is refreshed when CRDs
// change; the agent's is refreshed when a kind is not found.
func (a *Agent) lookupNamespaced(apiVersion, kind string, known map[string]string) (bool, error) {
	find := func() (bool, error) {
		list, err := a.disco.ServerResourcesForGroupVersion(apiVersion)
		if err != nil {
			return false, fmt.Errorf("error looking up API resources for %s.%s: %s", kind, apiVersion, err)
		}
		for _, r := range list.APIResources {
			if r.Kind == kind && !strings.Contains(r.Name, "/") {
				return r.Namespaced, nil
			}
		}
		return false, fmt.Errorf("resource not found for API %s, kind %s", apiVersion, kind)
	}
	namespaced, err := find()
	if err != nil {
		a.disco.Invalidate()
		namespaced, err = find()
	}
	if err == nil {
		return namespaced, nil
	}
	if scope, ok := known[apiVersion+"/"+kind]; ok {
		return scope == "Namespaced", nil
	}
	return false, err
}

// allowed is --k8s-allow-namespace (kubernetes.go, IsAllowedResource):
// namespaced objects in the listed namespaces, Namespace objects named
// like them, and every other cluster-scoped kind.
func (o *operator) allowed(id string) bool {
	if len(o.p.AllowNamespaces) == 0 {
		return true
	}
	ns, rest, _ := strings.Cut(id, ":")
	kind, name, _ := strings.Cut(rest, "/")
	if ns == clusterNamespace {
		if kind != "namespace" {
			return true
		}
		ns = name
	}
	return slices.Contains(o.p.AllowNamespaces, ns)
}

// liveObject is the object as the cluster has it, for its ignore
// annotation; fluxd looks in a listing that leaves out objects with an
// owner (sync.go, getAllowedResourcesBySelector).
func (o *operator) liveObject(ctx context.Context, m *resource.Manifest) *unstructured.Unstructured {
	gvk := schema.FromAPIVersionAndKind(m.APIVersion(), m.Kind())
	mapping, err := o.a.mapper.RESTMapping(gvk.GroupKind(), gvk.Version)
	if err != nil {
		return nil
	}
	var ri dynamic.ResourceInterface = o.client.dyn.Resource(mapping.Resource)
	if m.Namespace() != "" {
		ri = o.client.dyn.Resource(mapping.Resource).Namespace(m.Namespace())
	}
	live, err := ri.Get(ctx, m.Name(), metav1.GetOptions{})
	if err != nil || len(live.GetOwnerReferences()) > 0 {
		return nil
	}
	return live
}

// applyMetadata adds the gc-mark label, the checksum annotation and the
// effective namespace to a manifest (sync.go, applyMetadata). fluxd
// merges them in with mergo without overriding, so a value the manifest
// already carries, copied from another object, stays.
func applyMetadata(m *resource.Manifest, id, syncSet, checksum string) ([]byte, error) {
	definition := map[interface{}]interface{}{}
	if err := yaml.Unmarshal(m.Bytes(), &definition); err != nil {
		return nil, fmt.Errorf("failed to parse yaml from %s: %w", m.Source(), err)
	}
	meta, _ := definition["metadata"].(map[interface{}]interface{})
	if meta == nil {
		meta = map[interface{}]interface{}{}
		definition["metadata"] = meta
	}
	fill := func(key string, k, v string) {
		sub, _ := meta[key].(map[interface{}]interface{})
		if sub == nil {
			sub = map[interface{}]interface{}{}
			meta[key] = sub
		}
		if cur, ok := sub[k]; !ok || cur == nil || cur == "" {
			sub[k] = v
		}
	}
	fill("labels", LabelGCMark, gcMark(syncSet, id))
	if ns, _, _ := strings.Cut(id, ":"); ns != clusterNamespace {
		if cur, ok := meta["namespace"]; !ok || cur == nil || cur == "" {
			meta["namespace"] = ns
		}
	}
	fill("annotations", AnnSyncChecksum, checksum)
	b, err := yaml.Marshal(definition)
	if err != nil {
		return nil, fmt.Errorf("failed to serialize yaml after applying metadata: %w", err)
	}
	return b, nil
}

// kubectlEach runs "kubectl <cmd>" on the objects as fluxd's
// Kubectl.apply does: in rank order (reverse for deletes), first all in
// one multi-document run, and, if that fails, each object alone, the
// errors of those single runs being the per-resource errors. Objects that
// failed in the previous sync go alone from the start.
func (o *operator) kubectlEach(objs []stagedObject, cmd string, wait bool) []resourceError {
	if len(objs) == 0 {
		return nil
	}
	sort.SliceStable(objs, func(i, j int) bool {
		ri, rj := kindRank(objs[i].kind), kindRank(objs[j].kind)
		if ri == rj {
			return objs[i].name < objs[j].name
		}
		if cmd == "delete" {
			return ri > rj
		}
		return ri < rj
	})
	args := []string{cmd}
	if cmd == "delete" && !wait {
		// The simulation cannot block the clock on kubectl's wait; it
		// looks for what is left afterwards (blockedSync).
		args = append(args, "--wait=false")
	}
	var multi, single []stagedObject
	for _, obj := range objs {
		if o.lastErrs[obj.id] {
			single = append(single, obj)
		} else {
			multi = append(multi, obj)
		}
	}
	if len(multi) > 0 {
		var buf bytes.Buffer
		for _, obj := range multi {
			appendYAML(&buf, obj.payload)
		}
		if _, err := o.kubectl.run(buf.Bytes(), args...); err != nil {
			single = append(single, multi...)
		}
	}
	var errs []resourceError
	for _, obj := range single {
		if _, err := o.kubectl.run(obj.payload, args...); err != nil {
			errs = append(errs, resourceError{obj.id, err.Error()})
		}
	}
	return errs
}

// appendYAML is fluxd's appendYAMLToBuffer: documents joined by "---".
func appendYAML(buf *bytes.Buffer, doc []byte) {
	sep := "---\n"
	if b := buf.Bytes(); len(b) > 0 && b[len(b)-1] != '\n' {
		sep = "\n---\n"
	}
	buf.WriteString(sep)
	buf.Write(doc)
}

// kindRank is fluxd's rankOfKind (sync.go): the order of applies;
// deletes run in reverse.
func kindRank(kind string) int {
	switch strings.ToLower(kind) {
	case "namespace":
		return 0
	case "customresourcedefinition", "serviceaccount", "clusterrole", "role", "persistentvolume", "service":
		return 1
	case "resourcequota", "limitrange", "secret", "configmap", "rolebinding", "clusterrolebinding", "persistentvolumeclaim", "ingress":
		return 2
	case "daemonset", "deployment", "replicationcontroller", "replicaset", "job", "cronjob", "statefulset":
		return 3
	}
	return 4
}
