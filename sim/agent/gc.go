package agent

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"fmt"
	"net/url"
	"regexp"
	"slices"
	"strings"

	"github.com/go-git/go-git/v5/plumbing"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"

	"github.com/gitopsim/gitopsim/sim/agent/internal/resource"
)

// blockedSync is a sync whose garbage collection waits, as fluxd's
// "kubectl delete" does (--wait defaults to true and fluxd runs kubectl
// without a timeout): an object with a finalizer that nobody removes
// holds the sync loop for good (fluxcd/flux#2691). Git is still polled;
// nothing is synced until the objects are gone.
type blockedSync struct {
	rev plumbing.Hash
	res syncResult
}

func (b *blockedSync) status() opStatus {
	return opStatus{phase: "Installed", level: "Warning", message: fmt.Sprintf(
		"sync of revision %s is waiting for kubectl delete: %s still terminating",
		b.rev.String()[:7], strings.Join(b.res.terminating, ", "))}
}

// checkBlocked finishes a blocked sync once its objects are gone; it
// reports whether the operator is still blocked and whether the status
// changed.
func (o *operator) checkBlocked(ctx context.Context) (bool, bool) {
	b := o.blocked
	var left []string
	for _, id := range b.res.terminating {
		if o.stillThere(ctx, id) {
			left = append(left, id)
		}
	}
	if len(left) > 0 {
		b.res.terminating = left
		return true, o.setStatus(b.status())
	}
	o.blocked = nil
	b.res.deleted = append(b.res.deleted, b.res.terminating...)
	b.res.terminating = nil
	return false, o.finishSync(ctx, b.rev, b.res)
}

// syncSetName identifies this operator's sync set (pkg/daemon/sync.go,
// makeGitConfigHash): the remote's SafeURL, the branch and the --git-path
// values as given.
func (o *operator) syncSetName() string {
	h := sha256.New()
	h.Write([]byte(fluxSafeURL(o.spec.RepositoryURL)))
	h.Write([]byte(o.p.Branch))
	for _, p := range o.p.RawPaths {
		h.Write([]byte(p))
	}
	return base64.RawURLEncoding.EncodeToString(h.Sum(nil))
}

// scpURL is git-urls v1.0.0's scp-like syntax (user@host:path).
var scpURL = regexp.MustCompile(`^([a-zA-Z0-9_]+@)?([a-zA-Z0-9._-]+):([a-zA-Z0-9./._-]+)(?:\?||$)(.*)$`)

// fluxSafeURL is fluxd's git.Remote.SafeURL: the URL as
// github.com/whilp/git-urls parses it (an scp-like URL becomes
// ssh://user@host/path), without a password.
func fluxSafeURL(raw string) string {
	var u *url.URL
	if pu, err := url.Parse(raw); err == nil && slices.Contains([]string{"ssh", "git", "git+ssh", "http", "https", "ftp", "ftps", "rsync", "file"}, pu.Scheme) {
		u = pu
	} else if m := scpURL.FindStringSubmatch(raw); m != nil {
		u = &url.URL{Scheme: "ssh", Host: m[2], Path: m[3], RawQuery: m[4]}
		if user := strings.TrimRight(m[1], "@"); user != "" {
			u.User = url.User(user)
		}
	} else {
		u = &url.URL{Scheme: "file", Path: raw}
	}
	if u.User != nil {
		u.User = url.User(u.User.Username())
	}
	return u.String()
}

func gcMark(syncSet, id string) string {
	sum := sha256.Sum256([]byte(syncSet + id))
	return "sha256." + base64.RawURLEncoding.EncodeToString(sum[:])
}

func resourceID(ns, kind, name string) string { return resource.MakeID(ns, kind, name) }

// collectGarbage deletes what this sync set applied before and git no
// longer has (sync.go, collectGarbage): objects carrying this set's mark
// for their own ID, not in this sync's checksums, not ignored; an object
// whose checksum differs from what this sync staged is left alone with a
// warning. It lists as fluxd does: cluster-scoped kinds everywhere,
// namespaced kinds in the allowed namespaces it can read, skipping lists
// it is forbidden.
func (o *operator) collectGarbage(ctx context.Context, syncSet string, checksums map[string]string, res *syncResult) ([]resourceError, error) {
	marked, err := o.listMarked(ctx, syncSet)
	if err != nil {
		return nil, fmt.Errorf("collating resources in cluster for calculating garbage collection: %w", err)
	}
	var victims []stagedObject
	for _, id := range sortedIDs(marked) {
		live := marked[id]
		expected, ok := checksums[id]
		switch {
		case !ok:
			if _, spared := resource.Ignore(live.GetAnnotations()); spared {
				continue
			}
			if o.p.GCDry {
				res.wouldDel = append(res.wouldDel, id)
				continue
			}
			victims = append(victims, stagedObject{id: id, kind: live.GetKind(), name: live.GetName(), payload: identifyingBytes(live)})
		case live.GetAnnotations()[AnnSyncChecksum] != expected:
			res.stale = append(res.stale, id)
		}
	}
	errs := o.kubectlEach(victims, "delete", false)
	failed := map[string]bool{}
	for _, e := range errs {
		failed[e.id] = true
	}
	for _, v := range victims {
		switch {
		case failed[v.id]:
		case o.stillThere(ctx, v.id):
			res.terminating = append(res.terminating, v.id)
		default:
			res.deleted = append(res.deleted, v.id)
		}
	}
	return errs, nil
}

// identifyingBytes is what fluxd feeds kubectl delete for an object
// (kuberesource.IdentifyingBytes).
func identifyingBytes(u *unstructured.Unstructured) []byte {
	return []byte(fmt.Sprintf("\napiVersion: %s\nkind: %s\nmetadata:\n  namespace: %q\n  name: %q\n", u.GetAPIVersion(), u.GetKind(), u.GetNamespace(), u.GetName()))
}

// listMarked lists the objects that carry this sync set's mark for
// their own ID (getAllowedGCMarkedResourcesInSyncSet), as the
// operator's ServiceAccount.
func (o *operator) listMarked(ctx context.Context, syncSet string) (map[string]*unstructured.Unstructured, error) {
	namespaces := []string{metav1.NamespaceAll}
	if len(o.p.AllowNamespaces) > 0 {
		// getAllowedAndExistingNamespaces: an allowed namespace it cannot
		// read is left out, with a warning.
		namespaces = nil
		for _, ns := range o.p.AllowNamespaces {
			_, err := o.client.dyn.Resource(gvrNamespace).Get(ctx, ns, metav1.GetOptions{})
			switch {
			case err == nil:
				namespaces = append(namespaces, ns)
			case apierrors.IsForbidden(err) || apierrors.IsUnauthorized(err) || apierrors.IsNotFound(err):
				o.log.Warn("cannot access allowed namespace", "namespace", ns, "err", err)
			default:
				return nil, err
			}
		}
	}
	out := map[string]*unstructured.Unstructured{}
	for _, r := range o.a.listableResources() {
		lists := []string{""}
		if r.namespaced {
			lists = namespaces
		}
		for _, ns := range lists {
			list, err := o.client.dyn.Resource(r.gvr).Namespace(ns).List(ctx, metav1.ListOptions{LabelSelector: LabelGCMark})
			if apierrors.IsForbidden(err) {
				break // not allowed to list this resource: the rest still
			}
			if err != nil {
				return nil, err
			}
			for i := range list.Items {
				it := &list.Items[i]
				if len(it.GetOwnerReferences()) > 0 {
					continue
				}
				itNS := it.GetNamespace()
				if !r.namespaced {
					itNS = clusterNamespace
				}
				id := resourceID(itNS, it.GetKind(), it.GetName())
				if it.GetLabels()[LabelGCMark] == gcMark(syncSet, id) {
					out[id] = it
				}
			}
		}
	}
	return out, nil
}

// stillThere reports whether the object of id exists (after a delete:
// still terminating).
func (o *operator) stillThere(ctx context.Context, id string) bool {
	ns, rest, _ := strings.Cut(id, ":")
	kind, name, _ := strings.Cut(rest, "/")
	for _, r := range o.a.listableResources() {
		if !strings.EqualFold(r.kind, kind) || r.namespaced == (ns == clusterNamespace) {
			continue
		}
		ri := o.a.dyn.Resource(r.gvr)
		var err error
		if r.namespaced {
			_, err = ri.Namespace(ns).Get(ctx, name, metav1.GetOptions{})
		} else {
			_, err = ri.Get(ctx, name, metav1.GetOptions{})
		}
		return err == nil
	}
	return false
}

// apiResource is a kind the API serves with list.
type apiResource struct {
	gvr        schema.GroupVersionResource
	kind       string
	namespaced bool
}

// listableResources returns the preferred version of every resource that
// can be listed, minus the ones fluxd never lists
// (--k8s-unsafe-exclude-resource's defaults, and v1 Endpoints and
// ComponentStatus).
func (a *Agent) listableResources() []apiResource {
	lists, err := a.disco.ServerPreferredResources()
	if err != nil && len(lists) == 0 {
		return nil
	}
	var out []apiResource
	for _, l := range lists {
		gv, err := schema.ParseGroupVersion(l.GroupVersion)
		if err != nil || strings.HasSuffix(gv.Group, "metrics.k8s.io") || gv.Group == "webhook.certmanager.k8s.io" {
			continue
		}
		for _, r := range l.APIResources {
			if strings.Contains(r.Name, "/") || !slices.Contains(r.Verbs, "list") {
				continue
			}
			if gv.Group == "" && (r.Kind == "Event" || r.Kind == "Endpoints" || r.Kind == "ComponentStatus") {
				continue
			}
			out = append(out, apiResource{gv.WithResource(r.Name), r.Kind, r.Namespaced})
		}
	}
	return out
}
