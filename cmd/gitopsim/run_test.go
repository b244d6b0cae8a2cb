package main

import (
	"encoding/xml"
	"errors"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/gitopsim/gitopsim/internal/syncbuf"
)

// TestRunFailingScenario runs a scenario that must fail through the CLI:
// non-zero exit, the failure with expected vs actual in the timeline and
// the summary, a JUnit failure, and a diagnostics bundle.
func TestRunFailingScenario(t *testing.T) {
	dir := t.TempDir()
	junit, reports := filepath.Join(dir, "junit.xml"), filepath.Join(dir, "reports")
	html := filepath.Join(dir, "report", "run.html")
	out, errOut, code := runGitopsim(t, "run", "--junit", junit, "--report-dir", reports, "--transcript", filepath.Join(dir, "t.json"),
		"--html", html, "../../sim/scenario/testdata/failing.yaml")
	if code != 1 {
		t.Fatalf("exit %d, want 1\nstdout:\n%s\nstderr:\n%s", code, out, errOut)
	}
	for _, want := range []string{
		`FAIL 3.try.1`, `data.color: expected "green", got "blue"`,
		`2: 1 failure(s) caught by the catch block`, `FAIL 3.finally.1`, `expected status 204, got 200`,
		"1 scenarios: 0 passed, 1 failed",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("stdout lacks %q:\n%s", want, out)
		}
	}
	if !strings.Contains(errOut, "scenarios failed: 1 of 1") {
		t.Errorf("stderr: %s", errOut)
	}
	var doc struct {
		Failures int `xml:"failures,attr"`
		Suites   []struct {
			Cases []struct {
				Name    string `xml:"name,attr"`
				Failure *struct {
					Message string `xml:"message,attr"`
					Text    string `xml:",chardata"`
				} `xml:"failure"`
			} `xml:"testcase"`
		} `xml:"testsuite"`
	}
	b, err := os.ReadFile(junit)
	if err != nil {
		t.Fatal(err)
	}
	if err := xml.Unmarshal(b, &doc); err != nil {
		t.Fatalf("junit: %v\n%s", err, b)
	}
	if doc.Failures != 1 || len(doc.Suites) != 1 || len(doc.Suites[0].Cases) != 1 || doc.Suites[0].Cases[0].Failure == nil {
		t.Fatalf("junit has no failed testcase:\n%s", b)
	}
	f := doc.Suites[0].Cases[0].Failure
	for _, want := range []string{"wrong color", "cleanup that fails too", "diagnostics: " + filepath.Join(reports, "failing")} {
		if !strings.Contains(f.Message+f.Text, want) {
			t.Errorf("junit failure lacks %q:\n%s", want, f.Text)
		}
	}
	for _, name := range []string{"arm-requests.jsonl", "gitopsim.log", "agent-events.txt", "git-refs.txt", "cluster-objects.yaml", "timeline.txt", "transcript.json"} {
		st, err := os.Stat(filepath.Join(reports, "failing", name))
		if err != nil || st.Size() == 0 {
			t.Errorf("diagnostics %s missing or empty: %v", name, err)
		}
	}
	tr, _ := os.ReadFile(filepath.Join(dir, "t.json"))
	if !strings.Contains(string(tr), `"result": "caught"`) || !strings.Contains(string(tr), `"result": "failed"`) {
		t.Errorf("transcript lacks the caught step or the failure:\n%s", tr)
	}
	refs, _ := os.ReadFile(filepath.Join(reports, "failing", "git-refs.txt"))
	if !strings.Contains(string(refs), "# git server requests") || !strings.Contains(string(refs), "git-upload-pack") {
		t.Errorf("git-refs.txt lacks the git server's request counts:\n%s", refs)
	}
	// The HTML report is one page with the failure in its data (the
	// browser spec checks how it is drawn).
	page, err := os.ReadFile(html)
	if err != nil || !strings.Contains(out, "HTML report: "+html) {
		t.Fatalf("html report: %v\n%s", err, out)
	}
	for _, want := range []string{`id="gitopsim-data">{"mode":"report"`, `"result":"failed"`, `wrong color`, `"kind":"install"`} {
		if !strings.Contains(string(page), want) {
			t.Errorf("html report lacks %s", want)
		}
	}
	objs, _ := os.ReadFile(filepath.Join(reports, "failing", "cluster-objects.yaml"))
	if !strings.Contains(string(objs), "color: blue") {
		t.Errorf("cluster-objects.yaml lacks the ConfigMap that failed the check:\n%s", objs)
	}
}

// TestValidate reports every problem with its position and exits 1;
// valid files pass.
func TestValidate(t *testing.T) {
	out, errOut, code := runGitopsim(t, "validate", "../../scenarios")
	if code != 0 || !strings.Contains(out, "ok   ../../scenarios/multi-tenancy.yaml") {
		t.Fatalf("library does not validate: exit %d\n%s\n%s", code, out, errOut)
	}
	_, errOut, code = runGitopsim(t, "validate", "../../sim/scenario/testdata/invalid/unknown-field.yaml", "../../sim/scenario/testdata/invalid/bad-duration.yaml")
	if code != 1 {
		t.Fatalf("exit %d, want 1", code)
	}
	for _, want := range []string{
		`unknown-field.yaml:11:9: spec.steps[1].expect.withn: unknown field (did you mean "within"?)`,
		`bad-duration.yaml:9:16: spec.steps[0].advance: invalid duration "5 minutes"`,
		"2 of 2 scenario files are invalid",
	} {
		if !strings.Contains(errOut, want) {
			t.Errorf("stderr lacks %q:\n%s", want, errOut)
		}
	}
}

func TestRunFlagMistakes(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"-p", "0"}, "invalid -p 0"},
		{[]string{"--concurrent-tasks", "0"}, "invalid --concurrent-tasks 0: at least 1"},
		{[]string{"--cluster", "minikube"}, `invalid --cluster "minikube": valid values are envtest, kind, kubeconfig`},
		{[]string{"--kind-image", "x"}, "--kind-image only applies to --cluster kind (this run uses envtest)"},
		{[]string{"--cluster", "kind", "--assets-dir", "x"}, "--assets-dir only applies to --cluster envtest (this run uses kind)"},
		{[]string{"--ui", "-p", "2"}, "--ui shows one scenario at a time: use -p 1"},
		{[]string{"--ui-port", "8080"}, "--ui-port goes with --ui"},
		{[]string{"--ui", "--ui-port", "70000"}, "invalid --ui-port 70000"},
	} {
		_, stderr, code := runGitopsim(t, append([]string{"run"}, append(tc.args, "../../scenarios/policy-baseline.yaml")...)...)
		if code != 2 || !strings.Contains(stderr, tc.want) {
			t.Errorf("run %v: exit %d, stderr:\n%s\nwant exit 2 and %q", tc.args, code, stderr, tc.want)
		}
	}
}

// TestRunUIKeepsTheReport runs a scenario with --ui: the web view's
// address, printed on stderr, serves the run's report once the run is
// over (its API says the run is over), until SIGINT; the exit code is
// still the run's.
func TestRunUIKeepsTheReport(t *testing.T) {
	dir := t.TempDir()
	cmd := gitopsim(t, "run", "--ui", "--report-dir", filepath.Join(dir, "reports"), "--workdir", filepath.Join(dir, "work"), "../../sim/scenario/testdata/failing.yaml")
	var out, errb syncbuf.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	exited := startCmd(t, cmd)
	re := regexp.MustCompile(`its report stays at (http://127\.0\.0\.1:\d+/)`)
	var url string
	for deadline := time.Now().Add(3 * time.Minute); url == ""; {
		if m := re.FindStringSubmatch(errb.String()); m != nil {
			url = m[1]
			break
		}
		select {
		case err := <-exited:
			t.Fatalf("run --ui exited (%v) without serving the report:\n%s", err, errb.String())
		case <-time.After(50 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			t.Fatalf("no report address on stderr:\n%s", errb.String())
		}
	}
	if !strings.Contains(errb.String(), "web view: http://") {
		t.Errorf("the live view's address was not printed:\n%s", errb.String())
	}
	var page []byte
	for deadline := time.Now().Add(30 * time.Second); ; {
		resp, err := http.Get(url)
		if err == nil {
			page, _ = io.ReadAll(resp.Body)
			resp.Body.Close()
			break
		}
		if time.Now().After(deadline) {
			t.Fatal(err)
		}
		<-time.After(50 * time.Millisecond)
	}
	if !strings.Contains(string(page), `"name":"failing"`) || !strings.Contains(string(page), `"result":"failed"`) {
		t.Errorf("report page lacks the failed scenario:\n%.300s", page)
	}
	resp, err := http.Get(url + "api/state")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusGone || !strings.Contains(string(body), "the run is over") {
		t.Errorf("api/state after the run: %d %s", resp.StatusCode, body)
	}
	if err := cmd.Process.Signal(syscall.SIGINT); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-exited:
		var ee *exec.ExitError
		if !errors.As(err, &ee) || ee.ExitCode() != 1 {
			t.Errorf("exit after SIGINT: %v, want 1 (the scenario failed)", err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("run --ui did not stop on SIGINT")
	}
}
