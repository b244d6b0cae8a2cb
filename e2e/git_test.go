package e2e_test

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"github.com/gitopsim/gitopsim/sim"
)

// A user with only endpoints.json and the git CLI: push a new repo over
// SSH, clone it over HTTPS.
var _ = Describe("the git server, through endpoints.json and the git CLI", Label("git"), func() {
	It("takes a plain git push to a new path and serves it over both protocols", func(ctx SpecContext) {
		e, err := sim.ReadEndpoints(stack.EndpointsPath())
		Expect(err).NotTo(HaveOccurred())
		home := GinkgoT().TempDir()
		env := []string{
			"PATH=" + os.Getenv("PATH"), "HOME=" + home, "GIT_CONFIG_GLOBAL=/dev/null", "GIT_CONFIG_NOSYSTEM=1", "GIT_TERMINAL_PROMPT=0",
			"GIT_AUTHOR_NAME=e2e", "GIT_AUTHOR_EMAIL=e2e@example.com", "GIT_COMMITTER_NAME=e2e", "GIT_COMMITTER_EMAIL=e2e@example.com",
			fmt.Sprintf("GIT_SSH_COMMAND=ssh -F /dev/null -i %s -o IdentitiesOnly=yes -o BatchMode=yes -o StrictHostKeyChecking=yes -o UserKnownHostsFile=%s",
				e.Git.SSHPrivateKeyFile, e.Git.KnownHostsFile),
			"GIT_SSL_CAINFO=" + e.Git.CAFile,
		}
		git := func(dir string, args ...string) string {
			cmd := exec.CommandContext(ctx, "git", args...)
			cmd.Dir, cmd.Env = dir, env
			out, err := cmd.CombinedOutput()
			Expect(err).NotTo(HaveOccurred(), "git %s:\n%s", strings.Join(args, " "), out)
			return strings.TrimSpace(string(out))
		}
		src := filepath.Join(home, "src")
		Expect(os.MkdirAll(src, 0o755)).To(Succeed())
		git(src, "init", "-q", "-b", "main")
		Expect(os.WriteFile(filepath.Join(src, "README.md"), []byte("# e2e\n"), 0o644)).To(Succeed())
		git(src, "add", "README.md")
		git(src, "commit", "-q", "-m", "first")
		git(src, "push", "-q", e.Git.SSHURL+"/e2e/first-push.git", "main")

		httpsURL := strings.Replace(e.Git.HTTPSURL, "https://", "https://"+e.Git.HTTPSUser+":"+e.Git.HTTPSToken+"@", 1)
		dst := filepath.Join(home, "dst")
		git(home, "clone", "-q", httpsURL+"/e2e/first-push.git", dst)
		Expect(git(dst, "rev-parse", "HEAD")).To(Equal(git(src, "rev-parse", "HEAD")))
		head, err := stack.Git().Ref("e2e/first-push", "HEAD")
		Expect(err).NotTo(HaveOccurred())
		Expect(head.String()).To(Equal(git(src, "rev-parse", "HEAD")))
	})
})
