package gitserver

import (
	"os"
	"strings"
)

// gitEnv is the environment of git binaries run by the reference backend:
// no user or system configuration, so results do not depend on the machine.
func gitEnv() []string {
	var env []string
	for _, kv := range os.Environ() {
		if strings.HasPrefix(kv, "GIT_") || strings.HasPrefix(kv, "HOME=") {
			continue
		}
		env = append(env, kv)
	}
	return append(env, "GIT_CONFIG_NOSYSTEM=1", "GIT_CONFIG_GLOBAL=/dev/null", "HOME=/nonexistent")
}

// afterExec accounts for a git binary having changed a repo on disk: the
// pack cache is stale after a push.
func (s *Server) afterExec(repo *Repo, service string) {
	if service != ReceivePack {
		return
	}
	repo.mu.Lock()
	repo.version++
	repo.mu.Unlock()
}
