package bench

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime/debug"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gitopsim/gitopsim/sim/gitserver"
	"github.com/gitopsim/gitopsim/sim/gitserver/gitgen"
)

// bigRepoOptions make a repo of about 50 MB of packed data in 5,000 files
// and 2,000 commits on main (plus branches and merges), a quarter of it
// random bytes or base64 that does not compress.
var bigRepoOptions = gitgen.Options{Seed: 42, Files: 5000, Commits: 2000, Branches: 3, Tags: 10, MaxBlob: 48 << 10, BigBlobs: 4, MaxDepth: 6}

var (
	bigRepoOnce sync.Once
	bigRepoDir  string
	bigRepoErr  error
)

// bigRepo generates the repo once per process and packs it as git gc
// would, so what is pushed is what a user's push sends.
func bigRepo(b *testing.B) string {
	bigRepoOnce.Do(func() {
		dir, err := os.MkdirTemp("", "gitopsim-bench-bigrepo-")
		if err != nil {
			bigRepoErr = err
			return
		}
		bigRepoDir = filepath.Join(dir, "big.git")
		if _, bigRepoErr = gitgen.Generate(context.Background(), bigRepoDir, bigRepoOptions); bigRepoErr != nil {
			return
		}
		cmd := exec.Command("git", "--git-dir", bigRepoDir, "repack", "-adq")
		cmd.Env = gitgen.Env()
		if out, err := cmd.CombinedOutput(); err != nil {
			bigRepoErr = fmt.Errorf("repack: %v: %s", err, out)
		}
	})
	if bigRepoErr != nil {
		b.Fatal(bigRepoErr)
	}
	return bigRepoDir
}

// BenchmarkGitBigRepo serves a big repo (bigRepoOptions, pushed by the
// git CLI) from the native server, with and without its pack cache, and
// from the reference backend (git upload-pack and git http-backend behind
// the same SSH and HTTPS fronts), in one run. Per iteration and target:
// a full clone, and an incremental fetch of 10 new commits, one of them
// adding 5 MB of random data, into a clone made before them.
//
// Reported: server CPU ms per clone and per fetch (this process and its
// children, minus the git client's own), native/reference CPU ratios
// (goal: at most 1.0), wall seconds, and the server's peak resident memory
// while serving 10 concurrent clones (native: this process's peak growth;
// reference: the sum over its git processes, sampled).
func BenchmarkGitBigRepo(b *testing.B) {
	src := bigRepo(b)
	type server struct {
		name string
		srv  *gitserver.Server
	}
	servers := []server{
		{"native", benchEmptyGitServer(b, gitserver.Options{Backend: gitserver.Native})},
		{"nocache", benchEmptyGitServer(b, gitserver.Options{Backend: gitserver.Native, DisablePackCache: true})},
		{"reference", benchEmptyGitServer(b, gitserver.Options{Backend: gitserver.Reference})},
	}
	dir := b.TempDir()
	// Push the repo, keep a clone of it as it is now, then push the
	// commits an incremental fetch brings.
	work := filepath.Join(dir, "work")
	gitRun(b, servers[0].srv, dir, "clone", "-q", src, work)
	bases := map[string]string{}
	for _, s := range servers {
		url := s.srv.SSHURL() + "/big/repo.git"
		t0, c0 := time.Now(), rusage()
		gitRun(b, s.srv, src, "push", "-q", "--mirror", url)
		b.Logf("%s: push --mirror %.1fs, server CPU %.1fs", s.name, time.Since(t0).Seconds(), (rusage() - c0).Seconds())
		base := filepath.Join(dir, "base-"+s.name)
		gitRun(b, s.srv, dir, "clone", "-q", "--bare", url, base)
		bases[s.name] = base
	}
	growForFetch(b, servers[0].srv, work)
	for _, s := range servers {
		gitRun(b, s.srv, work, "push", "-q", s.srv.SSHURL()+"/big/repo.git", "main")
	}

	cpu := map[string]time.Duration{}
	wall := map[string]time.Duration{}
	b.ResetTimer()
	for i := range b.N {
		for _, s := range servers {
			for _, proto := range []string{"ssh", "https"} {
				url := s.srv.SSHURL() + "/big/repo.git"
				if proto == "https" {
					url = s.srv.HTTPSURL() + "/big/repo.git"
				}
				key := s.name + "-" + proto
				dst := filepath.Join(dir, fmt.Sprintf("clone-%s-%d", key, i))
				c, w := timedGit(b, s.srv, dir, "clone", "-q", "--bare", url, dst)
				cpu[key+"-clone"] += c
				wall[key+"-clone"] += w
				os.RemoveAll(dst)

				b.StopTimer()
				fetchDir := filepath.Join(dir, fmt.Sprintf("fetch-%s-%d", key, i))
				if out, err := exec.Command("cp", "-a", bases[s.name], fetchDir).CombinedOutput(); err != nil {
					b.Fatalf("cp: %v %s", err, out)
				}
				b.StartTimer()
				c, w = timedGit(b, s.srv, fetchDir, "fetch", "-q", url, "+refs/heads/*:refs/heads/*")
				cpu[key+"-fetch"] += c
				wall[key+"-fetch"] += w
				os.RemoveAll(fetchDir)
			}
		}
	}
	b.StopTimer()
	n := float64(b.N)
	b.ReportMetric(0, "ns/op")
	for _, s := range servers {
		for _, proto := range []string{"ssh", "https"} {
			for _, op := range []string{"clone", "fetch"} {
				key := s.name + "-" + proto + "-" + op
				b.ReportMetric(float64(cpu[key].Microseconds())/1000/n, key+"-cpu-ms")
				b.ReportMetric(wall[key].Seconds()/n, key+"-s")
			}
		}
	}
	for _, proto := range []string{"ssh", "https"} {
		for _, op := range []string{"clone", "fetch"} {
			ref := cpu["reference-"+proto+"-"+op]
			b.ReportMetric(float64(cpu["native-"+proto+"-"+op])/float64(ref), proto+"-"+op+"-native/reference")
			b.ReportMetric(float64(cpu["nocache-"+proto+"-"+op])/float64(ref), proto+"-"+op+"-nocache/reference")
		}
	}
	b.ReportMetric(peakServingClones(b, servers[0].srv, dir, false), "native-10clones-peak-MB")
	b.ReportMetric(peakServingClones(b, servers[1].srv, dir, false), "nocache-10clones-peak-MB")
	b.ReportMetric(peakServingClones(b, servers[2].srv, dir, true), "reference-10clones-peak-MB")
}

func benchEmptyGitServer(b *testing.B, opts gitserver.Options) *gitserver.Server {
	opts.Workdir = b.TempDir()
	srv, err := gitserver.New(opts)
	if err != nil {
		b.Fatal(err)
	}
	if err := srv.Start(context.Background()); err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { srv.Stop(context.Background()) })
	return srv
}

func gitRun(b *testing.B, srv *gitserver.Server, dir string, args ...string) {
	b.Helper()
	cmd := exec.Command("git", args...)
	cmd.Dir, cmd.Env = dir, append(benchGitEnv(srv, filepath.Dir(dir)),
		"GIT_AUTHOR_NAME=bench", "GIT_AUTHOR_EMAIL=bench@example.com", "GIT_COMMITTER_NAME=bench", "GIT_COMMITTER_EMAIL=bench@example.com")
	if out, err := cmd.CombinedOutput(); err != nil {
		b.Fatalf("git %s: %v\n%s", strings.Join(args, " "), err, out)
	}
}

// timedGit runs git and returns the server's CPU (everything this process
// and its children spent, minus the client's own) and the wall time.
func timedGit(b *testing.B, srv *gitserver.Server, dir string, args ...string) (time.Duration, time.Duration) {
	b.Helper()
	before, t0 := rusage(), time.Now()
	cmd := exec.Command("git", args...)
	cmd.Dir, cmd.Env = dir, benchGitEnv(srv, filepath.Dir(dir))
	if out, err := cmd.CombinedOutput(); err != nil {
		b.Fatalf("git %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	wall := time.Since(t0)
	client := cmd.ProcessState.UserTime() + cmd.ProcessState.SystemTime()
	return rusage() - before - client, wall
}

// growForFetch commits 10 changes in work: 9 small edits and a 5 MB file
// of random bytes.
func growForFetch(b *testing.B, srv *gitserver.Server, work string) {
	for i := range 10 {
		name := filepath.Join(work, fmt.Sprintf("fetch-%d.txt", i))
		data := []byte(strings.Repeat(fmt.Sprintf("line %d\n", i), 100))
		if i == 9 {
			name = filepath.Join(work, "fetch-big.bin")
			data = make([]byte, 5<<20)
			f, _ := os.Open("/dev/urandom")
			f.Read(data)
			f.Close()
		}
		if err := os.WriteFile(name, data, 0o644); err != nil {
			b.Fatal(err)
		}
		gitRun(b, srv, work, "add", ".")
		gitRun(b, srv, work, "commit", "-q", "-m", "for the fetch "+strconv.Itoa(i))
	}
}

// peakServingClones runs 10 clones at once and returns the server's peak
// resident memory above what it held before, in MB.
func peakServingClones(b *testing.B, srv *gitserver.Server, dir string, children bool) float64 {
	b.Helper()
	// Give back what earlier phases freed, so that the clones cannot
	// hide in it, then measure from there.
	debug.FreeOSMemory()
	base := rssKB(os.Getpid())
	// Reset this process's peak (VmHWM) so that it measures this run.
	_ = os.WriteFile("/proc/self/clear_refs", []byte("5"), 0)
	var mu sync.Mutex
	peakChildren := 0
	stop := make(chan struct{})
	var sampler sync.WaitGroup
	if children {
		sampler.Add(1)
		go func() {
			defer sampler.Done()
			for {
				select {
				case <-stop:
					return
				case <-time.After(20 * time.Millisecond):
				}
				sum := serverGitRSSKB()
				mu.Lock()
				peakChildren = max(peakChildren, sum)
				mu.Unlock()
			}
		}()
	}
	var wg sync.WaitGroup
	for i := range 10 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			dst := filepath.Join(dir, fmt.Sprintf("concurrent-%d-%d", i, time.Now().UnixNano()))
			gitRun(b, srv, dir, "clone", "-q", "--bare", srv.SSHURL()+"/big/repo.git", dst)
			os.RemoveAll(dst)
		}()
	}
	wg.Wait()
	close(stop)
	sampler.Wait()
	if children {
		return float64(peakChildren) / 1024
	}
	return float64(statusKB(os.Getpid(), "VmHWM:")-base) / 1024
}

func rssKB(pid int) int { return statusKB(pid, "VmRSS:") }

func statusKB(pid int, field string) int {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0
	}
	for _, l := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(l, field); ok {
			f := strings.Fields(v)
			if len(f) > 0 {
				n, _ := strconv.Atoi(f[0])
				return n
			}
		}
	}
	return 0
}

// serverGitRSSKB sums the resident memory of the reference backend's git
// processes (upload-pack, pack-objects, http-backend) under this process.
func serverGitRSSKB() int {
	entries, _ := os.ReadDir("/proc")
	sum := 0
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		cmdline, err := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
		if err != nil {
			continue
		}
		args := strings.Split(string(cmdline), "\x00")
		if len(args) < 2 || filepath.Base(args[0]) != "git" {
			continue
		}
		switch args[1] {
		case "upload-pack", "pack-objects", "http-backend":
			sum += rssKB(pid)
		}
	}
	return sum
}
