package main

import (
	"context"
	"encoding/base64"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore/runtime"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/to"
	"github.com/Azure/azure-sdk-for-go/sdk/resourcemanager/hybridkubernetes/armhybridkubernetes"
	"github.com/Azure/azure-sdk-for-go/sdk/resourcemanager/kubernetesconfiguration/armkubernetesconfiguration/v2"
	"github.com/Azure/azure-sdk-for-go/sdk/resourcemanager/resources/armresources"

	"github.com/gitopsim/gitopsim/sim"
	"github.com/gitopsim/gitopsim/sim/arm/armtest"
	"github.com/gitopsim/gitopsim/sim/azsdk"
	"github.com/gitopsim/gitopsim/sim/cluster"
)

// TestUpSurvivesSIGKILL kills gitopsim up with SIGKILL at a random moment
// while configurations are being written through the Azure SDK (with
// protected settings) and repos pushed with git, restarts it on the same
// state dir with a fresh work dir, and checks that every write that was
// acknowledged before the kill is there, that the state reads back whole,
// and that the local cluster's agent syncs its configuration again. Three
// rounds; the seed is printed and GITOPSIM_CRASH_SEED repeats a run.
func TestUpSurvivesSIGKILL(t *testing.T) {
	seed := uint64(time.Now().UnixNano())
	if s := os.Getenv("GITOPSIM_CRASH_SEED"); s != "" {
		v, err := strconv.ParseUint(s, 10, 64)
		if err != nil {
			t.Fatalf("GITOPSIM_CRASH_SEED=%q: %v", s, err)
		}
		seed = v
	}
	t.Logf("seed %d (GITOPSIM_CRASH_SEED=%d repeats this run)", seed, seed)
	rng := rand.New(rand.NewPCG(seed, seed))
	base, state := t.TempDir(), t.TempDir()

	var acked ackLog
	for round := range 4 {
		wd := filepath.Join(base, fmt.Sprintf("round-%d", round))
		cmd := gitopsim(t, "up", "--workdir", wd, "--state-dir", state, "--no-ui", "--profile", "fast")
		path, exited, errb := startUp(t, cmd, wd)
		e, err := sim.ReadEndpoints(path)
		if err != nil {
			t.Fatal(err)
		}
		w := newCrashWriter(t, e)
		// Everything acknowledged before is there after the kill.
		for _, name := range acked.configs() {
			if _, err := w.configs.Get(t.Context(), "crash", "Microsoft.Kubernetes", "connectedClusters", "crash", name, nil); err != nil {
				t.Errorf("seed %d, round %d: configuration %s was acknowledged before a SIGKILL and is gone: %v", seed, round, name, err)
			}
		}
		for repo, commit := range acked.pushes() {
			if got := w.remoteHead(repo); got != commit {
				t.Errorf("seed %d, round %d: push of %s to %s was acknowledged before a SIGKILL; the server has %q", seed, round, commit, repo, got)
			}
		}
		if round == 0 {
			w.setUp()
			userFlow(t, e) // a configuration on the local cluster, synced
		} else {
			w.waitLocalSynced(seed, round)
		}
		if t.Failed() {
			_ = cmd.Process.Signal(syscall.SIGINT)
			<-exited
			return
		}
		if round == 3 {
			interruptUp(t, cmd, exited, errb, wd)
			break
		}

		// Writers in flight, then SIGKILL at a random moment.
		ctx, stop := context.WithCancel(t.Context())
		var wg sync.WaitGroup
		for i := range 3 {
			wg.Go(func() { w.putConfigs(ctx, fmt.Sprintf("r%d-w%d", round, i), &acked) })
		}
		wg.Go(func() { w.pushRepos(ctx, fmt.Sprintf("r%d", round), &acked) })
		delay := time.Duration(200+rng.IntN(1800)) * time.Millisecond
		select {
		case <-time.After(delay):
		case <-t.Context().Done():
		}
		if err := cmd.Process.Kill(); err != nil {
			t.Fatal(err)
		}
		<-exited
		stop()
		wg.Wait()
		// The control plane dies with gitopsim, even killed outright.
		var left []cluster.Process
		for deadline := time.Now().Add(10 * time.Second); ; {
			if left, err = cluster.Leftovers(wd); err != nil {
				t.Fatal(err)
			}
			if len(left) == 0 || time.Now().After(deadline) {
				break
			}
			<-time.After(50 * time.Millisecond)
		}
		for _, p := range left {
			t.Errorf("round %d: %s (pid %d) outlived the SIGKILL of gitopsim", round, p.Command, p.PID)
			_ = syscall.Kill(p.PID, syscall.SIGKILL)
		}
		t.Logf("round %d: killed after %v with %d configurations and %d pushes acknowledged so far", round, delay, len(acked.configs()), len(acked.pushes()))
	}
	if len(acked.configs()) == 0 {
		t.Errorf("seed %d: no write was acknowledged before any kill; the test proved nothing", seed)
	}
}

// ackLog is what the server acknowledged.
type ackLog struct {
	mu    sync.Mutex
	cfgs  []string
	heads map[string]string
}

func (a *ackLog) config(name string) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.cfgs = append(a.cfgs, name)
}

func (a *ackLog) push(repo, commit string) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.heads == nil {
		a.heads = map[string]string{}
	}
	a.heads[repo] = commit
}

func (a *ackLog) configs() []string {
	a.mu.Lock()
	defer a.mu.Unlock()
	return append([]string(nil), a.cfgs...)
}

func (a *ackLog) pushes() map[string]string {
	a.mu.Lock()
	defer a.mu.Unlock()
	out := map[string]string{}
	for k, v := range a.heads {
		out[k] = v
	}
	return out
}

type crashWriter struct {
	t       *testing.T
	e       *sim.Endpoints
	az      *azsdk.Clients
	configs *armkubernetesconfiguration.SourceControlConfigurationsClient
	home    string
}

func newCrashWriter(t *testing.T, e *sim.Endpoints) *crashWriter {
	t.Helper()
	az, err := azsdk.New(e.ARM)
	if err != nil {
		t.Fatal(err)
	}
	w := &crashWriter{t: t, e: e, az: az, configs: configsClient(t, e), home: t.TempDir()}
	return w
}

// setUp makes the resource group and connected cluster (no agent) the
// writers put configurations on.
func (w *crashWriter) setUp() {
	w.t.Helper()
	ccs, err := armhybridkubernetes.NewConnectedClusterClient(w.az.SubscriptionID, w.az.Credential, w.az.Options)
	if err != nil {
		w.t.Fatal(err)
	}
	groups, err := armresources.NewResourceGroupsClient(w.az.SubscriptionID, w.az.Credential, w.az.Options)
	if err != nil {
		w.t.Fatal(err)
	}
	if _, err := groups.CreateOrUpdate(w.t.Context(), "crash", armresources.ResourceGroup{Location: to.Ptr("eastus")}, nil); err != nil {
		w.t.Fatal(err)
	}
	poller, err := ccs.BeginCreate(w.t.Context(), "crash", "crash", armtest.ConnectedCluster(), nil)
	if err != nil {
		w.t.Fatal(err)
	}
	if _, err := poller.PollUntilDone(w.t.Context(), &runtime.PollUntilDoneOptions{Frequency: 10 * time.Millisecond}); err != nil {
		w.t.Fatal(err)
	}
}

// putConfigs writes configurations until ctx ends; each one the server
// answered with success is acknowledged.
func (w *crashWriter) putConfigs(ctx context.Context, prefix string, acked *ackLog) {
	b64 := func(s string) *string { return to.Ptr(base64.StdEncoding.EncodeToString([]byte(s))) }
	for n := 0; ctx.Err() == nil; n++ {
		name := fmt.Sprintf("%s-%d", prefix, n)
		body := armtest.Config("https://127.0.0.1/crash/app.git")
		body.Properties.ConfigurationProtectedSettings = map[string]*string{"httpsUser": b64("u"), "httpsKey": b64("secret-" + name)}
		if _, err := w.configs.CreateOrUpdate(ctx, "crash", "Microsoft.Kubernetes", "connectedClusters", "crash", name, body, nil); err == nil {
			acked.config(name)
		}
	}
}

// pushRepos pushes a new commit, alternately to a new repo and to the last
// one, until ctx ends; each push git reports done is acknowledged.
func (w *crashWriter) pushRepos(ctx context.Context, prefix string, acked *ackLog) {
	src := filepath.Join(w.home, "src-"+prefix)
	if err := os.MkdirAll(src, 0o755); err != nil {
		return
	}
	if _, err := w.git(ctx, src, "init", "-q", "-b", "main"); err != nil {
		return
	}
	repo := ""
	for n := 0; ctx.Err() == nil; n++ {
		if err := os.WriteFile(filepath.Join(src, "f.txt"), []byte(strconv.Itoa(n)+"\n"), 0o644); err != nil {
			return
		}
		if _, err := w.git(ctx, src, "add", "f.txt"); err != nil {
			return
		}
		if _, err := w.git(ctx, src, "commit", "-q", "-m", strconv.Itoa(n)); err != nil {
			return
		}
		head, err := w.git(ctx, src, "rev-parse", "HEAD")
		if err != nil {
			return
		}
		if n%2 == 0 {
			repo = fmt.Sprintf("crash/%s-%d", prefix, n)
		}
		if _, err := w.git(ctx, src, "push", "-q", w.e.Git.SSHURL+"/"+repo+".git", "HEAD:refs/heads/main"); err == nil {
			acked.push(repo, head)
		}
	}
}

// remoteHead is main of repo on the server as git ls-remote sees it.
func (w *crashWriter) remoteHead(repo string) string {
	out, err := w.git(w.t.Context(), w.home, "ls-remote", w.e.Git.SSHURL+"/"+repo+".git", "refs/heads/main")
	if err != nil {
		return "error: " + out
	}
	return strings.Fields(out + " ")[0]
}

func (w *crashWriter) git(ctx context.Context, dir string, args ...string) (string, error) {
	cmd := exec.CommandContext(ctx, "git", args...)
	cmd.Dir = dir
	cmd.Env = []string{"PATH=" + os.Getenv("PATH"), "HOME=" + w.home, "GIT_CONFIG_GLOBAL=/dev/null", "GIT_CONFIG_NOSYSTEM=1",
		"GIT_AUTHOR_NAME=u", "GIT_AUTHOR_EMAIL=u@example.com", "GIT_COMMITTER_NAME=u", "GIT_COMMITTER_EMAIL=u@example.com",
		fmt.Sprintf("GIT_SSH_COMMAND=ssh -F /dev/null -i %s -o IdentitiesOnly=yes -o BatchMode=yes -o UserKnownHostsFile=%s", w.e.Git.SSHPrivateKeyFile, w.e.Git.KnownHostsFile)}
	out, err := cmd.CombinedOutput()
	return strings.TrimSpace(string(out)), err
}

// waitLocalSynced waits until the local cluster's agent, on the restarted
// stack's new cluster, has synced the configuration userFlow made.
func (w *crashWriter) waitLocalSynced(seed uint64, round int) {
	w.t.Helper()
	cc := w.e.ConnectedClusters[0]
	deadline := time.Now().Add(time.Minute)
	last := ""
	for time.Now().Before(deadline) {
		got, err := w.configs.Get(w.t.Context(), cc.ResourceGroup, "Microsoft.Kubernetes", "connectedClusters", cc.Name, "demo", nil)
		if err == nil && got.Properties.ComplianceStatus != nil && got.Properties.ComplianceStatus.ComplianceState != nil {
			last = string(*got.Properties.ComplianceStatus.ComplianceState)
			if *got.Properties.ComplianceStatus.ComplianceState == armkubernetesconfiguration.ComplianceStateTypeInstalled {
				return
			}
		} else if err != nil {
			last = err.Error()
		}
		select {
		case <-time.After(100 * time.Millisecond):
		case <-w.t.Context().Done():
			return
		}
	}
	w.t.Errorf("seed %d, round %d: the local configuration did not converge to Installed after the restart: %s", seed, round, last)
}
