package agent

import (
	"crypto/ed25519"
	"crypto/rand"
	"net"
	"slices"
	"strings"
	"testing"
	"time"

	"golang.org/x/crypto/ssh"
	"golang.org/x/crypto/ssh/knownhosts"
)

func TestParseFluxParams(t *testing.T) {
	iv, _ := ProfileIntervals("realistic")
	p, err := parseFluxParams("--git-readonly --git-branch main --git-path=a,b/ --git-path=c --git-poll-interval=1m --sync-garbage-collection-dry --git-label=team", "ns", false, iv)
	if err != nil {
		t.Fatal(err)
	}
	if p.Branch != "main" || !slices.Equal(p.Paths, []string{"a", "b", "c"}) || p.PollInterval != time.Minute || p.SyncInterval != 5*time.Minute {
		t.Errorf("parsed %+v", p)
	}
	if !p.GC || !p.GCDry || p.SyncTag != "team" || !p.ReadOnly || p.SyncState != "secret" || len(p.Warnings) != 1 {
		t.Errorf("flags: %+v", p)
	}
	if p.DefaultNamespace != "ns" || p.AllowNamespaces != nil {
		t.Errorf("cluster scope namespaces: default %q allow %v", p.DefaultNamespace, p.AllowNamespaces)
	}
	// Flux v1 defaults, and namespace scope confines the operator.
	p, err = parseFluxParams("", "tenant", true, iv)
	if err != nil {
		t.Fatal(err)
	}
	if p.Branch != "master" || p.SyncTag != "flux-sync" || p.User != "Weave Flux" || !slices.Equal(p.AllowNamespaces, []string{"tenant"}) || !slices.Equal(p.Paths, []string{""}) {
		t.Errorf("defaults: %+v", p)
	}
	fast, _ := ProfileIntervals("fast")
	if p, _ := parseFluxParams("--sync-interval=10m", "ns", false, fast); p.PollInterval != fast.GitPoll || p.SyncInterval != 10*time.Minute {
		t.Errorf("explicit flags must win over the profile: %+v", p)
	}

	for params, want := range map[string]string{
		"--no-such-flag":              "unknown flag: --no-such-flag",
		"--git-branch":                "flag needs an argument: --git-branch",
		"--git-poll-interval=soon":    `invalid argument "soon" for "--git-poll-interval"`,
		"--git-poll-interval=-1s":     `invalid argument "-1s"`,
		"--git-readonly=perhaps":      `invalid argument "perhaps" for "--git-readonly"`,
		"stray":                       `unexpected argument "stray"`,
		"--sync-state=etcd":           `invalid argument "etcd" for "--sync-state"`,
		"--git-path=x --sync-timeout": "flag needs an argument: --sync-timeout",
	} {
		if _, err := parseFluxParams(params, "ns", false, iv); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%q: %v, want %q", params, err, want)
		}
	}
	if _, err := ProfileIntervals("turbo"); err == nil || !strings.Contains(err.Error(), "realistic, fast") {
		t.Errorf("unknown profile: %v", err)
	}
}

func TestKnownHostsCallback(t *testing.T) {
	key := func() ssh.PublicKey {
		pub, _, _ := ed25519.GenerateKey(rand.Reader)
		k, _ := ssh.NewPublicKey(pub)
		return k
	}
	k1, k2 := key(), key()
	addr := &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 2222}
	plain := knownhosts.Line([]string{"127.0.0.1:2222"}, k1)
	hashed := knownhosts.Line([]string{knownhosts.HashHostname("[127.0.0.1]:2222")}, k1)
	for name, content := range map[string]string{"plain": plain, "hashed": hashed} {
		cb := knownHostsCallback("# comment\n" + content + "\n")
		if err := cb("127.0.0.1:2222", addr, k1); err != nil {
			t.Errorf("%s: known key refused: %v", name, err)
		}
		if err := cb("127.0.0.1:2222", addr, k2); err != errHostKeyMismatch {
			t.Errorf("%s: other key: %v, want mismatch", name, err)
		}
		if err := cb("127.0.0.1:2223", &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 2223}, k1); err != errHostKeyUnknown {
			t.Errorf("%s: other port: %v, want unknown", name, err)
		}
	}
}

func TestParseManifests(t *testing.T) {
	ms, err := parseManifests("a.yaml", []byte("---\n# empty\n---\napiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: one\n---\napiVersion: v1\nkind: List\nitems:\n- apiVersion: v1\n  kind: Secret\n  metadata:\n    name: two\n"))
	if err != nil {
		t.Fatal(err)
	}
	if len(ms) != 2 || ms[0].obj.GetName() != "one" || ms[1].obj.GetKind() != "Secret" || ms[1].rank != 2 || len(ms[0].checksum) != 40 {
		t.Fatalf("parsed %d manifests: %+v", len(ms), ms)
	}
	for content, want := range map[string]string{
		"kind: ConfigMap\nmetadata:\n  name: x\n":                         "document 1): a resource needs apiVersion and kind",
		"apiVersion: v1\nkind: ConfigMap\n":                               "has no metadata.name",
		"apiVersion: v1\nkind: ConfigMap\nmetadata: [\n":                  "parsing b.yaml",
		"---\napiVersion: v1\nkind: X\nmetadata: {name: a}\n---\n: : :\n": "document 2",
	} {
		if _, err := parseManifests("b.yaml", []byte(content)); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%q: %v, want %q", content, err, want)
		}
	}
	if got := resourceID("<cluster>", "ClusterRole", "x"); got != "<cluster>:clusterrole/x" {
		t.Errorf("resource id %q", got)
	}
	if m := gcMark("set", "ns:configmap/a"); !strings.HasPrefix(m, "sha256.") || len(m) > 63 || m == gcMark("other", "ns:configmap/a") {
		t.Errorf("gc mark %q", m)
	}
	if kindRank("Namespace") >= kindRank("ClusterRole") || kindRank("ClusterRole") >= kindRank("RoleBinding") || kindRank("ConfigMap") >= kindRank("Deployment") || kindRank("Deployment") >= kindRank("Widget") {
		t.Error("kind ranks out of Flux's order")
	}
	if got := safeURL("https://user:secret@host/repo.git"); got != "https://user@host/repo.git" {
		t.Errorf("safeURL kept the password: %q", got)
	}
}
