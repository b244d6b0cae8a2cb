package e2e_test

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"github.com/gitopsim/gitopsim/sim"
)

// gitCLI runs the real git client as a user who has only endpoints.json:
// the suite user's SSH key and known_hosts, the CA for HTTPS, an empty
// global config.
type gitCLI struct {
	ep  *sim.Endpoints
	env []string
	// HTTPSAuth is the HTTPS base URL with the suite user's token in it.
	HTTPSAuth string
}

func newGitCLI() *gitCLI {
	GinkgoHelper()
	e, err := sim.ReadEndpoints(stack.EndpointsPath())
	Expect(err).NotTo(HaveOccurred())
	home := GinkgoT().TempDir()
	return &gitCLI{
		ep: e,
		env: []string{
			"PATH=" + os.Getenv("PATH"), "HOME=" + home, "GIT_CONFIG_GLOBAL=/dev/null", "GIT_CONFIG_NOSYSTEM=1", "GIT_TERMINAL_PROMPT=0",
			"GIT_AUTHOR_NAME=e2e", "GIT_AUTHOR_EMAIL=e2e@example.com", "GIT_COMMITTER_NAME=e2e", "GIT_COMMITTER_EMAIL=e2e@example.com",
			fmt.Sprintf("GIT_SSH_COMMAND=ssh -F /dev/null -i %s -o IdentitiesOnly=yes -o BatchMode=yes -o StrictHostKeyChecking=yes -o UserKnownHostsFile=%s",
				e.Git.SSHPrivateKeyFile, e.Git.KnownHostsFile),
			"GIT_SSL_CAINFO=" + e.Git.CAFile,
		},
		HTTPSAuth: strings.Replace(e.Git.HTTPSURL, "https://", "https://"+e.Git.HTTPSUser+":"+e.Git.HTTPSToken+"@", 1),
	}
}

// run runs git in dir and returns its trimmed output; a failure fails the
// spec with git's output.
func (g *gitCLI) run(ctx context.Context, dir string, args ...string) string {
	GinkgoHelper()
	cmd := exec.CommandContext(ctx, "git", args...)
	cmd.Dir, cmd.Env = dir, g.env
	out, err := cmd.CombinedOutput()
	Expect(err).NotTo(HaveOccurred(), "git %s:\n%s", strings.Join(args, " "), out)
	return strings.TrimSpace(string(out))
}

// initRepo makes an empty work tree on branch main.
func (g *gitCLI) initRepo(ctx context.Context) string {
	GinkgoHelper()
	dir := filepath.Join(GinkgoT().TempDir(), "work")
	Expect(os.MkdirAll(dir, 0o755)).To(Succeed())
	g.run(ctx, dir, "init", "-q", "-b", "main")
	return dir
}
