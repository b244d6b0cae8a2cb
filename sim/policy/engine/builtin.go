package engine

import (
	"embed"
	"encoding/json"
	"strings"
)

// The Flux v1 GitOps built-in definitions (azure-policy-spec §1.1), as
// published in Azure/azure-policy under
// built-in-policies/policyDefinitions/Kubernetes/ at their last change
// (f7319d6e, 2024-03-13): same bytes, including the upstream "id" and
// "name" and the absent trailing newline.
const (
	// BuiltInGitOpsNoSecrets is "Configure Kubernetes clusters with
	// specified GitOps configuration using no secrets".
	BuiltInGitOpsNoSecrets = "1d61c4d2-aef2-432b-87fc-7f96b019b7e1"
	// BuiltInGitOpsSSH is "... using SSH secrets".
	BuiltInGitOpsSSH = "c050047b-b21b-4822-8a2d-c1e37c3c0c6a"
	// BuiltInGitOpsHTTPS is "... using HTTPS secrets".
	BuiltInGitOpsHTTPS = "a6f560f4-f582-4b67-b123-a37dcd1bf7ea"
)

//go:embed builtin/*.json
var builtinFS embed.FS

// builtinFiles maps each built-in's name to its file, in the order
// BuiltIns returns them.
var builtinFiles = []struct{ name, file string }{
	{BuiltInGitOpsNoSecrets, "builtin/Deploy-GitOps-to-Kubernetes-cluster-no-secrets_DINE.json"},
	{BuiltInGitOpsSSH, "builtin/Deploy-GitOps-to-Kubernetes-cluster-SSH-secrets_DINE.json"},
	{BuiltInGitOpsHTTPS, "builtin/Deploy-GitOps-to-Kubernetes-cluster-HTTPS-secrets_DINE.json"},
}

// BuiltIns returns the built-in policy definitions the simulator serves at
// /providers/Microsoft.Authorization/policyDefinitions/{name}, each as the
// upstream JSON document ({"properties": ..., "id": ..., "name": ...}); the
// provider adds "type". Each call returns fresh copies.
func BuiltIns() []json.RawMessage {
	out := make([]json.RawMessage, 0, len(builtinFiles))
	for _, f := range builtinFiles {
		raw, _ := BuiltIn(f.name)
		out = append(out, raw)
	}
	return out
}

// BuiltIn returns one built-in definition by name (its GUID, matched
// case-insensitively).
func BuiltIn(name string) (json.RawMessage, bool) {
	for _, f := range builtinFiles {
		if strings.EqualFold(f.name, name) {
			raw, err := builtinFS.ReadFile(f.file)
			if err != nil {
				// The files are embedded at build time; a miss is a build bug.
				return nil, false
			}
			return json.RawMessage(raw), true
		}
	}
	return nil, false
}
