package agent

import (
	"fmt"
	"io"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/pflag"
)

// fluxParams are the fluxd flags the simulated operator honours (spec
// §4.1), parsed from a configuration's operatorParams.
type fluxParams struct {
	Branch string
	// RawPaths are the --git-path values as given (they name the sync
	// set); roots are made from them as fluxd makes them.
	RawPaths         []string
	PollInterval     time.Duration
	SyncInterval     time.Duration
	SyncTimeout      time.Duration
	GitTimeout       time.Duration
	ReadOnly         bool
	User, Email      string
	SyncTag          string
	GC, GCDry        bool
	AllowNamespaces  []string
	DefaultNamespace string
	SyncState        string
	// KeyType and KeyBits are ssh-keygen's -t and -b for a generated
	// deploy key ("" and 0: ssh-keygen's defaults, RSA of 3072 bits).
	KeyType string
	KeyBits int
	// ManifestGeneration is --manifest-generation: .flux.yaml files
	// would run generators, which the simulation refuses clearly.
	ManifestGeneration bool
	// Warnings are what fluxd logs at start: flags with no effect, and
	// flags of fluxd's that the simulation accepts but does not act on.
	Warnings []string
}

// simulatedFlags are the fluxd flags that change what the simulated
// operator does; every other fluxd flag is accepted and logged once as
// having no effect here.
var simulatedFlags = []string{
	"git-url", "git-branch", "git-path", "git-readonly", "git-user", "git-email", "git-label",
	"git-sync-tag", "git-notes-ref", "git-poll-interval", "git-timeout", "sync-interval", "sync-timeout",
	"sync-garbage-collection", "sync-garbage-collection-dry", "sync-state", "k8s-namespace-whitelist",
	"k8s-allow-namespace", "k8s-default-namespace", "k8s-secret-name", "ssh-keygen-dir",
	"ssh-keygen-type", "ssh-keygen-bits", "ssh-keygen-format", "registry-disable-scanning",
	"log-format", "listen", "listen-metrics", "k8s-verbosity", "k8s-in-cluster", "kube-config",
	"manifest-generation",
}

// fluxdFlags declares fluxd 1.25.4's flags (cmd/fluxd/main.go) on fs,
// with their types and defaults, and returns the ones the simulation
// reads.
func fluxdFlags(fs *pflag.FlagSet, defaults Intervals) *fluxFlagValues {
	v := &fluxFlagValues{}
	fs.String("log-format", "fmt", "")
	fs.StringP("listen", "l", ":3030", "")
	fs.String("listen-metrics", "", "")
	fs.String("kubernetes-kubectl", "", "")
	fs.Bool("version", false, "")
	fs.String("git-url", "", "")
	v.branch = fs.String("git-branch", "master", "")
	v.paths = fs.StringSlice("git-path", []string{}, "")
	v.readOnly = fs.Bool("git-readonly", false, "")
	v.user = fs.String("git-user", "Weave Flux", "")
	v.email = fs.String("git-email", "support@weave.works", "")
	fs.Bool("git-set-author", false, "")
	v.label = fs.String("git-label", "", "")
	fs.Bool("git-secret", false, "")
	fs.Bool("sops", false, "")
	v.syncTag = fs.String("git-sync-tag", "flux-sync", "")
	fs.String("git-notes-ref", "flux", "")
	fs.Bool("git-ci-skip", false, "")
	fs.String("git-ci-skip-message", "", "")
	v.poll = fs.Duration("git-poll-interval", defaults.GitPoll, "")
	v.gitTimeout = fs.Duration("git-timeout", 20*time.Second, "")
	fs.StringSlice("git-gpg-key-import", []string{}, "")
	fs.String("git-signing-key", "", "")
	fs.Bool("git-verify-signatures", false, "")
	fs.String("git-verify-signatures-mode", "none", "")
	v.sync = fs.Duration("sync-interval", defaults.Sync, "")
	v.syncTimeout = fs.Duration("sync-timeout", time.Minute, "")
	v.gc = fs.Bool("sync-garbage-collection", false, "")
	v.gcDry = fs.Bool("sync-garbage-collection-dry", false, "")
	v.syncState = fs.String("sync-state", "git", "")
	fs.String("memcached-hostname", "memcached", "")
	fs.Int("memcached-port", 11211, "")
	fs.Duration("memcached-timeout", time.Second, "")
	fs.String("memcached-service", "memcached", "")
	fs.Bool("registry-disable-scanning", false, "")
	fs.Duration("automation-interval", 5*time.Minute, "")
	fs.Duration("registry-poll-interval", 5*time.Minute, "")
	fs.Float64("registry-rps", 50, "")
	fs.Int("registry-burst", 10, "")
	fs.Bool("registry-trace", false, "")
	fs.StringSlice("registry-insecure-host", []string{}, "")
	fs.StringSlice("registry-exclude-image", []string{"k8s.gcr.io/*"}, "")
	fs.StringSlice("registry-include-image", nil, "")
	fs.StringSlice("registry-use-labels", []string{"index.docker.io/weaveworks/*", "index.docker.io/fluxcd/*"}, "")
	fs.StringSlice("registry-ecr-region", nil, "")
	fs.StringSlice("registry-ecr-include-id", nil, "")
	fs.StringSlice("registry-ecr-exclude-id", []string{"602401143452", "918309763551"}, "")
	fs.StringSlice("registry-require", nil, "")
	fs.Bool("k8s-in-cluster", true, "")
	fs.String("k8s-secret-name", "flux-git-deploy", "")
	fs.String("k8s-secret-volume-mount-path", "/etc/fluxd/ssh", "")
	fs.String("k8s-secret-data-key", "identity", "")
	v.whitelist = fs.StringSlice("k8s-namespace-whitelist", []string{}, "")
	v.allow = fs.StringSlice("k8s-allow-namespace", []string{}, "")
	v.defaultNS = fs.String("k8s-default-namespace", "", "")
	fs.StringSlice("k8s-unsafe-exclude-resource", []string{"*metrics.k8s.io/*", "webhook.certmanager.k8s.io/*", "v1/Event"}, "")
	fs.Int("k8s-verbosity", 0, "")
	// ssh-keygen's -b, -t and -m, as fluxd's optionalVar values
	// (pkg/ssh/keygen.go: bits parse as a uint64, the others as words).
	fs.Var(&v.keyBits, "ssh-keygen-bits", "")
	v.keyType = fs.String("ssh-keygen-type", "", "")
	v.keyFormat = fs.String("ssh-keygen-format", "", "")
	fs.String("ssh-keygen-dir", "", "")
	v.generation = fs.Bool("manifest-generation", false, "")
	fs.String("connect", "", "")
	fs.String("token", "", "")
	fs.Duration("rpc-timeout", 10*time.Second, "")
	fs.String("docker-config", "", "")
	fs.Duration("registry-cache-expiry", 0, "")
	fs.String("kube-config", "/root/.kube/config", "")
	return v
}

type fluxFlagValues struct {
	branch, user, email, label, syncTag, syncState, defaultNS *string
	keyType, keyFormat                                        *string
	keyBits                                                   keyBitsValue
	paths, whitelist, allow                                   *[]string
	readOnly, gc, gcDry, generation                           *bool
	poll, sync, syncTimeout, gitTimeout                       *time.Duration
}

// GitBranch is the branch an operator with these operatorParams follows:
// --git-branch as fluxd parses it, "master" without one or when the
// params would not start fluxd.
func GitBranch(operatorParams string) string {
	p, err := parseFluxParams(operatorParams, "", false, Intervals{})
	if err != nil {
		return "master"
	}
	return p.Branch
}

// parseFluxParams parses operatorParams as fluxd parses its arguments,
// with pflag: "--flag=value", "--flag value", bare booleans, "-l",
// comma-separated and repeated lists. A word that is not a flag is an
// argument fluxd ignores ("--git-readonly true" leaves "true" alone). An
// unknown flag is an error, as it stops fluxd from starting, and so is a
// --git-path with a leading "/" (main.go exits on it).
//
// defaults carries the profile's poll and sync intervals, which explicit
// flags override.
func parseFluxParams(params, operatorNamespace string, namespaceScope bool, defaults Intervals) (fluxParams, error) {
	fs := pflag.NewFlagSet("fluxd", pflag.ContinueOnError)
	fs.SetOutput(io.Discard)
	v := fluxdFlags(fs, defaults)
	var p fluxParams
	if err := fs.Parse(strings.Fields(params)); err != nil {
		return p, err
	}
	p = fluxParams{
		Branch: *v.branch, RawPaths: *v.paths, PollInterval: *v.poll, SyncInterval: *v.sync,
		SyncTimeout: *v.syncTimeout, GitTimeout: *v.gitTimeout, ReadOnly: *v.readOnly,
		User: *v.user, Email: *v.email, SyncTag: *v.syncTag, GC: *v.gc || *v.gcDry, GCDry: *v.gcDry,
		DefaultNamespace: *v.defaultNS, SyncState: *v.syncState, ManifestGeneration: *v.generation,
	}
	for _, path := range p.RawPaths {
		if len(path) > 0 && path[0] == '/' {
			return p, fmt.Errorf("subdirectory given as --git-path should not have leading forward slash")
		}
	}
	if p.SyncState != "git" && p.SyncState != "secret" {
		// pkg/sync, the daemon refuses an unknown state mode at start.
		return p, fmt.Errorf("unknown sync state mode %q", p.SyncState)
	}
	if err := checkKeygen(*v.keyType, v.keyBits.bits, *v.keyFormat); err != nil {
		return p, err
	}
	p.KeyType, p.KeyBits = *v.keyType, int(v.keyBits.bits)
	if fs.Changed("git-label") {
		p.SyncTag = *v.label
	}
	if p.ReadOnly {
		if p.SyncState == "git" {
			p.SyncState = "secret"
			p.Warnings = append(p.Warnings, "--git-readonly prevents use of --sync-state=git. Forcing to --sync-state=secret")
		}
		var changed []string
		for _, f := range []string{"git-user", "git-email", "git-sync-tag", "git-set-author", "git-ci-skip", "git-ci-skip-message"} {
			if fs.Changed(f) {
				changed = append(changed, f)
			}
		}
		if len(changed) > 0 {
			p.Warnings = append(p.Warnings, fmt.Sprintf("Configuring any of {%s} has no effect when --git-readonly is set", strings.Join(changed, ", ")))
		}
	}
	for _, d := range []struct {
		name string
		v    *time.Duration
	}{{"git-poll-interval", &p.PollInterval}, {"sync-interval", &p.SyncInterval}} {
		if *d.v <= 0 {
			// fluxd takes it and spins; the simulation will not.
			p.Warnings = append(p.Warnings, fmt.Sprintf("--%s=%s is simulated as 1s", d.name, *d.v))
			*d.v = time.Second
		}
	}
	var ignored []string
	fs.Visit(func(f *pflag.Flag) {
		if !slices.Contains(simulatedFlags, f.Name) {
			ignored = append(ignored, "--"+f.Name)
		}
	})
	if len(ignored) > 0 {
		p.Warnings = append(p.Warnings, fmt.Sprintf("accepted but not simulated (no effect in gitopsim): %s", strings.Join(ignored, ", ")))
	}
	// fluxd unions both lists (main.go: allowedNamespaces).
	for _, ns := range append(*v.whitelist, *v.allow...) {
		if !slices.Contains(p.AllowNamespaces, ns) {
			p.AllowNamespaces = append(p.AllowNamespaces, ns)
		}
	}
	if namespaceScope && !slices.Contains(p.AllowNamespaces, operatorNamespace) {
		// Arc confines a namespace-scoped operator to its namespace
		// (install.go passes --k8s-allow-namespace).
		p.AllowNamespaces = append(p.AllowNamespaces, operatorNamespace)
	}
	if p.DefaultNamespace == "" {
		// The namespace of the fluxd image's kubeconfig context
		// (docker/kubeconfig), read by namespacer.go when no
		// --k8s-default-namespace is given.
		p.DefaultNamespace = "default"
	}
	return p, nil
}

// keyBitsValue is fluxd's KeyBitsValue: strconv.ParseUint(s, 0, 64).
type keyBitsValue struct{ bits uint64 }

func (k *keyBitsValue) String() string { return strconv.FormatUint(k.bits, 10) }
func (k *keyBitsValue) Type() string   { return "uint64" }
func (k *keyBitsValue) Set(s string) error {
	v, err := strconv.ParseUint(s, 0, 64)
	if err != nil {
		return err
	}
	k.bits = v
	return nil
}

// checkKeygen refuses what ssh-keygen would refuse when fluxd asks it
// for a deploy key (fluxd passes -t, -b and -m through), and the key
// type this simulation cannot make.
func checkKeygen(typ string, bits uint64, format string) error {
	switch typ {
	case "", "rsa":
		if bits != 0 && (bits < 1024 || bits > 16384) {
			return fmt.Errorf("ssh-keygen: Invalid RSA key length: must be between 1024 and 16384 bits")
		}
	case "ecdsa":
		if bits != 0 && bits != 256 && bits != 384 && bits != 521 {
			return fmt.Errorf("ssh-keygen: Invalid ECDSA key length: valid lengths are 256, 384 or 521 bits")
		}
	case "ed25519":
	case "dsa":
		return fmt.Errorf("--ssh-keygen-type=dsa: DSA deploy keys are not simulated (OpenSSH no longer accepts them); use rsa, ecdsa or ed25519")
	default:
		return fmt.Errorf("ssh-keygen: unknown key type %s", typ)
	}
	if format != "" && !slices.Contains([]string{"RFC4716", "PKCS8", "PEM"}, format) {
		return fmt.Errorf("ssh-keygen: Unsupported conversion format %q", format)
	}
	return nil
}
