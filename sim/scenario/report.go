package scenario

import (
	"bytes"
	"encoding/json"
	"encoding/xml"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/gitopsim/gitopsim/sim/internal/atomicfile"
	"github.com/gitopsim/gitopsim/sim/ui"
)

// Step outcomes.
const (
	Passed  = "passed"
	Failed  = "failed"
	Skipped = "skipped"
	// Caught is a failed step inside a try block whose catch handled it.
	Caught = "caught"
)

// StepResult is one step in a transcript. Everything but Wall is
// deterministic on a virtual clock.
type StepResult struct {
	// Step numbers steps from 1; nested ones read "4.try.2",
	// "4.finally.1".
	Step    string `json:"step"`
	Name    string `json:"name,omitempty"`
	Line    int    `json:"line"`
	Action  string `json:"action"`
	Summary string `json:"summary"`
	// At and End are virtual offsets from the scenario's start.
	At     string `json:"at,omitempty"`
	End    string `json:"end,omitempty"`
	Result string `json:"result"`
	// Detail is what the step measured or got: "after 31s", "201".
	Detail string        `json:"detail,omitempty"`
	Error  string        `json:"error,omitempty"`
	Wall   time.Duration `json:"-"`
}

func (s StepResult) timelineLine() string {
	when := s.At
	if s.End != "" && s.End != s.At {
		when += "→" + s.End
	}
	mark := map[string]string{Passed: "ok  ", Failed: "FAIL", Skipped: "skip", Caught: "caught"}[s.Result]
	wall := ""
	if s.Result != Skipped && s.Action != "try" {
		wall = fmt.Sprintf("[%6s]", roundWall(s.Wall))
	}
	line := fmt.Sprintf("  %-21s %-8s %-4s %-6s %s", when, wall, mark, s.Step, s.Summary)
	if s.Name != "" {
		line += fmt.Sprintf(" (%s)", s.Name)
	}
	if s.Detail != "" {
		line += ": " + s.Detail
	}
	if s.Error != "" {
		line += "\n" + indent(s.Error, "        ")
	}
	return line
}

func roundWall(d time.Duration) string {
	switch {
	case d >= time.Second:
		return d.Round(10 * time.Millisecond).String()
	case d >= time.Millisecond:
		return d.Round(time.Millisecond).String()
	}
	return d.Round(10 * time.Microsecond).String()
}

func indent(s, pre string) string {
	return pre + strings.ReplaceAll(s, "\n", "\n"+pre)
}

// Result is the outcome of one scenario.
type Result struct {
	Name string
	File string
	// Passed is true when no step (outside a handled try) and no cleanup
	// failed.
	Passed bool
	Steps  []StepResult
	// Failures are the failed steps (and setup or cleanup problems), each
	// with its position.
	Failures []string
	// Caught are failures a catch block handled.
	Caught []string
	// Start is when the scenario began on its clock.
	Start time.Time
	// Virtual is how much simulated time the scenario took; Wall how much
	// real time.
	Virtual, Wall time.Duration
	// Diagnostics is the directory of the failure bundle, if one was
	// written.
	Diagnostics string
	// Timeline is the human timeline of this scenario.
	Timeline string
	// Policy has the milestones of each policy assignment the scenario
	// made, in the order made.
	Policy []PolicyMilestones
	// Rollouts has, for each configuration that more than one cluster
	// synced, when each did.
	Rollouts []Rollout
}

// transcript is the deterministic JSON form of a Result.
type transcript struct {
	Scenario string       `json:"scenario"`
	File     string       `json:"file"`
	Result   string       `json:"result"`
	Virtual  string       `json:"virtualDuration"`
	Steps    []StepResult `json:"steps"`
	Failures []string     `json:"failures,omitempty"`
	Caught   []string     `json:"caught,omitempty"`
	// Policy is left out for scenarios without policy assignments, so
	// their transcripts stay as they were.
	Policy   []PolicyMilestones `json:"policy,omitempty"`
	Rollouts []Rollout          `json:"rollouts,omitempty"`
}

// Transcript is the scenario's deterministic JSON transcript: on a
// virtual clock the same scenario gives the same bytes (no wall times,
// no random keys or tokens).
func (r *Result) Transcript() []byte {
	t := transcript{Scenario: r.Name, File: filepath.Base(r.File), Result: Passed, Virtual: FormatOffset(r.Virtual), Steps: r.Steps, Failures: r.Failures, Caught: r.Caught, Policy: r.Policy, Rollouts: r.Rollouts}
	if !r.Passed {
		t.Result = Failed
	}
	b, _ := json.MarshalIndent(t, "", "  ")
	return append(b, '\n')
}

// WriteTranscripts writes the transcripts of results to path: one JSON
// object for one result, a JSON array for several.
func WriteTranscripts(path string, results []*Result) error {
	var buf bytes.Buffer
	if len(results) == 1 {
		buf.Write(results[0].Transcript())
	} else {
		buf.WriteString("[\n")
		for i, r := range results {
			buf.Write(bytes.TrimRight(r.Transcript(), "\n"))
			if i < len(results)-1 {
				buf.WriteString(",")
			}
			buf.WriteString("\n")
		}
		buf.WriteString("]\n")
	}
	return atomicfile.WriteFile(path, buf.Bytes(), 0o644)
}

// GoldenPath is where a scenario file's golden transcript lives:
// beside it, with .golden for .yaml.
func GoldenPath(scenarioFile string) string {
	return strings.TrimSuffix(strings.TrimSuffix(scenarioFile, ".yaml"), ".yml") + ".golden"
}

// CheckGolden compares r's transcript with its golden file, or rewrites
// the golden file when update is set. A mismatch names the first line
// that differs.
func CheckGolden(r *Result, update bool) error {
	path := GoldenPath(r.File)
	got := r.Transcript()
	if update {
		return atomicfile.WriteFile(path, got, 0o644)
	}
	want, err := os.ReadFile(path)
	if err != nil {
		return fmt.Errorf("golden transcript: %w (create it with --update-golden)", err)
	}
	if bytes.Equal(got, want) {
		return nil
	}
	gl, wl := strings.Split(string(got), "\n"), strings.Split(string(want), "\n")
	for i := 0; i < max(len(gl), len(wl)); i++ {
		var g, w string
		if i < len(gl) {
			g = gl[i]
		}
		if i < len(wl) {
			w = wl[i]
		}
		if g != w {
			return fmt.Errorf("transcript differs from %s at line %d:\n  golden: %s\n  got:    %s\n(refresh with --update-golden if the change is intended)", path, i+1, strings.TrimSpace(w), strings.TrimSpace(g))
		}
	}
	return nil
}

type junitSuites struct {
	XMLName  xml.Name     `xml:"testsuites"`
	Tests    int          `xml:"tests,attr"`
	Failures int          `xml:"failures,attr"`
	Time     string       `xml:"time,attr"`
	Suites   []junitSuite `xml:"testsuite"`
}

type junitSuite struct {
	Name     string      `xml:"name,attr"`
	Tests    int         `xml:"tests,attr"`
	Failures int         `xml:"failures,attr"`
	Time     string      `xml:"time,attr"`
	Cases    []junitCase `xml:"testcase"`
}

type junitCase struct {
	Name      string        `xml:"name,attr"`
	Classname string        `xml:"classname,attr"`
	File      string        `xml:"file,attr,omitempty"`
	Time      string        `xml:"time,attr"`
	Failure   *junitFailure `xml:"failure,omitempty"`
	SystemOut string        `xml:"system-out,omitempty"`
}

type junitFailure struct {
	Message string `xml:"message,attr"`
	Type    string `xml:"type,attr"`
	Text    string `xml:",chardata"`
}

// WriteJUnit writes one testcase per scenario. A failed scenario's
// failure lists every failed step and cleanup problem, and its output
// holds the timeline and where the diagnostics are.
func WriteJUnit(w io.Writer, results []*Result) error {
	s := junitSuite{Name: "gitopsim scenarios"}
	var total time.Duration
	for _, r := range results {
		total += r.Wall
		c := junitCase{Name: r.Name, Classname: "gitopsim.scenario", File: r.File, Time: seconds(r.Wall), SystemOut: r.Timeline}
		if !r.Passed {
			s.Failures++
			text := strings.Join(r.Failures, "\n")
			if r.Diagnostics != "" {
				text += "\ndiagnostics: " + r.Diagnostics
			}
			msg := "scenario failed"
			if len(r.Failures) > 0 {
				msg = r.Failures[0]
			}
			c.Failure = &junitFailure{Message: msg, Type: "ScenarioFailure", Text: text}
		}
		s.Cases = append(s.Cases, c)
	}
	s.Tests = len(results)
	s.Time = seconds(total)
	doc := junitSuites{Tests: s.Tests, Failures: s.Failures, Time: s.Time, Suites: []junitSuite{s}}
	if _, err := io.WriteString(w, xml.Header); err != nil {
		return err
	}
	enc := xml.NewEncoder(w)
	enc.Indent("", "  ")
	if err := enc.Encode(doc); err != nil {
		return err
	}
	_, err := io.WriteString(w, "\n")
	return err
}

func seconds(d time.Duration) string { return fmt.Sprintf("%.3f", d.Seconds()) }

// WriteJUnitFile writes WriteJUnit's output to path atomically.
func WriteJUnitFile(path string, results []*Result) error {
	var buf bytes.Buffer
	if err := WriteJUnit(&buf, results); err != nil {
		return err
	}
	return atomicfile.WriteFile(path, buf.Bytes(), 0o644)
}

// ScenarioInfo is the result as the web view and the HTML report show it.
func (r *Result) ScenarioInfo() ui.ScenarioInfo {
	steps, _ := json.Marshal(r.Steps)
	if r.Steps == nil {
		steps = []byte("[]")
	}
	result := Passed
	if !r.Passed {
		result = Failed
	}
	return ui.ScenarioInfo{
		Name: r.Name, File: filepath.Base(r.File), Result: result, Start: r.Start.UTC(),
		VirtualDuration: FormatOffset(r.Virtual), Failures: r.Failures, Steps: steps,
	}
}
