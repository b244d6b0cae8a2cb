package soak

import (
	"context"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"runtime/pprof"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/resourcemanager/kubernetesconfiguration/armkubernetesconfiguration/v2"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
)

// stats are the soak's figures.
type stats struct {
	ops     map[string]int
	refused map[string]int
	faults  map[faultKind]int
	// restarts counts gitopsim's restarts, freshWorkdirs those with a new
	// work dir, apiRestarts the kube-apiserver's.
	restarts, freshWorkdirs, apiRestarts int
	calms, logsChecked                   int
	slowestConverge                      time.Duration
}

// sample is the process's resources at a calm point.
type sample struct {
	at         time.Duration
	goroutines int
	fds        int
	heap       uint64
	live       int
}

// converge is how long the invariants may take to hold once faults end:
// a config poll, the operator's install, a git poll and a sync, with
// retries after a link was down, on the realistic profile.
const converge = 45 * time.Minute

// calm ends every fault, waits for the invariants to hold, and samples the
// process's resources.
func (w *world) calm() {
	w.endFaults(true)
	w.stats.calms++
	began := w.clk.Now()
	for {
		problems := w.check()
		if len(problems) == 0 {
			break
		}
		if w.clk.Since(began) >= converge {
			w.t.Errorf("at %v: not converged %v after the faults ended:\n  %s", w.elapsed(), converge, strings.Join(problems, "\n  "))
			return
		}
		w.clk.Advance(time.Minute)
	}
	took := w.clk.Since(began)
	w.stats.slowestConverge = max(w.stats.slowestConverge, took)
	w.t.Logf("at %v: converged in %v; %d configurations live, %d deleted; %d tasks on the clock", w.elapsed(), took, len(w.live), len(w.gone), w.clk.Pending())
	w.sample()
}

var (
	gitConfigs  = schema.GroupVersionResource{Group: "clusterconfig.azure.com", Version: "v1beta1", Resource: "gitconfigs"}
	deployments = schema.GroupVersionResource{Group: "apps", Version: "v1", Resource: "deployments"}
)

// check compares gitopsim with the model; it returns what does not hold
// yet. What can never come right by waiting (a lost or resurrected
// configuration, a repo whose head moved) fails the soak at once.
func (w *world) check() []string {
	ctx, cancel := context.WithTimeout(w.ctx, time.Minute)
	defer cancel()
	var problems []string
	for _, cl := range w.clusters {
		got := map[string]*armkubernetesconfiguration.SourceControlConfiguration{}
		pager := w.configs.NewListPager(resourceGroup, "Microsoft.Kubernetes", "connectedClusters", cl, nil)
		for pager.More() {
			page, err := pager.NextPage(ctx)
			if err != nil {
				w.t.Errorf("list the configurations of %s: %v", cl, err)
				return []string{"ARM list failed"}
			}
			for _, c := range page.Value {
				got[*c.Name] = c
			}
		}
		for name := range got {
			if w.live[cl+"/"+name] == nil {
				w.t.Errorf("at %v: configuration %s/%s is in ARM but was never acknowledged, or was deleted", w.elapsed(), cl, name)
			}
		}
		for _, c := range w.live {
			if c.cluster != cl {
				continue
			}
			if got[c.name] == nil {
				w.t.Errorf("at %v: acknowledged configuration %s is missing from ARM", w.elapsed(), c.key())
				continue
			}
			if p := w.compliance(c, got[c.name]); p != "" {
				problems = append(problems, p)
			}
		}
	}
	for _, c := range w.live {
		if h, err := w.s.Git().Ref(c.repo, "refs/heads/main"); err != nil || h.String() != c.head {
			w.t.Errorf("at %v: repo %s: head %v (%v), pushed %s", w.elapsed(), c.repo, h, err, c.head)
		}
		if p := w.applied(ctx, c); p != "" {
			problems = append(problems, p)
		}
	}
	for _, c := range w.gone {
		for _, o := range []struct {
			gvr  schema.GroupVersionResource
			what string
		}{{gitConfigs, "GitConfig"}, {deployments, "operator Deployment"}} {
			_, err := w.dyn.Resource(o.gvr).Namespace(c.ns).Get(ctx, c.name, metav1.GetOptions{})
			if !apierrors.IsNotFound(err) {
				problems = append(problems, fmt.Sprintf("%s deleted, but its %s is still there (%v)", c.key(), o.what, err))
			}
		}
	}
	w.checkPolicy(ctx)
	slices.Sort(problems)
	return problems
}

// compliance is what is wrong with c's compliance in ARM, or "".
func (w *world) compliance(c *configuration, got *armkubernetesconfiguration.SourceControlConfiguration) string {
	st := got.Properties.ComplianceStatus
	if st == nil || st.ComplianceState == nil {
		return c.key() + ": no compliance status"
	}
	level, msg := "", ""
	if st.MessageLevel != nil {
		level = string(*st.MessageLevel)
	}
	if st.Message != nil {
		msg = *st.Message
	}
	wantLevel := "Information"
	if !c.good {
		wantLevel = "Error"
	}
	if *st.ComplianceState != armkubernetesconfiguration.ComplianceStateTypeInstalled || level != wantLevel || !strings.Contains(msg, c.head[:7]) {
		return fmt.Sprintf("%s: compliance %s/%s %q, want Installed/%s about %s", c.key(), *st.ComplianceState, level, redact(msg, w.secrets), wantLevel, c.head[:7])
	}
	return ""
}

// applied is what is wrong with c's objects in the cluster, or "". A
// good head is applied. A broken head applies nothing, so what is there
// is the last good revision synced, which may be older than the last good
// one pushed: fluxd syncs the head, not every commit.
func (w *world) applied(ctx context.Context, c *configuration) string {
	cm, err := w.kube.CoreV1().ConfigMaps(c.ns).Get(ctx, "soak", metav1.GetOptions{})
	if apierrors.IsNotFound(err) && !c.good {
		return "" // broken before its first sync: nothing was ever applied
	}
	if err != nil {
		return fmt.Sprintf("%s: ConfigMap %s/soak: %v", c.key(), c.ns, err)
	}
	got, err := strconv.Atoi(cm.Data["rev"])
	switch {
	case err != nil:
		return fmt.Sprintf("%s: ConfigMap %s/soak has rev %q", c.key(), c.ns, cm.Data["rev"])
	case c.good && got != c.rev:
		return fmt.Sprintf("%s: ConfigMap %s/soak has rev %d, want %d", c.key(), c.ns, got, c.rev)
	case !c.good && (got < 1 || got > c.rev):
		return fmt.Sprintf("%s: ConfigMap %s/soak has rev %d, want one of the good ones, 1 to %d", c.key(), c.ns, got, c.rev)
	}
	return ""
}

// sample records the process's goroutines, open files and heap, and
// checks that every stopped simulator has been collected: a stopped one
// still reachable is a leak whatever its size.
func (w *world) sample() {
	runtime.GC()
	runtime.GC()
	kept := 0
	for _, p := range w.stopped {
		if p.Value() != nil {
			kept++
		}
	}
	if kept > 0 {
		w.t.Errorf("at %v: %d of %d stopped simulators are still reachable (see the heap profiles in %s)", w.elapsed(), kept, len(w.stopped), filepath.Join(w.dir, "profiles"))
	}
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	fds, _ := os.ReadDir("/proc/self/fd")
	w.samples = append(w.samples, sample{at: w.elapsed(), goroutines: runtime.NumGoroutine(), fds: len(fds), heap: ms.HeapAlloc, live: len(w.live)})
	// The profiles explain a leak the samples show.
	dir := filepath.Join(w.dir, "profiles")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		w.t.Error(err)
		return
	}
	for _, p := range []struct{ name, file string }{{"goroutine", "goroutines-%02d.txt"}, {"heap", "heap-%02d.pprof"}} {
		f, err := os.Create(filepath.Join(dir, fmt.Sprintf(p.file, len(w.samples))))
		if err != nil {
			w.t.Error(err)
			return
		}
		debug := 0
		if p.name == "goroutine" {
			debug = 1
		}
		if err := pprof.Lookup(p.name).WriteTo(f, debug); err != nil {
			w.t.Error(err)
		}
		_ = f.Close()
	}
}

// checkLeaks compares the floors of the samples: the fewest goroutines
// and open files, and the smallest heap, of the last third against those
// of the first half (after the first sample, taken before caches and
// pools fill). Connections left idle for a while (go-git opens one per
// HTTPS fetch, as fluxd's git does) only ever add, so a floor that rises
// is a leak and a peak is not.
func (w *world) checkLeaks() {
	n := len(w.samples)
	if n < 4 {
		w.t.Logf("only %d samples: the leak check needs 4 (run longer)", n)
		return
	}
	floor := func(ss []sample) sample {
		f := ss[0]
		for _, s := range ss[1:] {
			f.goroutines, f.fds, f.heap = min(f.goroutines, s.goroutines), min(f.fds, s.fds), min(f.heap, s.heap)
		}
		return f
	}
	first, last := floor(w.samples[1:1+(n-1)/2]), floor(w.samples[n-n/3:])
	if limit := first.goroutines + first.goroutines/5 + 20; last.goroutines > limit {
		w.t.Errorf("goroutines grew: at least %d in the last third, %d in the first half (limit %d)", last.goroutines, first.goroutines, limit)
	}
	if limit := first.fds + 16; last.fds > limit {
		w.t.Errorf("open files grew: at least %d in the last third, %d in the first half (limit %d)", last.fds, first.fds, limit)
	}
	if limit := first.heap + first.heap/2 + 16<<20; last.heap > limit {
		w.t.Errorf("heap grew: at least %d MiB in the last third, %d MiB in the first half", last.heap>>20, first.heap>>20)
	}
}

// checkSecrets reads every log the soak made (gitopsim's, at debug level,
// ARM's request log, and the control plane's) for any secret it handed
// out.
func (w *world) checkSecrets() {
	n := 0
	err := filepath.WalkDir(w.dir, func(path string, d fs.DirEntry, err error) error {
		// Logs, and ARM's request log (requests.jsonl), which holds the
		// bodies of requests with protected settings in them.
		if err != nil || d.IsDir() || !(strings.HasSuffix(path, ".log") || strings.HasSuffix(path, ".jsonl")) {
			return err
		}
		b, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		n++
		for _, s := range w.secrets {
			if strings.Contains(string(b), s) {
				w.t.Errorf("%s holds a secret (%d bytes of it)", path, len(s))
				break
			}
		}
		return nil
	})
	if err != nil {
		w.t.Error(err)
	}
	if n == 0 {
		w.t.Error("no log found to check for secrets")
	}
	w.stats.logsChecked = n
}

// figures is the soak's report, for the note and the README.
func (w *world) figures(wall time.Duration) string {
	var b strings.Builder
	fmt.Fprintf(&b, "soak: seed %d, %.1f h of virtual time in %v of wall time, %d clusters\n", w.cfg.seed, w.elapsed().Hours(), wall.Round(time.Second), len(w.clusters))
	b.WriteString("operations (refused by an injected 503):")
	for _, a := range actions {
		if n := w.stats.ops[a.name]; n > 0 {
			fmt.Fprintf(&b, " %s %d", a.name, n)
			if r := w.stats.refused[a.name]; r > 0 {
				fmt.Fprintf(&b, " (%d)", r)
			}
			b.WriteString(";")
		}
	}
	b.WriteString("\nfaults:")
	for _, k := range []faultKind{faultLink, faultGitDown, faultGitSlow, faultARM} {
		fmt.Fprintf(&b, " %s %d;", k, w.stats.faults[k])
	}
	fmt.Fprintf(&b, "\nrestarts survived: gitopsim %d (%d with a fresh work dir), kube-apiserver %d\n", w.stats.restarts, w.stats.freshWorkdirs, w.stats.apiRestarts)
	fmt.Fprintf(&b, "invariants checked at %d calm points; slowest convergence %v; %d configurations live at the end, %d deleted; %d policy assignments; %d secrets looked for in %d logs\n",
		w.stats.calms, w.stats.slowestConverge, len(w.live), len(w.gone), len(w.assignments), len(w.secrets), w.stats.logsChecked)
	b.WriteString("resources at calm points (virtual time, goroutines, open files, heap MiB, live configurations):")
	for _, s := range w.samples {
		fmt.Fprintf(&b, " [%v %d %d %d %d]", s.at, s.goroutines, s.fds, s.heap>>20, s.live)
	}
	return b.String()
}
