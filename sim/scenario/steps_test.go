package scenario

import "testing"

// TestEveryActionHasAStepKind: a Step field the loader accepts must have
// a row in stepKinds, or the runner would fail the step at run time.
func TestEveryActionHasAStepKind(t *testing.T) {
	for _, a := range allActions() {
		k, ok := stepKinds[a]
		if !ok || k.summary == nil {
			t.Errorf("action %q has no row in stepKinds", a)
		}
		if k.do == nil && a != "try" {
			t.Errorf("action %q has no do function", a)
		}
	}
	if len(stepKinds) != len(allActions()) {
		t.Errorf("stepKinds has %d rows for %d actions", len(stepKinds), len(allActions()))
	}
}
