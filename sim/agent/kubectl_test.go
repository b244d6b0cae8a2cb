package agent

import (
	"strings"
	"testing"

	"k8s.io/client-go/discovery"
	"k8s.io/client-go/discovery/cached/memory"
	"k8s.io/client-go/rest"
)

// TestKubectlFetchesTheSchemaAgain: a command that could not fetch the
// OpenAPI schema (the API server down) does not leave its error to the
// next, as fluxd's next kubectl process would not.
func TestKubectlFetchesTheSchemaAgain(t *testing.T) {
	k, manifest := unreachableKubectl()
	_, err := k.run(manifest, "apply")
	if err == nil || !strings.Contains(err.Error(), "openapi") {
		t.Fatalf("apply with the API server down: %v, want the schema's fetch to fail", err)
	}
	first := k.factory.schema
	if !first.failed() {
		t.Fatal("the failed fetch is not noted")
	}
	if _, err := k.run(manifest, "apply"); err == nil {
		t.Fatal("apply to an unreachable server succeeded")
	}
	if k.factory.schema == first {
		t.Error("the next command reused the factory whose schema fetch failed")
	}
}

// unreachableKubectl is a kubectl whose API server does not answer, and a
// manifest for it: its commands are built, and fail.
func unreachableKubectl() (*kubectl, []byte) {
	cfg := &rest.Config{Host: "https://127.0.0.1:1"}
	k := newKubectl(cfg, memory.NewMemCacheClient(discovery.NewDiscoveryClientForConfigOrDie(cfg)), nil)
	return k, []byte("apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: a\n  namespace: default\n")
}
