package sim_test

import (
	"strings"
	"testing"

	"github.com/gitopsim/gitopsim/sim"
)

func TestFleetName(t *testing.T) {
	for _, tc := range []struct {
		pattern string
		n       int
		want    string
	}{
		{"cluster-{n:03}", 7, "cluster-007"},
		{"edge-{n}", 12, "edge-12"},
		{"{n:02}-{n}", 3, "03-3"},
		{"store-{n:02}", 123, "store-123"},
	} {
		got, err := sim.FleetName(tc.pattern, tc.n)
		if err != nil || got != tc.want {
			t.Errorf("FleetName(%q, %d) = %q, %v; want %q", tc.pattern, tc.n, got, err, tc.want)
		}
	}
	for _, bad := range []string{"cluster", "cluster-{m}", "cluster-{n:3}", "cluster-{n:00}"} {
		if _, err := sim.FleetName(bad, 1); err == nil || !strings.Contains(err.Error(), "{n}") {
			t.Errorf("FleetName(%q): %v, want an error naming {n}", bad, err)
		}
	}
}
