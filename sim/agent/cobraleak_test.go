package agent

import (
	"testing"
)

// TestKubectlForgetsCompletions: every apply builds a kubectl command,
// and cobra would keep its flags (and through them the operator and the
// simulator) forever. The server is unreachable: the command is built,
// and its completions registered, before it fails.
func TestKubectlForgetsCompletions(t *testing.T) {
	k, manifest := unreachableKubectl()
	before := completionsKept()
	for range 3 {
		if _, err := k.run(manifest, "apply"); err == nil {
			t.Fatal("apply to an unreachable server succeeded")
		}
		if _, err := k.run(manifest, "delete"); err == nil {
			t.Fatal("delete on an unreachable server succeeded")
		}
	}
	if after := completionsKept(); after != before {
		t.Errorf("cobra keeps %d flag completion functions after 6 kubectl commands, %d before", after, before)
	}
}
