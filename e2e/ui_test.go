package e2e_test

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore/to"
	"github.com/Azure/azure-sdk-for-go/sdk/resourcemanager/kubernetesconfiguration/armkubernetesconfiguration/v2"
	cdruntime "github.com/chromedp/cdproto/runtime"
	"github.com/chromedp/chromedp"
	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/gitopsim/gitopsim/sim"
	"github.com/gitopsim/gitopsim/sim/arm"
	"github.com/gitopsim/gitopsim/sim/azsdk"
	"github.com/gitopsim/gitopsim/sim/clock"
	"github.com/gitopsim/gitopsim/sim/gitserver"
	"github.com/gitopsim/gitopsim/sim/scenario"
	"github.com/gitopsim/gitopsim/sim/ui"
)

// browserPath finds a Chromium to drive; "" when there is none.
func browserPath() string {
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome", "google-chrome-stable"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	return ""
}

// screenshotDir is where the specs leave screenshots of the main states:
// $GITOPSIM_SCREENSHOTS, else out/ui-screenshots at the repo's root.
func screenshotDir() string {
	if d := os.Getenv("GITOPSIM_SCREENSHOTS"); d != "" {
		return d
	}
	_, file, _, _ := runtime.Caller(0)
	return filepath.Join(filepath.Dir(file), "..", "out", "ui-screenshots")
}

// tab is a headless Chromium tab, driven through the DevTools protocol,
// with the JavaScript exceptions its pages threw.
type tab struct {
	ctx   context.Context
	shots string
	mu    sync.Mutex
	errs  []string
}

// openTab starts Chromium for the spec (skipping it, with the reason,
// where there is none) and stops it at the end.
func openTab() *tab {
	GinkgoHelper()
	path := browserPath()
	if path == "" {
		Skip("no Chromium here (make test installs Debian's chromium; apt-get install chromium)")
	}
	t := &tab{shots: screenshotDir()}
	Expect(os.MkdirAll(t.shots, 0o755)).To(Succeed())
	opts := append(chromedp.DefaultExecAllocatorOptions[:], chromedp.ExecPath(path), chromedp.NoSandbox,
		chromedp.DisableGPU, chromedp.WindowSize(1280, 900))
	alloc, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	var cancel context.CancelFunc
	t.ctx, cancel = chromedp.NewContext(alloc, chromedp.WithListener(func(ev any) {
		if e, ok := ev.(*cdruntime.EventExceptionThrown); ok {
			d := e.ExceptionDetails
			msg := d.Text
			if d.Exception != nil && d.Exception.Description != "" {
				msg = d.Exception.Description
			}
			t.mu.Lock()
			t.errs = append(t.errs, fmt.Sprintf("%s:%d:%d: %s", d.URL, d.LineNumber+1, d.ColumnNumber+1, msg))
			t.mu.Unlock()
		}
	}))
	DeferCleanup(func() { cancel(); cancelAlloc() })
	// The first run starts the browser, which lives as long as its context.
	Expect(chromedp.Do(t.ctx, chromedp.Navigate("about:blank"))).To(Succeed())
	return t
}

// run runs actions with a deadline of their own; on a failure it saves a
// screenshot and says what the page showed.
func (t *tab) run(d time.Duration, actions ...chromedp.Action[chromedp.Void]) {
	GinkgoHelper()
	ctx, cancel := context.WithTimeout(t.ctx, d)
	defer cancel()
	if err := chromedp.Do(ctx, actions...); err != nil {
		Fail(fmt.Sprintf("browser: %v\n%s", err, t.explain()))
	}
}

// explain describes the page for a failure message, with a screenshot.
func (t *tab) explain() string {
	ctx, cancel := context.WithTimeout(t.ctx, 20*time.Second)
	defer cancel()
	name := fmt.Sprintf("failure-%d.png", time.Now().UnixNano())
	if png, err := chromedp.Run(ctx, chromedp.CaptureScreenshot()); err == nil {
		_ = os.WriteFile(filepath.Join(t.shots, name), png, 0o644)
	}
	page, err := chromedp.Run(ctx, chromedp.Evaluate[string](`JSON.stringify({
		conn: document.querySelector('#conn')?.textContent,
		now: document.querySelector('#clock-now')?.dataset.now,
		clusters: [...document.querySelectorAll('#grid .cluster')].slice(0, 5).map(e => e.dataset.cluster + ' ' + e.dataset.connectivity + ' ' + e.dataset.state),
		spans: [...document.querySelectorAll('#timeline .span')].map(e => e.dataset.kind + ' ' + (e.getAttribute('width') || '')),
		toasts: [...document.querySelectorAll('#toasts .toast')].map(e => e.textContent),
		events: [...document.querySelectorAll('#event-log li')].slice(0, 8).map(e => e.textContent)})`))
	if err != nil {
		page = "(cannot read the page: " + err.Error() + ")"
	}
	return fmt.Sprintf("page: %s\nscreenshot: %s", page, filepath.Join(t.shots, name))
}

// shot saves a screenshot of the viewport as a test artifact.
func (t *tab) shot(name string) {
	GinkgoHelper()
	ctx, cancel := context.WithTimeout(t.ctx, 30*time.Second)
	defer cancel()
	png, err := chromedp.Run(ctx, chromedp.CaptureScreenshot())
	Expect(err).NotTo(HaveOccurred())
	Expect(os.WriteFile(filepath.Join(t.shots, name), png, 0o644)).To(Succeed())
	AddReportEntry("screenshot", filepath.Join(t.shots, name))
}

func (t *tab) attr(sel, name string) string {
	GinkgoHelper()
	ctx, cancel := context.WithTimeout(t.ctx, 10*time.Second)
	defer cancel()
	v, err := chromedp.Run(ctx, chromedp.AttributeValue(chromedp.CSS(sel), name))
	Expect(err).NotTo(HaveOccurred())
	return v.Value
}

func (t *tab) text(sel string) string {
	GinkgoHelper()
	ctx, cancel := context.WithTimeout(t.ctx, 10*time.Second)
	defer cancel()
	v, err := chromedp.Run(ctx, chromedp.TextContent(chromedp.CSS(sel)))
	Expect(err).NotTo(HaveOccurred())
	return v
}

// thrown are the exceptions the tab's pages threw so far.
func (t *tab) thrown() []string {
	t.mu.Lock()
	defer t.mu.Unlock()
	return append([]string(nil), t.errs...)
}

// The web view in a real browser: a simulator of its own (on the suite's
// Kubernetes API, with a clock the page steers and the fast agent
// profile), served by the ui package and driven by headless Chromium
// through the DevTools protocol. Nothing is reloaded between steps: what
// the page shows arrives over its event stream.
var _ = Describe("web view", Ordered, Label("browser"), func() {
	var (
		sm      *sim.Sim
		ctl     *clock.Controlled
		view    *ui.Server
		browser *tab
		configs *armkubernetesconfiguration.SourceControlConfigurationsClient
	)
	const cell = `#grid [data-cluster="browser/local"]`

	BeforeAll(func(ctx SpecContext) {
		browser = openTab()
		var err error
		ctl, err = clock.NewControlled(clock.ControlledOptions{Workers: 4})
		Expect(err).NotTo(HaveOccurred())
		sm, err = sim.New(sim.Options{
			Workdir: GinkgoT().TempDir(), Clock: ctl, SharedCluster: stack.Cluster(),
			Local:        sim.LocalCluster{Name: "local", ResourceGroup: "browser"},
			AgentProfile: "fast",
			ARM:          arm.Options{TokenClock: clock.Real()},
			Logger:       slog.New(slog.NewTextHandler(GinkgoWriter, nil)),
		})
		Expect(err).NotTo(HaveOccurred())
		rec := ui.NewRecorder(ui.RecorderOptions{})
		detach := rec.Attach(sm)
		Expect(sm.Start(ctx)).To(Succeed())
		changes := GinkgoT().TempDir()
		Expect(os.WriteFile(filepath.Join(changes, "scale-web.txtar"), []byte("scale web to 3\n-- web.yaml --\n"+cmYAML("browser-demo", "web", "v3")), 0o644)).To(Succeed())
		view, err = ui.New(ui.Options{Sim: sm, Recorder: rec, Refresh: 200 * time.Millisecond, Changes: changes})
		Expect(err).NotTo(HaveOccurred())
		Expect(view.Start(ctx)).To(Succeed())
		DeferCleanup(func(ctx SpecContext) {
			Expect(view.Stop(ctx)).To(Succeed())
			Expect(sm.Stop(ctx)).To(Succeed())
			detach()
		})

		_, err = sm.Git().CreateRepo("demo", gitserver.RepoOptions{Public: true, DefaultBranch: "master"})
		Expect(err).NotTo(HaveOccurred())
		_, err = sm.Git().Commit("demo", "master", "a first manifest", map[string]*string{"web.yaml": to.Ptr(cmYAML("browser-demo", "web", "v1"))})
		Expect(err).NotTo(HaveOccurred())
		az, err := azsdk.New(sm.Endpoints().ARM)
		Expect(err).NotTo(HaveOccurred())
		configs, err = armkubernetesconfiguration.NewSourceControlConfigurationsClient(az.SubscriptionID, az.Credential, az.Options)
		Expect(err).NotTo(HaveOccurred())

	}, NodeTimeout(3*time.Minute))

	AfterAll(func() {
		if browser != nil {
			Expect(browser.thrown()).To(BeEmpty(), "the page threw")
		}
	})
	run, shot, attr := func(d time.Duration, a ...chromedp.Action[chromedp.Void]) { GinkgoHelper(); browser.run(d, a...) },
		func(name string) { GinkgoHelper(); browser.shot(name) },
		func(sel, name string) string { GinkgoHelper(); return browser.attr(sel, name) }
	pageNow := func() time.Time {
		GinkgoHelper()
		t, err := time.Parse(time.RFC3339Nano, attr("#clock-now", "data-now"))
		Expect(err).NotTo(HaveOccurred())
		return t
	}

	It("loads and shows the local cluster", func() {
		run(30*time.Second, chromedp.Navigate(view.URL()), chromedp.WaitVisible(chromedp.CSS(cell)))
		Expect(attr(cell, "data-connectivity")).To(Equal("Connected"))
		shot("01-local-cluster.png")
	})

	It("shows a configuration created through ARM turn Installed without a reload", func(ctx SpecContext) {
		_, err := configs.CreateOrUpdate(ctx, "browser", "Microsoft.Kubernetes", "connectedClusters", "local", "demo",
			armkubernetesconfiguration.SourceControlConfiguration{Properties: &armkubernetesconfiguration.SourceControlConfigurationProperties{
				RepositoryURL: to.Ptr(sm.Git().HTTPSURL() + "/demo.git"), OperatorNamespace: to.Ptr("browser-demo"),
				OperatorInstanceName: to.Ptr("demo"), OperatorType: to.Ptr(armkubernetesconfiguration.OperatorTypeFlux),
				OperatorScope: to.Ptr(armkubernetesconfiguration.OperatorScopeTypeNamespace), OperatorParams: to.Ptr("--git-readonly"),
			}}, nil)
		Expect(err).NotTo(HaveOccurred())
		run(2*time.Minute, chromedp.WaitVisible(chromedp.CSS(cell+`[data-state="Installed"]`)))
		run(30*time.Second, chromedp.WaitVisible(chromedp.CSS(`#timeline .span[data-kind="install"]`)))
		shot("02-installed.png")
	})

	It("moves simulated time with its controls", func() {
		run(10*time.Second, chromedp.Click(chromedp.CSS("#pause")))
		Eventually(func() bool { return ctl.State().Paused }).WithTimeout(10 * time.Second).Should(BeTrue())
		before := ctl.Now()
		run(10*time.Second, chromedp.Click(chromedp.CSS("#jump-1h")))
		Eventually(ctl.Now).WithTimeout(30 * time.Second).Should(BeTemporally(">=", before.Add(time.Hour)))
		// The page keeps milliseconds.
		Eventually(pageNow).WithTimeout(10 * time.Second).Should(BeTemporally(">=", before.Add(time.Hour).Truncate(time.Millisecond)))
		// Paused, the page's clock stands still.
		Consistently(pageNow).WithTimeout(time.Second).Should(BeTemporally("~", ctl.Now(), time.Second))
		run(10*time.Second, chromedp.Click(chromedp.CSS("#scale-60")), chromedp.Click(chromedp.CSS("#resume")))
		Eventually(func() float64 { return ctl.State().Scale }).WithTimeout(10 * time.Second).Should(Equal(60.0))
		Eventually(pageNow).WithTimeout(10 * time.Second).Should(BeTemporally(">", ctl.Now().Add(-time.Minute)))
		run(10*time.Second, chromedp.Click(chromedp.CSS("#scale-1")))
		Eventually(func() float64 { return ctl.State().Scale }).WithTimeout(10 * time.Second).Should(Equal(1.0))
	})

	It("takes the cluster offline, delivers a change late and draws the delay", func() {
		run(10*time.Second, chromedp.Click(chromedp.CSS(cell)), chromedp.WaitVisible(chromedp.CSS("#links-toggle")),
			chromedp.Click(chromedp.CSS("#links-toggle")))
		// Azure calls a cluster Offline 15 minutes after its last
		// heartbeat: jump past that.
		run(10*time.Second, chromedp.Click(chromedp.CSS("#jump-15m")))
		run(10*time.Second, chromedp.Click(chromedp.CSS("#jump-15m")))
		run(time.Minute, chromedp.WaitVisible(chromedp.CSS(cell+`[data-connectivity="Offline"]`)))
		run(30*time.Second, chromedp.WaitVisible(chromedp.CSS(`#timeline .span[data-kind="offline"]`)))
		shot("03-offline.png")

		run(10*time.Second, chromedp.SetValue(chromedp.CSS("#push-repo"), "demo"), chromedp.Click(chromedp.CSS("#push-demo")))
		Eventually(func() int { return len(sm.Git().Events()) }).WithTimeout(10 * time.Second).Should(BeNumerically(">=", 2))
		head, err := sm.Git().Ref("demo", "master")
		Expect(err).NotTo(HaveOccurred())
		run(10*time.Second, chromedp.Click(chromedp.CSS("#jump-1h")))
		run(10*time.Second, chromedp.Click(chromedp.CSS("#links-toggle")))
		run(2*time.Minute, chromedp.WaitVisible(chromedp.CSS(cell+`[data-connectivity="Connected"]`)))
		Eventually(func() string {
			for _, c := range sm.Connected()[0].Agent.Configurations() {
				return c.Revision
			}
			return ""
		}).WithTimeout(2 * time.Minute).Should(Equal(head.String()))
		late := `#timeline .span[data-kind="delivery"]:not(.open)`
		run(30*time.Second, chromedp.WaitVisible(chromedp.CSS(late)))
		title := browser.text(late + " title")
		Expect(title).To(ContainSubstring("after the push of " + head.String()[:7]))
		Expect(title).To(ContainSubstring("could not reach Azure"))
		// The detail lists the objects of the last sync, the demo change's
		// ConfigMap among them.
		run(30*time.Second, chromedp.WaitVisible(chromedp.CSS(`#cluster-detail table.objects tr[data-status="applied"][data-object*="gitopsim-demo"]`)))
		shot("04-late-delivery.png")
	})

	It("pushes a change prepared for the demo, chosen on the page", func() {
		before, err := sm.Git().Ref("demo", "master")
		Expect(err).NotTo(HaveOccurred())
		run(10*time.Second, chromedp.WaitReady(chromedp.CSS(`#push-change option[value="scale-web"]`)),
			chromedp.SetValue(chromedp.CSS("#push-change"), "scale-web"), chromedp.Click(chromedp.CSS("#push-demo")))
		Eventually(func() string {
			h, _ := sm.Git().Ref("demo", "master")
			return h.String()
		}).WithTimeout(10 * time.Second).ShouldNot(Equal(before.String()))
		last := sm.Git().Events()[len(sm.Git().Events())-1]
		Expect(last.Repo).To(Equal("demo"))
		Eventually(func(g Gomega) {
			cm, err := admin.CoreV1().ConfigMaps("browser-demo").Get(context.Background(), "web", metav1.GetOptions{})
			g.Expect(err).NotTo(HaveOccurred())
			g.Expect(cm.Data["value"]).To(Equal("v3"))
		}).WithTimeout(time.Minute).Should(Succeed())
	})

	It("takes the git server and one repository down and back from the page", func() {
		run(10*time.Second, chromedp.Click(chromedp.CSS("#git-toggle")), chromedp.WaitVisible(chromedp.CSS(`#git-toggle[data-down="true"]`)))
		Expect(sm.Git().Down()).To(BeTrue())
		run(10*time.Second, chromedp.Click(chromedp.CSS("#git-toggle")), chromedp.WaitVisible(chromedp.CSS(`#git-toggle[data-down="false"]`)))
		Expect(sm.Git().Down()).To(BeFalse())
		toggle := `#repo-list .repo-toggle[data-repo="demo"]`
		run(10*time.Second, chromedp.Click(chromedp.CSS(toggle)), chromedp.WaitVisible(chromedp.CSS(toggle+`[data-down="true"]`)))
		_, repos := sm.Git().Down()
		Expect(repos).To(Equal([]string{"demo"}))
		run(10*time.Second, chromedp.Click(chromedp.CSS(toggle)), chromedp.WaitVisible(chromedp.CSS(toggle+`[data-down="false"]`)))
		_, repos = sm.Git().Down()
		Expect(repos).To(BeEmpty())
	})

	It("offers every control as an HTTP endpoint with clear errors", func() {
		for path, want := range map[string]string{
			"api/clock/jump  {\"by\": \"a while\"}":                   "BadRequest",
			"api/clock/scale {\"scale\": 0}":                          "BadRequest",
			"api/clock/pause {\"paused\": true}":                      "BadRequest",
			"api/clusters/browser/local/links {\"offline\": \"yes\"}": "BadRequest",
			"api/clusters/browser/nope/links {\"offline\": true}":     "NotFound",
			"api/repos/nope/push {}":                                  "NotFound",
		} {
			target, body, _ := strings.Cut(path, " ")
			resp, err := http.Post(view.URL()+target, "application/json", strings.NewReader(body))
			Expect(err).NotTo(HaveOccurred())
			var answer struct {
				Error struct{ Code, Message string }
			}
			Expect(json.NewDecoder(resp.Body).Decode(&answer)).To(Succeed())
			resp.Body.Close()
			Expect(answer.Error.Code).To(Equal(want), path)
			Expect(answer.Error.Message).NotTo(BeEmpty(), path)
		}
		Expect(ctl.State().Scale).To(Equal(1.0), "a rejected scale must not change the clock")
		Expect(ctl.State().Paused).To(BeFalse(), "a rejected pause must not pause the clock")
	})
})

// The HTML report of scenario runs, opened from a file: one page with no
// network, a tab per scenario, the failed scenario and its failed steps
// marked, and the delays measured drawn on the timeline.
var _ = Describe("HTML report", Label("browser"), func() {
	It("shows each scenario's timeline, delays and failed steps from one file", func(ctx SpecContext) {
		browser := openTab()
		// A Kubernetes API of its own: the suite's has other specs'
		// objects, which the library scenario's expectations would see.
		backend := freshEnvtest(ctx)
		var states []ui.State
		for i, file := range []string{"../scenarios/offline-agent.yaml", "../sim/scenario/testdata/failing.yaml"} {
			sc, err := scenario.Load(file)
			Expect(err).NotTo(HaveOccurred())
			sm, err := scenario.NewSim(GinkgoT().TempDir(), sc.Metadata.Name, clock.NewVirtual(time.Time{}), slog.New(slog.NewTextHandler(GinkgoWriter, nil)), backend, nil)
			Expect(err).NotTo(HaveOccurred())
			rec := ui.NewRecorder(ui.RecorderOptions{})
			detach := rec.Attach(sm)
			Expect(sm.Start(ctx)).To(Succeed())
			res, err := scenario.Run(ctx, sm, file, GinkgoWriter)
			Expect(err).NotTo(HaveOccurred())
			Expect(res.Passed).To(Equal(i == 0), "%s: %v", file, res.Failures)
			st := rec.Snapshot(sm, "report", "a scenario's virtual clock")
			info := res.ScenarioInfo()
			st.Scenario = &info
			states = append(states, st)
			Expect(sm.Stop(ctx)).To(Succeed())
			detach()
		}
		path := filepath.Join(browser.shots, "report.html")
		Expect(ui.WriteReport(path, states, time.Now())).To(Succeed())

		browser.run(30*time.Second, chromedp.Navigate("file://"+path),
			chromedp.WaitVisible(chromedp.CSS(`#report-picker .report-tab[data-scenario="failing"][data-result="failed"]`)),
			chromedp.WaitVisible(chromedp.CSS(`#timeline .span[data-kind="offline"]`)),
			chromedp.WaitVisible(chromedp.CSS(`#timeline .span[data-kind="install"]`)))
		Expect(browser.text("#timeline .span[data-kind=\"offline\"] title")).To(ContainSubstring("Azure showed edge Offline"))
		// The only cluster is shown in detail, with the objects it synced.
		browser.run(10*time.Second, chromedp.WaitVisible(chromedp.CSS(`#cluster-detail table.objects tr[data-status="applied"]`)))
		browser.shot("05-report.png")

		browser.run(10*time.Second, chromedp.Click(chromedp.CSS(`#report-picker .report-tab[data-scenario="failing"]`)),
			chromedp.WaitVisible(chromedp.CSS(`#scenario-steps tr.result-failed`)),
			chromedp.WaitVisible(chromedp.CSS(`#timeline rect.step.result-failed`)),
			chromedp.WaitVisible(chromedp.CSS(`#scenario-failures li.failure`)))
		Expect(browser.text("#scenario-failures")).To(ContainSubstring("wrong color"))
		browser.shot("06-report-failed.png")
		Expect(browser.thrown()).To(BeEmpty(), "the report threw")
	})
})
