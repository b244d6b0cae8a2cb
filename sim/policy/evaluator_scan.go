package policy

import "github.com/gitopsim/gitopsim/sim/policy/engine"

// scan is an on-demand evaluation (triggerEvaluation) of a subscription or
// resource group: every assignment that covers any of the scope is
// evaluated for the clusters inside the scope, without deploying
// (azure-policy-spec §3.1). It runs at the clock's next tick and calls
// done when finished.
func (e *evaluator) scan(scope string, done func()) {
	e.p.clk.AfterFunc(0, func() {
		defer done()
		var clusters []engine.Resource
		listed := false
		for _, a := range e.p.Assignments() {
			switch {
			case within(a.Scope, scope):
				// The assignment lies inside the scope: all of it.
				e.evaluateAssignment(a.ID)
			case within(scope, a.Scope):
				// The scope lies inside the assignment: only its part.
				if !listed {
					clusters, listed = e.clustersIn(scope), true
				}
				for _, cl := range clusters {
					e.evaluate(a, cl, false)
				}
			}
		}
	})
}
