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
	if p.Branch != "main" || !slices.Equal(p.RawPaths, []string{"a", "b/", "c"}) || p.PollInterval != time.Minute || p.SyncInterval != 5*time.Minute {
		t.Errorf("parsed %+v", p)
	}
	if !p.GC || !p.GCDry || p.SyncTag != "team" || !p.ReadOnly || p.SyncState != "secret" || len(p.Warnings) != 1 {
		t.Errorf("flags: %+v", p)
	}
	// Without --k8s-default-namespace, the fluxd image's kubeconfig
	// context says "default" (docker/kubeconfig).
	if p.DefaultNamespace != "default" || p.AllowNamespaces != nil {
		t.Errorf("cluster scope namespaces: default %q allow %v", p.DefaultNamespace, p.AllowNamespaces)
	}
	// Flux v1 defaults, and namespace scope confines the operator.
	p, err = parseFluxParams("", "tenant", true, iv)
	if err != nil {
		t.Fatal(err)
	}
	if p.Branch != "master" || p.SyncTag != "flux-sync" || p.User != "Weave Flux" || !slices.Equal(p.AllowNamespaces, []string{"tenant"}) || len(p.RawPaths) != 0 || p.SyncTimeout != time.Minute {
		t.Errorf("defaults: %+v", p)
	}
	fast, _ := ProfileIntervals("fast")
	if p, _ := parseFluxParams("--sync-interval=10m", "ns", false, fast); p.PollInterval != fast.GitPoll || p.SyncInterval != 10*time.Minute {
		t.Errorf("explicit flags must win over the profile: %+v", p)
	}
}

// operatorParams are parsed by pflag as fluxd 1.25.4 declares its flags
// (cmd/fluxd/main.go): every fluxd flag is accepted, the ones without an
// effect here are named in one warning, and pflag's own rules decide.
func TestFluxParamsAsPflag(t *testing.T) {
	iv, _ := ProfileIntervals("realistic")
	for params, check := range map[string]func(fluxParams) bool{
		// A bool flag followed by a word: the word is an argument fluxd
		// ignores, and the flag is true.
		"--git-readonly true": func(p fluxParams) bool { return p.ReadOnly },
		// Flags real fluxd has that the simulation does not act on.
		"--sops --git-verify-signatures-mode=all --registry-rps=10 --docker-config=/x --memcached-timeout=2s --rpc-timeout=5s --kubernetes-kubectl=/k --version=false -l :3031 --kube-config=/k": func(p fluxParams) bool {
			return len(p.Warnings) == 1 && strings.Contains(p.Warnings[0], "--sops") && strings.Contains(p.Warnings[0], "--docker-config")
		},
		// Both allow lists, unioned; the whitelist is fluxd's old name.
		"--k8s-namespace-whitelist=a,b --k8s-allow-namespace=b,c": func(p fluxParams) bool {
			return slices.Equal(p.AllowNamespaces, []string{"a", "b", "c"})
		},
		"--k8s-default-namespace=apps": func(p fluxParams) bool { return p.DefaultNamespace == "apps" },
		// pflag takes zero durations; the simulation slows them to 1s.
		"--sync-interval=0s": func(p fluxParams) bool { return p.SyncInterval == time.Second && len(p.Warnings) == 1 },
		"--git-path=.":       func(p fluxParams) bool { return slices.Equal(p.RawPaths, []string{"."}) },
		"--ssh-keygen-type=ecdsa --ssh-keygen-bits=0x180": func(p fluxParams) bool {
			return p.KeyType == "ecdsa" && p.KeyBits == 384
		},
	} {
		p, err := parseFluxParams(params, "ns", false, iv)
		if err != nil || !check(p) {
			t.Errorf("%q: %+v %v", params, p, err)
		}
	}
	for params, want := range map[string]string{
		"--no-such-flag":                              "unknown flag: --no-such-flag",
		"--git-branch":                                "flag needs an argument: --git-branch",
		"--git-poll-interval=soon":                    `invalid argument "soon" for "--git-poll-interval"`,
		"--git-readonly=perhaps":                      `invalid argument "perhaps" for "--git-readonly"`,
		"--sync-state=etcd":                           `unknown sync state mode "etcd"`,
		"--git-path=x --sync-timeout":                 "flag needs an argument: --sync-timeout",
		"--git-path=/releases":                        "subdirectory given as --git-path should not have leading forward slash",
		"--git-path=ok,/abs":                          "leading forward slash",
		"--ssh-keygen-bits=lots":                      `invalid argument "lots" for "--ssh-keygen-bits" flag`,
		"--ssh-keygen-type=rsa --ssh-keygen-bits=512": "Invalid RSA key length",
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

func TestSyncMarkers(t *testing.T) {
	if got := resourceID("<cluster>", "ClusterRole", "x"); got != "<cluster>:clusterrole/x" {
		t.Errorf("resource id %q", got)
	}
	if m := gcMark("set", "ns:configmap/a"); !strings.HasPrefix(m, "sha256.") || len(m) > 63 || m == gcMark("other", "ns:configmap/a") {
		t.Errorf("gc mark %q", m)
	}
	if kindRank("Namespace") >= kindRank("ClusterRole") || kindRank("ClusterRole") >= kindRank("RoleBinding") || kindRank("ConfigMap") >= kindRank("Deployment") || kindRank("Deployment") >= kindRank("Widget") {
		t.Error("kind ranks out of Flux's order")
	}
	// fluxd's rankOfKind: Pod and PodSecurityPolicy come last.
	if kindRank("Pod") != 4 || kindRank("PodSecurityPolicy") != 4 || kindRank("DEPLOYMENT") != 3 {
		t.Error("Pod, PodSecurityPolicy or case")
	}
	if got := safeURL("https://user:secret@host/repo.git"); got != "https://user@host/repo.git" {
		t.Errorf("safeURL kept the password: %q", got)
	}
	// The sync set hashes the URL as git-urls parses it.
	for in, want := range map[string]string{
		"git@github.com:org/repo":              "ssh://git@github.com/org/repo",
		"ssh://git@host:2222/org/repo.git":     "ssh://git@host:2222/org/repo.git",
		"https://user:token@host/org/repo.git": "https://user@host/org/repo.git",
	} {
		if got := fluxSafeURL(in); got != want {
			t.Errorf("fluxSafeURL(%q) = %q, want %q", in, got, want)
		}
	}
}
