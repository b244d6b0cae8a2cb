package bench

import (
	"context"
	"encoding/base64"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gitopsim/gitopsim/internal/syncbuf"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore/policy"

	"github.com/gitopsim/gitopsim/sim"
	"github.com/gitopsim/gitopsim/sim/azsdk"
)

// BenchmarkLoad holds one `gitopsim up`, built with -race and with a state
// dir, under concurrent clients for a bounded time: 50 workers cloning a
// repo with the git CLI over HTTPS, 16 ARM clients at full speed (GET and
// PUT of configurations), and the 20 agents of --clusters 20 polling their
// configurations and git on the fast profile. Any failed request, any
// ERROR in gitopsim's log and any data race fails it.
//
// Reported: clones, clone-p50-s and clone-p99-s, arm-req/s, arm-p50-ms and
// arm-p99-ms, and errors (always 0 when it passes). The phase lasts
// $GITOPSIM_BENCH_LOAD_SECONDS (default 20).
func BenchmarkLoad(b *testing.B) {
	seconds := 20
	if s := os.Getenv("GITOPSIM_BENCH_LOAD_SECONDS"); s != "" {
		var err error
		if seconds, err = strconv.Atoi(s); err != nil || seconds < 1 {
			b.Fatalf("GITOPSIM_BENCH_LOAD_SECONDS=%q: want a positive number", s)
		}
	}
	bin := filepath.Join(b.TempDir(), "gitopsim")
	if out, err := exec.Command("go", "build", "-race", "-o", bin, "../../cmd/gitopsim").CombinedOutput(); err != nil {
		b.Fatalf("build gitopsim -race: %v\n%s", err, out)
	}
	for range b.N {
		loadOnce(b, bin, time.Duration(seconds)*time.Second)
	}
}

func loadOnce(b *testing.B, bin string, d time.Duration) {
	workdir, state := b.TempDir(), b.TempDir()
	var logs syncbuf.Buffer
	cmd, _ := startUp(b, bin, &logs, "--workdir", workdir, "--state-dir", state, "--no-ui", "--clusters", "20", "--profile", "fast")
	defer func() {
		_ = cmd.Process.Signal(os.Interrupt)
		_ = cmd.Wait()
	}()
	e, err := sim.ReadEndpoints(filepath.Join(workdir, sim.EndpointsFile))
	if err != nil {
		b.Fatal(err)
	}
	az, err := azsdk.New(e.ARM)
	if err != nil {
		b.Fatal(err)
	}
	// Clones land in memory where it can: the harness's own disk writes
	// would otherwise slow gitopsim's synced state writes, and that is
	// not what is measured.
	home := b.TempDir()
	if shm, err := os.MkdirTemp("/dev/shm", "gitopsim-load-"); err == nil {
		home = shm
		b.Cleanup(func() { _ = os.RemoveAll(shm) })
	}
	git := gitRunner(home, e)
	src := filepath.Join(home, "src")
	if err := os.MkdirAll(src, 0o755); err != nil {
		b.Fatal(err)
	}
	for i := range 200 {
		manifest := fmt.Sprintf("apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: load-%d\n  namespace: load\ndata:\n  n: %q\n", i, strconv.Itoa(i))
		if err := os.WriteFile(filepath.Join(src, fmt.Sprintf("cm-%03d.yaml", i)), []byte(manifest), 0o644); err != nil {
			b.Fatal(err)
		}
	}
	for _, args := range [][]string{{"init", "-q", "-b", "main"}, {"add", "."}, {"commit", "-q", "-m", "load"}, {"push", "-q", e.Git.SSHURL + "/load/app.git", "main"}} {
		if out, err := git(context.Background(), src, args...); err != nil {
			b.Fatalf("git %v: %v\n%s", args, err, out)
		}
	}
	// Every agent follows the repo, so all 20 poll it.
	ctx := context.Background()
	tok, err := az.Credential.GetToken(ctx, policy.TokenRequestOptions{Scopes: []string{azsdk.Audience + "/.default"}})
	if err != nil {
		b.Fatal(err)
	}
	put := func(c *http.Client, url, body string) (int, error) {
		req, _ := http.NewRequest(http.MethodPut, url, strings.NewReader(body))
		req.Header.Set("Authorization", "Bearer "+tok.Token)
		req.Header.Set("Content-Type", "application/json")
		resp, err := c.Do(req)
		if err != nil {
			return 0, err
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		return resp.StatusCode, nil
	}
	cfgBody := fmt.Sprintf(`{"properties":{"repositoryUrl":%q,"operatorNamespace":"load","operatorInstanceName":"load","operatorScope":"namespace","operatorType":"Flux","operatorParams":"--git-branch=main","configurationProtectedSettings":{"httpsUser":%q,"httpsKey":%q}}}`,
		e.Git.HTTPSURL+"/load/app.git", b64(e.Git.HTTPSUser), b64(e.Git.HTTPSToken))
	for _, c := range e.ConnectedClusters {
		url := e.ARM.URL + c.ID + "/providers/Microsoft.KubernetesConfiguration/sourceControlConfigurations/load?api-version=2023-05-01"
		if s, err := put(az.HTTPClient, url, cfgBody); err != nil || s >= 300 {
			b.Fatalf("configuration on %s: %d %v", c.Name, s, err)
		}
	}
	if _, err := az.Onboard(ctx, "load", "arm-load", "eastus"); err != nil {
		b.Fatal(err)
	}
	armBase := e.ARM.URL + "/subscriptions/" + az.SubscriptionID + "/resourceGroups/load/providers/Microsoft.Kubernetes/connectedClusters/arm-load/providers/Microsoft.KubernetesConfiguration/sourceControlConfigurations/"
	plain := `{"properties":{"repositoryUrl":"https://127.0.0.1/team/app.git","operatorNamespace":"team-a","operatorInstanceName":"team-a","operatorScope":"namespace","operatorType":"Flux"}}`

	b.ResetTimer()
	var (
		mu       sync.Mutex
		cloneLat []float64
		armLat   []float64
		failures []string
		errCount atomic.Int64
	)
	fail := func(f string, a ...any) {
		errCount.Add(1)
		mu.Lock()
		if len(failures) < 10 {
			failures = append(failures, fmt.Sprintf(f, a...))
		}
		mu.Unlock()
	}
	runCtx, cancel := context.WithTimeout(ctx, d)
	defer cancel()
	var wg sync.WaitGroup
	for w := range envInt(b, "GITOPSIM_BENCH_LOAD_CLONERS", 50) {
		wg.Go(func() {
			for n := 0; runCtx.Err() == nil; n++ {
				dst := filepath.Join(home, fmt.Sprintf("clone-%d-%d", w, n))
				t0 := time.Now()
				// The clone itself is not cut short at the end of the
				// phase: a killed git is not a server error.
				out, err := git(context.Background(), home, "clone", "-q", e.Git.HTTPSURL+"/load/app.git", dst)
				if err != nil {
					fail("clone: %v: %s", err, out)
				} else {
					mu.Lock()
					cloneLat = append(cloneLat, time.Since(t0).Seconds())
					mu.Unlock()
				}
				_ = os.RemoveAll(dst)
			}
		})
	}
	for w := range envInt(b, "GITOPSIM_BENCH_LOAD_ARM", concurrency) {
		wg.Go(func() {
			for n := 0; runCtx.Err() == nil; n++ {
				// A PUT, then a GET of what it wrote.
				url := fmt.Sprintf("%scfg-%d-%d?api-version=2023-05-01", armBase, w, (n/2)%20)
				t0 := time.Now()
				var s int
				var err error
				if n%2 == 0 {
					s, err = put(az.HTTPClient, url, plain)
				} else {
					var resp *http.Response
					req, _ := http.NewRequest(http.MethodGet, url, nil)
					req.Header.Set("Authorization", "Bearer "+tok.Token)
					if resp, err = az.HTTPClient.Do(req); err == nil {
						_, _ = io.Copy(io.Discard, resp.Body)
						resp.Body.Close()
						s = resp.StatusCode
					}
				}
				if err != nil || s >= 300 {
					fail("ARM: %d %v", s, err)
					continue
				}
				mu.Lock()
				armLat = append(armLat, float64(time.Since(t0).Microseconds())/1000)
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	b.StopTimer()

	// The agents polled all along; once the load is over each one gets
	// its configuration Installed (within two minutes).
	converged := time.Now()
	for _, c := range e.ConnectedClusters {
		url := e.ARM.URL + c.ID + "/providers/Microsoft.KubernetesConfiguration/sourceControlConfigurations/load?api-version=2023-05-01"
		var body []byte
		for deadline := time.Now().Add(2 * time.Minute); ; {
			req, _ := http.NewRequest(http.MethodGet, url, nil)
			req.Header.Set("Authorization", "Bearer "+tok.Token)
			resp, err := az.HTTPClient.Do(req)
			if err == nil {
				body, _ = io.ReadAll(resp.Body)
				resp.Body.Close()
			}
			if err == nil && strings.Contains(string(body), `"complianceState":"Installed"`) {
				break
			}
			if time.Now().After(deadline) {
				fail("configuration on %s 2 minutes after the load: %v %s", c.Name, err, body)
				break
			}
			<-time.After(250 * time.Millisecond)
		}
	}
	b.ReportMetric(time.Since(converged).Seconds(), "converge-after-s")
	for _, line := range strings.Split(logs.String(), "\n") {
		if strings.Contains(line, "level=ERROR") || strings.Contains(line, "DATA RACE") {
			fail("gitopsim: %s", line)
		}
	}
	b.ReportMetric(0, "ns/op")
	b.ReportMetric(float64(len(cloneLat)), "clones")
	if len(cloneLat) > 0 {
		b.ReportMetric(pct(cloneLat, 50), "clone-p50-s")
		b.ReportMetric(pct(cloneLat, 99), "clone-p99-s")
	}
	b.ReportMetric(float64(len(armLat))/d.Seconds(), "arm-req/s")
	if len(armLat) > 0 {
		b.ReportMetric(pct(armLat, 50), "arm-p50-ms")
		b.ReportMetric(pct(armLat, 99), "arm-p99-ms")
	}
	b.ReportMetric(float64(errCount.Load()), "errors")
	if n := errCount.Load(); n > 0 {
		b.Fatalf("%d errors under load, the first ones:\n%s", n, strings.Join(failures, "\n"))
	}
}

func b64(s string) string { return base64.StdEncoding.EncodeToString([]byte(s)) }

// gitRunner runs the git CLI with the endpoints' admin credentials.
func gitRunner(home string, e *sim.Endpoints) func(ctx context.Context, dir string, args ...string) (string, error) {
	askpass := filepath.Join(home, "askpass")
	_ = os.WriteFile(askpass, []byte(fmt.Sprintf("#!/bin/sh\ncase \"$1\" in Username*) echo %q;; *) echo %q;; esac\n", e.Git.HTTPSUser, e.Git.HTTPSToken)), 0o700)
	return func(ctx context.Context, dir string, args ...string) (string, error) {
		cmd := exec.CommandContext(ctx, "git", args...)
		cmd.Dir = dir
		cmd.Env = []string{"PATH=" + os.Getenv("PATH"), "HOME=" + home, "GIT_CONFIG_GLOBAL=/dev/null", "GIT_CONFIG_NOSYSTEM=1",
			"GIT_TERMINAL_PROMPT=0", "GIT_ASKPASS=" + askpass, "GIT_SSL_CAINFO=" + e.Git.CAFile,
			"GIT_AUTHOR_NAME=u", "GIT_AUTHOR_EMAIL=u@example.com", "GIT_COMMITTER_NAME=u", "GIT_COMMITTER_EMAIL=u@example.com",
			fmt.Sprintf("GIT_SSH_COMMAND=ssh -F /dev/null -i %s -o IdentitiesOnly=yes -o BatchMode=yes -o UserKnownHostsFile=%s", e.Git.SSHPrivateKeyFile, e.Git.KnownHostsFile)}
		out, err := cmd.CombinedOutput()
		return string(out), err
	}
}

// envInt is a positive number from the environment, or def.
func envInt(b *testing.B, name string, def int) int {
	s := os.Getenv(name)
	if s == "" {
		return def
	}
	n, err := strconv.Atoi(s)
	if err != nil || n < 0 {
		b.Fatalf("%s=%q: want a number", name, s)
	}
	return n
}
