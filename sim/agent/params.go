package agent

import (
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"
)

// fluxParams are the fluxd flags the simulated operator honours (spec
// §4.1), parsed from a configuration's operatorParams.
type fluxParams struct {
	Branch           string
	Paths            []string
	PollInterval     time.Duration
	SyncInterval     time.Duration
	GitTimeout       time.Duration
	ReadOnly         bool
	User, Email      string
	SyncTag          string
	GC, GCDry        bool
	AllowNamespaces  []string
	DefaultNamespace string
	SyncState        string
	// Warnings are things fluxd logs at start (ineffective flags).
	Warnings []string
}

// fluxd flags that take a value, with how they are applied. Flags fluxd
// knows but the simulation has no use for are accepted and ignored, as
// the real daemon would run with them.
var (
	valueFlags = map[string]bool{
		"--git-url": true, "--git-branch": true, "--git-path": true, "--git-poll-interval": true,
		"--sync-interval": true, "--git-timeout": true, "--git-user": true, "--git-email": true,
		"--git-label": true, "--git-sync-tag": true, "--git-notes-ref": true, "--sync-state": true,
		"--k8s-allow-namespace": true, "--k8s-namespace-whitelist": true, "--k8s-default-namespace": true,
		"--sync-timeout": true, "--k8s-secret-name": true, "--k8s-secret-volume-mount-path": true,
		"--k8s-secret-data-key": true, "--k8s-unsafe-exclude-resource": true, "--listen": true,
		"--listen-metrics": true, "--memcached-hostname": true, "--memcached-port": true,
		"--memcached-service": true, "--ssh-keygen-dir": true, "--ssh-keygen-type": true,
		"--ssh-keygen-bits": true, "--ssh-keygen-format": true, "--registry-exclude-image": true,
		"--registry-poll-interval": true, "--automation-interval": true, "--git-secret": false,
		"--git-signing-key": true, "--git-gpg-key-import": true, "--git-ci-skip-message": true,
		"--connect": true, "--token": true, "--log-format": true, "--k8s-verbosity": true,
		"--git-set-author": false, "--manifest-generation": false, "--git-ci-skip": false,
		"--sync-garbage-collection": false, "--sync-garbage-collection-dry": false,
		"--git-readonly": false, "--registry-disable-scanning": false, "--git-verify-signatures": false,
	}
)

// parseFluxParams parses operatorParams as fluxd's flag parser would:
// "--flag=value", "--flag value", and bare boolean flags. An unknown flag
// is an error, as it stops fluxd from starting.
//
// defaults carries the profile's poll and sync intervals, which explicit
// flags override.
func parseFluxParams(params, operatorNamespace string, namespaceScope bool, defaults Intervals) (fluxParams, error) {
	p := fluxParams{
		Branch: "master", PollInterval: defaults.GitPoll, SyncInterval: defaults.Sync,
		GitTimeout: 20 * time.Second, User: "Weave Flux", Email: "support@weave.works",
		SyncTag: "flux-sync", SyncState: "git",
	}
	label := ""
	fields := strings.Fields(params)
	for i := 0; i < len(fields); i++ {
		f := fields[i]
		if !strings.HasPrefix(f, "--") {
			return p, fmt.Errorf("unexpected argument %q in operatorParams (flags look like --name=value)", f)
		}
		name, val, hasVal := strings.Cut(f, "=")
		takesValue, known := valueFlags[name]
		if !known {
			return p, fmt.Errorf("unknown flag: %s", name)
		}
		if takesValue && !hasVal {
			if i+1 >= len(fields) || strings.HasPrefix(fields[i+1], "--") {
				return p, fmt.Errorf("flag needs an argument: %s", name)
			}
			i++
			val = fields[i]
		}
		boolVal := func() (bool, error) {
			if !hasVal {
				return true, nil
			}
			b, err := strconv.ParseBool(val)
			if err != nil {
				return false, fmt.Errorf("invalid argument %q for %q flag: %v", val, name, err)
			}
			return b, nil
		}
		dur := func() (time.Duration, error) {
			d, err := time.ParseDuration(val)
			if err != nil || d <= 0 {
				return 0, fmt.Errorf("invalid argument %q for %q flag: a positive duration such as 30s or 5m is needed", val, name)
			}
			return d, nil
		}
		var err error
		switch name {
		case "--git-branch":
			p.Branch = val
		case "--git-path":
			for _, part := range strings.Split(val, ",") {
				if part = strings.Trim(strings.TrimSpace(part), "/"); part != "" {
					p.Paths = append(p.Paths, part)
				}
			}
		case "--git-poll-interval":
			p.PollInterval, err = dur()
		case "--sync-interval":
			p.SyncInterval, err = dur()
		case "--git-timeout":
			p.GitTimeout, err = dur()
		case "--git-readonly":
			p.ReadOnly, err = boolVal()
		case "--git-user":
			p.User = val
		case "--git-email":
			p.Email = val
		case "--git-label":
			label = val
		case "--git-sync-tag":
			p.SyncTag = val
		case "--sync-garbage-collection":
			p.GC, err = boolVal()
		case "--sync-garbage-collection-dry":
			p.GCDry, err = boolVal()
		case "--k8s-allow-namespace", "--k8s-namespace-whitelist":
			for _, ns := range strings.Split(val, ",") {
				if ns = strings.TrimSpace(ns); ns != "" && !slices.Contains(p.AllowNamespaces, ns) {
					p.AllowNamespaces = append(p.AllowNamespaces, ns)
				}
			}
		case "--k8s-default-namespace":
			p.DefaultNamespace = val
		case "--sync-state":
			if val != "git" && val != "secret" {
				return p, fmt.Errorf("invalid argument %q for \"--sync-state\" flag: must be git or secret", val)
			}
			p.SyncState = val
		}
		if err != nil {
			return p, err
		}
	}
	if label != "" {
		p.SyncTag = label
	}
	if p.GCDry {
		p.GC = true
	}
	if p.ReadOnly && p.SyncState == "git" {
		p.SyncState = "secret"
		p.Warnings = append(p.Warnings, "--git-readonly prevents use of --sync-state=git; using --sync-state=secret")
	}
	if namespaceScope {
		// Arc confines a namespace-scoped operator to its namespace.
		p.AllowNamespaces = []string{operatorNamespace}
	}
	if p.DefaultNamespace == "" {
		// In-cluster, fluxd falls back to its pod's namespace.
		p.DefaultNamespace = operatorNamespace
	}
	if len(p.Paths) == 0 {
		p.Paths = []string{""}
	}
	return p, nil
}
