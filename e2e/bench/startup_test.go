// Package bench measures gitopsim against baselines run on the same
// machine in the same run, so figures are ratios rather than absolute
// numbers that depend on the machine. Run with `make bench`.
package bench

import (
	"bufio"
	"cmp"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/go-logr/logr"
	"sigs.k8s.io/controller-runtime/pkg/envtest"
	ctrllog "sigs.k8s.io/controller-runtime/pkg/log"

	"github.com/gitopsim/gitopsim/sim/cluster"
)

// envtest logs through controller-runtime's global logger, which
// otherwise prints a warning in the middle of benchmark output.
func init() { ctrllog.SetLogger(logr.Discard()) }

// BenchmarkStartup measures `gitopsim up` from exec to its "is up" line
// (the endpoints file is written just before) next to a bare envtest
// Start() in the same iteration, and the resident memory of every process
// of each stack once it is ready.
//
// Reported: up-s and envtest-s (seconds to ready), up/envtest (the ratio;
// the goal is at most 1.3), and <process>-MB resident set sizes.
func BenchmarkStartup(b *testing.B) {
	assets, err := cluster.FindAssets("")
	if err != nil {
		b.Fatal(err)
	}
	bin := filepath.Join(b.TempDir(), "gitopsim")
	if out, err := exec.Command("go", "build", "-o", bin, "../../cmd/gitopsim").CombinedOutput(); err != nil {
		b.Fatalf("build gitopsim: %v\n%s", err, out)
	}
	var upTotal, envTotal time.Duration
	rss := map[string]float64{}
	b.ResetTimer()
	for range b.N {
		d, mem := bareEnvtest(b, assets.Dir)
		envTotal += d
		addRSS(rss, "envtest-", mem)

		d, mem = gitopsimUp(b, bin)
		upTotal += d
		addRSS(rss, "up-", mem)
	}
	b.StopTimer()
	n := float64(b.N)
	b.ReportMetric(0, "ns/op") // the sum of two stacks' start-ups means nothing
	b.ReportMetric(envTotal.Seconds()/n, "envtest-s")
	b.ReportMetric(upTotal.Seconds()/n, "up-s")
	b.ReportMetric(upTotal.Seconds()/envTotal.Seconds(), "up/envtest")
	for name, total := range rss {
		b.ReportMetric(total/n, name+"-MB")
	}
}

func bareEnvtest(b *testing.B, assetsDir string) (time.Duration, map[string]float64) {
	b.Helper()
	env := &envtest.Environment{BinaryAssetsDirectory: assetsDir}
	t0 := time.Now()
	if _, err := env.Start(); err != nil {
		b.Fatal(err)
	}
	d := time.Since(t0)
	mem := treeRSS(os.Getpid(), false)
	if err := env.Stop(); err != nil {
		b.Fatal(err)
	}
	return d, mem
}

func gitopsimUp(b *testing.B, bin string) (time.Duration, map[string]float64) {
	b.Helper()
	up, d := startUp(b, bin, nil, "--workdir", b.TempDir(), "-q")
	mem := treeRSS(up.Process.Pid, true)
	stopUp(b, up)
	return d, mem
}

// startUp starts gitopsim up with args, its log going to stderr (nil:
// this process's), and returns it once it prints "is up", with the time
// that took.
func startUp(b *testing.B, bin string, stderr io.Writer, args ...string) (*exec.Cmd, time.Duration) {
	b.Helper()
	cmd := exec.Command(bin, append([]string{"up"}, args...)...)
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		b.Fatal(err)
	}
	cmd.Stderr = cmp.Or[io.Writer](stderr, os.Stderr)
	t0 := time.Now()
	if err := cmd.Start(); err != nil {
		b.Fatal(err)
	}
	sc := bufio.NewScanner(stdout)
	ready := false
	for sc.Scan() {
		if strings.HasPrefix(sc.Text(), "gitopsim is up") {
			ready = true
			break
		}
	}
	d := time.Since(t0)
	if !ready {
		_ = cmd.Wait()
		log := ""
		if s, ok := stderr.(fmt.Stringer); ok {
			log = "\n" + s.String()
		}
		b.Fatalf("gitopsim up %v ended without becoming ready%s", args, log)
	}
	go func() { _, _ = io.Copy(io.Discard, stdout) }()
	return cmd, d
}

// stopUp stops a gitopsim up with SIGINT and expects a clean exit.
func stopUp(b *testing.B, cmd *exec.Cmd) {
	b.Helper()
	_ = cmd.Process.Signal(syscall.SIGINT)
	if err := cmd.Wait(); err != nil {
		b.Fatalf("gitopsim up after SIGINT: %v", err)
	}
}

func addRSS(into map[string]float64, prefix string, mem map[string]float64) {
	for k, v := range mem {
		into[prefix+k] += v
	}
}

// treeRSS returns the resident memory in MB of pid's children (and of pid
// itself when self is set), keyed by command name.
func treeRSS(pid int, self bool) map[string]float64 {
	out := map[string]float64{}
	if self {
		out["gitopsim"] = rssMB(pid)
	}
	entries, _ := os.ReadDir("/proc")
	for _, e := range entries {
		child, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		stat, err := os.ReadFile(filepath.Join("/proc", e.Name(), "stat"))
		if err != nil {
			continue
		}
		s := string(stat)
		open, closing := strings.IndexByte(s, '('), strings.LastIndexByte(s, ')')
		if open < 0 || closing < open {
			continue
		}
		fields := strings.Fields(s[closing+1:])
		if len(fields) < 2 || fields[1] != strconv.Itoa(pid) {
			continue
		}
		out[s[open+1:closing]] += rssMB(child)
	}
	return out
}

func rssMB(pid int) float64 {
	b, err := os.ReadFile(filepath.Join("/proc", strconv.Itoa(pid), "status"))
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			kb, _ := strconv.ParseFloat(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 64)
			return kb / 1024
		}
	}
	return 0
}
