package e2e_test

import (
	"os"
	"path/filepath"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
)

// A user with only endpoints.json and the git CLI: push a new repo over
// SSH, clone it over HTTPS.
var _ = Describe("the git server, through endpoints.json and the git CLI", Label("git"), func() {
	It("takes a plain git push to a new path and serves it over both protocols", func(ctx SpecContext) {
		g := newGitCLI()
		git := func(dir string, args ...string) string { return g.run(ctx, dir, args...) }
		home := GinkgoT().TempDir()
		src := filepath.Join(home, "src")
		Expect(os.MkdirAll(src, 0o755)).To(Succeed())
		git(src, "init", "-q", "-b", "main")
		Expect(os.WriteFile(filepath.Join(src, "README.md"), []byte("# e2e\n"), 0o644)).To(Succeed())
		git(src, "add", "README.md")
		git(src, "commit", "-q", "-m", "first")
		git(src, "push", "-q", g.ep.Git.SSHURL+"/e2e/first-push.git", "main")

		dst := filepath.Join(home, "dst")
		git(home, "clone", "-q", g.HTTPSAuth+"/e2e/first-push.git", dst)
		Expect(git(dst, "rev-parse", "HEAD")).To(Equal(git(src, "rev-parse", "HEAD")))
		head, err := stack.Git().Ref("e2e/first-push", "HEAD")
		Expect(err).NotTo(HaveOccurred())
		Expect(head.String()).To(Equal(git(src, "rev-parse", "HEAD")))
	})
})
