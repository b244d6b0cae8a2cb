package scenario

// stepKind runs one kind of step: each action of a Step (its YAML key)
// has a row in stepKinds, with its functions in a *steps.go file, so a
// new kind of step is a new row and a new file, not another case in a
// switch.
type stepKind struct {
	// summary is a one-line description for the timeline and the
	// transcript; it never contains secrets.
	summary func(r *run, s *Step) string
	// do performs the step and returns the detail for the timeline; nil
	// for kinds the runner handles itself (try).
	do func(r *run, s *Step) (string, error)
}

// stepKinds maps a step's action to how it runs.
var stepKinds = map[string]stepKind{
	"arm":                 {summaryARM, doARM},
	"configuration":       {summaryConfiguration, doConfiguration},
	"deleteConfiguration": {summaryDeleteConfiguration, doDeleteConfiguration},
	"deleteCluster":       {summaryDeleteCluster, doDeleteCluster},
	"git":                 {summaryGit, doGit},
	"setRef":              {summarySetRef, doSetRef},
	"deployKey":           {summaryDeployKey, doDeployKey},
	"revokeKey":           {summaryRevokeKey, doRevokeKey},
	"expireToken":         {summaryExpireToken, doExpireToken},
	"network":             {summaryNetwork, doNetwork},
	"gitServer":           {summaryGitServer, doGitServer},
	"armFault":            {summaryARMFault, doARMFault},
	"advance":             {summaryAdvance, doAdvance},
	"expect":              {summaryExpect, doExpect},
	"try":                 {summaryTry, nil},
	"onboard":             {summaryOnboard, doOnboard},
	"updateCluster":       {summaryUpdateCluster, doUpdateCluster},
	"assignPolicy":        {summaryAssignPolicy, doAssignPolicy},
	"grantRole":           {summaryGrantRole, doGrantRole},
	"remediate":           {summaryRemediate, doRemediate},
	"cancelRemediation":   {summaryCancelRemediation, doCancelRemediation},
	"policyScan":          {summaryPolicyScan, doPolicyScan},
}

// kindOf is the step's action, its one non-empty action field.
func (r *run) kindOf(s *Step) string {
	if a := actions(s); len(a) > 0 {
		return a[0]
	}
	return ""
}
