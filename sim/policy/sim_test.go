package policy_test

import (
	"testing"

	"github.com/gitopsim/gitopsim/sim"
)

// TestSimHostsPolicy checks that the simulator hosts the provider.
func TestSimHostsPolicy(t *testing.T) {
	s, err := sim.New(sim.Options{Workdir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	if s.Policy() == nil || s.Policy().Name() != "Microsoft.Authorization" {
		t.Fatal("sim.New did not build the policy provider")
	}
}
