package arm_test

import (
	"bytes"
	"context"
	"encoding/base64"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore/to"

	"github.com/gitopsim/gitopsim/sim/arm"
	"github.com/gitopsim/gitopsim/sim/internal/fulldisk"
)

func TestStateDirSurvivesRestart(t *testing.T) {
	stateDir := filepath.Join(t.TempDir(), "state")
	f := start(t, arm.Options{StateDir: stateDir, TokenLifetime: 1000 * time.Hour})
	ctx := t.Context()
	o := f.onboard("rg1", "arc1")
	token := "ghp-restart-" + strings.Repeat("z", 12)
	c := config("https://127.0.0.1/team/app.git")
	c.Properties.ConfigurationProtectedSettings = map[string]*string{
		"httpsUser": to.Ptr(base64.StdEncoding.EncodeToString([]byte("restart-user"))),
		"httpsKey":  to.Ptr(base64.StdEncoding.EncodeToString([]byte(token))),
	}
	if _, _, err := f.putConfig("rg1", "arc1", "team-a", c); err != nil {
		t.Fatal(err)
	}
	f.clk.Advance(time.Hour)
	if err := f.srv.Stop(context.Background()); err != nil {
		t.Fatal(err)
	}

	// The state on disk holds no secret, in plain or base64 form.
	for _, needle := range []string{token, base64.StdEncoding.EncodeToString([]byte(token)), "restart-user", "team-a", "arc1"} {
		filepath.WalkDir(stateDir, func(path string, d fs.DirEntry, err error) error {
			if err == nil && !d.IsDir() {
				if b, _ := os.ReadFile(path); bytes.Contains(b, []byte(needle)) {
					t.Errorf("%q readable in %s", needle, path)
				}
			}
			return nil
		})
	}

	// A new server on the same work dir and state dir has it all, on a
	// clock that went on.
	srv2, err := arm.New(arm.Options{Workdir: f.workdir, StateDir: stateDir, Clock: f.clk, TokenLifetime: 1000 * time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	if err := srv2.Start(ctx); err != nil {
		t.Fatal(err)
	}
	defer srv2.Stop(context.Background())
	f.srv = srv2
	f2 := start2(t, f)
	got, err := f2.configs.Get(ctx, "rg1", "Microsoft.Kubernetes", "connectedClusters", "arc1", "team-a", nil)
	if err != nil {
		t.Fatalf("configuration lost in the restart: %v", err)
	}
	if *got.Properties.RepositoryURL != "https://127.0.0.1/team/app.git" {
		t.Errorf("restored %v", *got.Properties.RepositoryURL)
	}
	desired, err := f2.agent(o).Configurations(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(desired) != 1 || desired[0].ProtectedSettings["httpsKey"] != base64.StdEncoding.EncodeToString([]byte(token)) {
		t.Errorf("secrets after restart: %+v", desired)
	}
	// The 48 hours still count from the original write.
	f.clk.Advance(47 * time.Hour)
	if d, _ := f2.agent(o).Configurations(ctx); len(d) != 1 || len(d[0].ProtectedSettings) != 0 {
		t.Errorf("48h after the write, across a restart: %+v", d)
	}

	// The key is kept with the state: a fresh work dir reads it.
	if _, err := arm.New(arm.Options{Workdir: t.TempDir(), StateDir: stateDir, Clock: f.clk}); err != nil {
		t.Errorf("a fresh work dir: %v", err)
	}
	// State written when the key lived in the work dir (before state
	// format 1) is read, and its key moved beside it.
	key, err := os.ReadFile(filepath.Join(stateDir, "state.key"))
	if err != nil {
		t.Fatal(err)
	}
	legacy := filepath.Join(f.workdir, "arm", "state.key")
	if err := os.MkdirAll(filepath.Dir(legacy), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(filepath.Join(stateDir, "state.key"), legacy); err != nil {
		t.Fatal(err)
	}
	if _, err := arm.New(arm.Options{Workdir: f.workdir, StateDir: stateDir, Clock: f.clk}); err != nil {
		t.Errorf("the older layout: %v", err)
	}
	if b, _ := os.ReadFile(filepath.Join(stateDir, "state.key")); !bytes.Equal(b, key) {
		t.Error("the work dir's key was not moved beside the state")
	}
	// A wrong key refuses to start rather than losing state, naming the
	// file and the key, and changes nothing.
	keyFile := filepath.Join(stateDir, "state.key")
	if err := os.WriteFile(keyFile, bytes.Repeat([]byte{7}, 32), 0o600); err != nil {
		t.Fatal(err)
	}
	before, _ := os.ReadFile(filepath.Join(stateDir, "arm-state.bin"))
	_, err = arm.New(arm.Options{Workdir: f.workdir, StateDir: stateDir, Clock: f.clk})
	if err == nil || !strings.Contains(err.Error(), "cannot decrypt") || !strings.Contains(err.Error(), keyFile) || !strings.Contains(err.Error(), "arm-state.bin") {
		t.Errorf("wrong key: %v", err)
	}
	if after, _ := os.ReadFile(filepath.Join(stateDir, "arm-state.bin")); !bytes.Equal(before, after) {
		t.Error("the state file was changed by a refused start")
	}
	// Without any key, state is refused, not replaced by a new key's.
	if err := os.Remove(keyFile); err != nil {
		t.Fatal(err)
	}
	if _, err := arm.New(arm.Options{Workdir: t.TempDir(), StateDir: stateDir, Clock: f.clk}); err == nil || !strings.Contains(err.Error(), "restore the key") {
		t.Errorf("no key: %v", err)
	}
}

// start2 rebuilds the fixture's clients for a restarted server.
func start2(t *testing.T, f *fixture) *fixture {
	t.Helper()
	f2 := *f
	var err error
	if f2.az, err = azsdkNew(&f2); err != nil {
		t.Fatal(err)
	}
	return &f2
}

// TestDiskFull puts the state dir on a small tmpfs and fills it: a change
// that cannot be saved is answered with an error envelope and undone, the
// server keeps serving, what was saved stays, and once there is room again
// changes are saved. Needs root (mount); skips, saying so, otherwise.
func TestDiskFull(t *testing.T) {
	stateDir := fulldisk.Mount(t, "256k")
	f := start(t, arm.Options{StateDir: stateDir, TokenLifetime: 1000 * time.Hour})
	f.onboard("rg1", "arc1")
	if _, _, err := f.putConfig("rg1", "arc1", "saved", config("https://127.0.0.1/team/app.git")); err != nil {
		t.Fatal(err)
	}
	free := fulldisk.Fill(t, stateDir)
	before, err := os.ReadFile(filepath.Join(stateDir, "arm-state.bin"))
	if err != nil {
		t.Fatal(err)
	}

	_, _, err = f.putConfig("rg1", "arc1", "unsaved", config("https://127.0.0.1/team/other.git"))
	if err == nil || !strings.Contains(err.Error(), "InternalServerError") || !strings.Contains(err.Error(), "could not be saved, so it was not made") {
		t.Errorf("PUT on a full disk: %v", err)
	}
	if _, err := f.configs.Get(t.Context(), "rg1", "Microsoft.Kubernetes", "connectedClusters", "arc1", "unsaved", nil); err == nil {
		t.Error("the change that could not be saved is visible")
	}
	if _, err := f.configs.Get(t.Context(), "rg1", "Microsoft.Kubernetes", "connectedClusters", "arc1", "saved", nil); err != nil {
		t.Errorf("what was saved before: %v", err)
	}
	if _, err := f.configs.BeginDelete(t.Context(), "rg1", "Microsoft.Kubernetes", "connectedClusters", "arc1", "saved", nil); err == nil {
		t.Error("a DELETE that could not be saved succeeded")
	}
	if _, err := f.configs.Get(t.Context(), "rg1", "Microsoft.Kubernetes", "connectedClusters", "arc1", "saved", nil); err != nil {
		t.Errorf("a DELETE that could not be saved took effect: %v", err)
	}
	if after, _ := os.ReadFile(filepath.Join(stateDir, "arm-state.bin")); !bytes.Equal(before, after) {
		t.Error("the state file changed while the disk was full")
	}
	if left, _ := filepath.Glob(filepath.Join(stateDir, ".arm-state.bin.tmp*")); len(left) > 0 {
		t.Errorf("temporary files left on the full disk: %v", left)
	}

	// A failed write is undone from the copy of what was written, not by
	// reading the disk back: with the file unreadable, the state served
	// and written next still holds what was saved before.
	if err := os.Rename(filepath.Join(stateDir, "arm-state.bin"), filepath.Join(stateDir, "moved")); err != nil {
		t.Fatal(err)
	}
	if _, _, err := f.putConfig("rg1", "arc1", "unsaved", config("https://127.0.0.1/team/other.git")); err == nil {
		t.Error("a PUT on a full disk succeeded")
	}
	if _, err := f.configs.Get(t.Context(), "rg1", "Microsoft.Kubernetes", "connectedClusters", "arc1", "saved", nil); err != nil {
		t.Errorf("after a failed write whose file could not be read back: %v", err)
	}

	free()
	if _, _, err := f.putConfig("rg1", "arc1", "unsaved", config("https://127.0.0.1/team/other.git")); err != nil {
		t.Errorf("PUT once there is room again: %v", err)
	}
	if err := f.srv.Stop(context.Background()); err != nil {
		t.Fatal(err)
	}
	srv2, err := arm.New(arm.Options{Workdir: f.workdir, StateDir: stateDir, Clock: f.clk, TokenLifetime: 1000 * time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	if err := srv2.Start(t.Context()); err != nil {
		t.Fatal(err)
	}
	defer srv2.Stop(context.Background())
	f.srv = srv2
	f2 := start2(t, f)
	for _, name := range []string{"saved", "unsaved"} {
		if _, err := f2.configs.Get(t.Context(), "rg1", "Microsoft.Kubernetes", "connectedClusters", "arc1", name, nil); err != nil {
			t.Errorf("%s after a restart: %v", name, err)
		}
	}
}

// TestAgentTrafficWritesOnlyChanges: an agent's repeated polls, repeated
// reports and heartbeats that move only the time do not rewrite the state
// file (each write has a fresh nonce, so the bytes tell); a change does,
// and a heartbeat's time is written at most a minute late.
func TestAgentTrafficWritesOnlyChanges(t *testing.T) {
	stateDir := t.TempDir()
	f := start(t, arm.Options{StateDir: stateDir, TokenLifetime: 1000 * time.Hour})
	o := f.onboard("rg1", "arc1")
	c := config("https://127.0.0.1/team/app.git")
	c.Properties.ConfigurationProtectedSettings = map[string]*string{
		"httpsUser": to.Ptr(base64.StdEncoding.EncodeToString([]byte("u"))),
		"httpsKey":  to.Ptr(base64.StdEncoding.EncodeToString([]byte("k"))),
	}
	if _, _, err := f.putConfig("rg1", "arc1", "team-a", c); err != nil {
		t.Fatal(err)
	}
	a := f.agent(o)
	ctx := t.Context()
	file := filepath.Join(stateDir, "arm-state.bin")
	state := func() []byte {
		b, err := os.ReadFile(file)
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	step := func(what string, wantWrite bool, do func() error) {
		t.Helper()
		before := state()
		if err := do(); err != nil {
			t.Fatalf("%s: %v", what, err)
		}
		if wrote := !bytes.Equal(before, state()); wrote != wantWrite {
			t.Errorf("%s: wrote the state %v, want %v", what, wrote, wantWrite)
		}
	}
	hb := arm.Heartbeat{AgentVersion: "1.0", KubernetesVersion: "v1.32.13", TotalNodeCount: 1, TotalCoreCount: 2}
	var desired []arm.DesiredConfiguration
	poll := func() (err error) { desired, err = a.Configurations(ctx); return err }
	report := func(state string) func() error {
		return func() error {
			return a.ReportCompliance(ctx, "team-a", arm.ComplianceReport{Generation: desired[0].Generation, ComplianceState: state, Message: "m"})
		}
	}
	step("first poll (hands out the protected settings)", true, poll)
	step("second poll", false, poll)
	step("first report", true, report("Installed"))
	step("the same report", false, report("Installed"))
	step("another state", true, report("Failed"))
	step("first heartbeat", true, func() error { _, err := a.Heartbeat(ctx, hb); return err })
	f.clk.Advance(30 * time.Second)
	step("a heartbeat 30s later", false, func() error { _, err := a.Heartbeat(ctx, hb); return err })
	hb.TotalNodeCount = 3
	step("a heartbeat with new figures", true, func() error { _, err := a.Heartbeat(ctx, hb); return err })
	f.clk.Advance(30 * time.Second)
	step("30s later", false, func() error { _, err := a.Heartbeat(ctx, hb); return err })
	f.clk.Advance(31 * time.Second)
	step("61s after the last write", true, func() error { _, err := a.Heartbeat(ctx, hb); return err })
}
