package cluster

import (
	"bytes"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
)

// Process is a running process found by Leftovers.
type Process struct {
	PID     int
	Command string
}

// Leftovers lists running processes that belong to a control plane started
// in workdir: anything whose command line mentions the workdir's cluster
// directory. After a clean Stop it is empty; after a crash (SIGKILL of
// gitopsim) it names the orphans, which the next Start terminates.
// It reads /proc and finds nothing on systems without one.
func Leftovers(workdir string) ([]Process, error) {
	abs, err := filepath.Abs(workdir)
	if err != nil {
		return nil, err
	}
	needle := []byte(clusterDir(abs) + string(filepath.Separator))
	entries, err := os.ReadDir("/proc")
	if err != nil {
		return nil, nil
	}
	self := os.Getpid()
	var out []Process
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil || pid == self {
			continue
		}
		cmdline, err := os.ReadFile(filepath.Join("/proc", e.Name(), "cmdline"))
		if err != nil || !bytes.Contains(cmdline, needle) || isZombie(pid) {
			continue
		}
		args := strings.Split(strings.TrimRight(string(cmdline), "\x00"), "\x00")
		out = append(out, Process{PID: pid, Command: filepath.Base(args[0])})
	}
	return out, nil
}

func isZombie(pid int) bool {
	stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return true // gone
	}
	// The state follows the parenthesised command name.
	i := bytes.LastIndexByte(stat, ')')
	return i < 0 || i+2 >= len(stat) || stat[i+2] == 'Z'
}

// killLeftovers terminates orphans of an earlier run in workdir and reports
// what it killed.
func killLeftovers(workdir string) []Process {
	procs, _ := Leftovers(workdir)
	for _, p := range procs {
		_ = syscall.Kill(p.PID, syscall.SIGKILL)
	}
	return procs
}

// clusterDir is where a backend keeps its files inside the work dir.
func clusterDir(workdir string) string { return filepath.Join(workdir, "cluster") }

// dyingWrapper writes a shell script at path that execs bin with env
// added and, through setpriv (util-linux), SIGKILL as its death signal,
// and returns the script's path. envtest starts etcd and the API server
// with gitopsim's own environment and no death signal, so a fleet killed
// outright would leave a hundred processes running; the
// controller-manager gets the same from exec.Cmd. Through the execs the
// process, its pid and arguments are bin's.
// shQuote quotes s for sh: nothing in single quotes is expanded ($,
// backticks, spaces in a workdir's path).
func shQuote(s string) string { return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'" }

func dyingWrapper(path, bin string, env []string, log *slog.Logger) (string, error) {
	launch := "exec"
	if sp, err := setpriv(); err == nil {
		launch = "exec " + shQuote(sp) + " --pdeathsig KILL --"
	} else {
		setprivMissing.Do(func() {
			log.Warn("setpriv (util-linux) not found: the fleet's etcd and API servers outlive gitopsim if gitopsim is killed; the next start in the same workdir kills them", "err", err)
		})
	}
	words := make([]string, 0, len(env)+3)
	for _, kv := range env {
		k, v, _ := strings.Cut(kv, "=")
		words = append(words, k+"="+shQuote(v))
	}
	words = append(words, launch, shQuote(bin), `"$@"`)
	script := "#!/bin/sh\n" + strings.Join(words, " ") + "\n"
	if err := os.WriteFile(path, []byte(script), 0o755); err != nil {
		return "", err
	}
	return path, nil
}

// setpriv is looked up once, not once per member of a fleet; its
// absence is said once.
var (
	setpriv        = sync.OnceValues(func() (string, error) { return exec.LookPath("setpriv") })
	setprivMissing sync.Once
)
