package bench

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/gitopsim/gitopsim/sim/gitserver"
)

// BenchmarkGitClone clones the same repo (200 files, 30 commits) with the
// real git CLI from our native server and from the reference backend (the
// same Go SSH and HTTPS fronts handing the request to git upload-pack and
// git http-backend), interleaved in one run. Reported per protocol: server
// CPU ms per clone (the test process's CPU plus its children's, minus the
// git client's own), clones/s, and native/reference CPU, with the pack
// cache (repeated clones, as a reconcile loop makes) and without it.
func BenchmarkGitClone(b *testing.B) {
	native := benchGitServer(b, gitserver.Options{Backend: gitserver.Native})
	cold := benchGitServer(b, gitserver.Options{Backend: gitserver.Native, DisablePackCache: true})
	ref := benchGitServer(b, gitserver.Options{Backend: gitserver.Reference})
	type target struct {
		name string
		srv  *gitserver.Server
		url  string
	}
	targets := []target{
		{"native-ssh", native, native.SSHURL() + "/team/app.git"},
		{"nocache-ssh", cold, cold.SSHURL() + "/team/app.git"},
		{"reference-ssh", ref, ref.SSHURL() + "/team/app.git"},
		{"native-https", native, native.HTTPSURL() + "/team/app.git"},
		{"nocache-https", cold, cold.HTTPSURL() + "/team/app.git"},
		{"reference-https", ref, ref.HTTPSURL() + "/team/app.git"},
	}
	cpu := map[string]time.Duration{}
	wall := map[string]time.Duration{}
	dir := b.TempDir()
	b.ResetTimer()
	for i := range b.N {
		for _, t := range targets {
			dst := filepath.Join(dir, fmt.Sprintf("%s-%d", t.name, i))
			before := rusage()
			t0 := time.Now()
			cmd := exec.Command("git", "clone", "-q", t.url, dst)
			cmd.Env = benchGitEnv(t.srv, dir)
			if out, err := cmd.CombinedOutput(); err != nil {
				b.Fatalf("%s: %v\n%s", t.name, err, out)
			}
			wall[t.name] += time.Since(t0)
			client := cmd.ProcessState.UserTime() + cmd.ProcessState.SystemTime()
			cpu[t.name] += rusage() - before - client
			os.RemoveAll(dst)
		}
	}
	b.StopTimer()
	n := float64(b.N)
	b.ReportMetric(0, "ns/op")
	for _, t := range targets {
		b.ReportMetric(float64(cpu[t.name].Microseconds())/1000/n, t.name+"-cpu-ms")
		b.ReportMetric(n/wall[t.name].Seconds(), t.name+"-clones/s")
	}
	b.ReportMetric(float64(cpu["native-ssh"])/float64(cpu["reference-ssh"]), "ssh-native/upload-pack")
	b.ReportMetric(float64(cpu["native-https"])/float64(cpu["reference-https"]), "https-native/http-backend")
	b.ReportMetric(float64(cpu["nocache-ssh"])/float64(cpu["reference-ssh"]), "ssh-nocache/upload-pack")
	b.ReportMetric(float64(cpu["nocache-https"])/float64(cpu["reference-https"]), "https-nocache/http-backend")
}

// rusage is this process's CPU time plus that of its reaped children.
func rusage() time.Duration {
	var self, kids syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &self)
	_ = syscall.Getrusage(syscall.RUSAGE_CHILDREN, &kids)
	tv := func(t syscall.Timeval) time.Duration { return time.Duration(t.Nano()) }
	return tv(self.Utime) + tv(self.Stime) + tv(kids.Utime) + tv(kids.Stime)
}

func benchGitServer(b *testing.B, opts gitserver.Options) *gitserver.Server {
	srv := benchEmptyGitServer(b, opts)
	files := map[string]*string{}
	for i := range 200 {
		s := fmt.Sprintf("file %d\n%s", i, fmt.Sprint(make([]int, i%50)))
		files[fmt.Sprintf("dir%d/file%d.txt", i%10, i)] = &s
	}
	if _, err := srv.Commit("team/app", "main", "initial", files); err != nil {
		b.Fatal(err)
	}
	for i := range 29 {
		s := fmt.Sprint("change ", i)
		if _, err := srv.Commit("team/app", "main", s, map[string]*string{fmt.Sprintf("dir%d/file%d.txt", i%10, i): &s}); err != nil {
			b.Fatal(err)
		}
	}
	return srv
}

func benchGitEnv(srv *gitserver.Server, home string) []string {
	ssh := fmt.Sprintf("ssh -F /dev/null -i %s -o IdentitiesOnly=yes -o BatchMode=yes -o StrictHostKeyChecking=yes -o UserKnownHostsFile=%s -o LogLevel=ERROR",
		srv.AdminKeyFile(), srv.KnownHostsFile())
	askpass := filepath.Join(home, fmt.Sprintf("askpass-%p", srv))
	_ = os.WriteFile(askpass, []byte(fmt.Sprintf("#!/bin/sh\ncase \"$1\" in Username*) echo %q;; *) echo %q;; esac\n", gitserver.AdminUser, srv.AdminToken())), 0o700)
	return []string{"PATH=" + os.Getenv("PATH"), "HOME=" + home, "GIT_CONFIG_GLOBAL=/dev/null", "GIT_CONFIG_NOSYSTEM=1", "GIT_TERMINAL_PROMPT=0",
		"GIT_SSH_COMMAND=" + ssh, "GIT_SSL_CAINFO=" + srv.CAFile(), "GIT_ASKPASS=" + askpass}
}
