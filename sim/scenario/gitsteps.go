package scenario

import (
	"fmt"
	"sort"
	"strings"

	"github.com/go-git/go-git/v5/plumbing"
)

// git steps: a commit pushed to a repo.
func summaryGit(r *run, s *Step) string {
	g := s.Git
	var parts []string
	if g.Fixture != "" {
		parts = append(parts, "fixture "+g.Fixture)
	}
	if len(g.Files) > 0 {
		names := make([]string, 0, len(g.Files))
		for k := range g.Files {
			names = append(names, k)
		}
		sort.Strings(names)
		parts = append(parts, strings.Join(names, ", "))
	}
	if len(g.Delete) > 0 {
		parts = append(parts, "delete "+strings.Join(g.Delete, ", "))
	}
	return fmt.Sprintf("git push %s %s: %s", g.Repo, r.branch(g.Repo, g.Branch), strings.Join(parts, "; "))
}

func doGit(r *run, s *Step) (string, error) {
	git := r.env.sim.Git()
	g := s.Git
	files, volatile, err := r.files(g.Repo, g.Fixture, g.Files, g.Delete)
	if err != nil {
		return "", err
	}
	msg := g.Message
	if msg == "" {
		msg = s.Name
	}
	if msg == "" {
		msg = "scenario " + r.sc.Metadata.Name
	}
	h, err := git.Commit(g.Repo, r.branch(g.Repo, g.Branch), msg, files)
	if err != nil {
		return "", failf("git push: %v", err)
	}
	// Once a commit held this run's URLs, every later hash on the repo
	// varies too.
	volatile = volatile || r.volatile[g.Repo]
	r.volatile[g.Repo] = volatile
	if volatile {
		// Reports stay reproducible: the hash depends on this run's ports.
		return "committed (with this run's URLs)", nil
	}
	return "commit " + h.String()[:7], nil
}

// setRef steps: a ref moved or deleted.
func summarySetRef(r *run, s *Step) string {
	if s.SetRef.To == "" {
		return fmt.Sprintf("git delete %s %s", s.SetRef.Repo, s.SetRef.Ref)
	}
	return fmt.Sprintf("git set %s %s -> %s", s.SetRef.Repo, s.SetRef.Ref, s.SetRef.To)
}

func doSetRef(r *run, s *Step) (string, error) {
	git := r.env.sim.Git()
	sr := s.SetRef
	ref := sr.Ref
	if !strings.HasPrefix(ref, "refs/") {
		if _, err := git.Ref(sr.Repo, "refs/tags/"+ref); err == nil {
			ref = "refs/tags/" + ref
		}
	}
	to := plumbing.ZeroHash
	if sr.To != "" {
		h, err := git.Ref(sr.Repo, sr.To)
		if err != nil {
			return "", failf("setRef: %v", err)
		}
		to = h
	}
	if err := git.SetRef(sr.Repo, ref, to); err != nil {
		return "", failf("setRef: %v", err)
	}
	return "", nil
}

// deployKey steps: a deploy key granted.
func summaryDeployKey(r *run, s *Step) string {
	d := s.DeployKey
	who := "key " + d.Key
	if d.FromConfiguration != nil {
		who = fmt.Sprintf("repositoryPublicKey of %s/%s", d.FromConfiguration.Cluster, d.FromConfiguration.Name)
	}
	access := "read-only"
	if d.Write {
		access = "read-write"
	}
	return fmt.Sprintf("deploy %s on %s (%s)", who, d.Repo, access)
}

func doDeployKey(r *run, s *Step) (string, error) {
	git := r.env.sim.Git()
	d := s.DeployKey
	if d.FromConfiguration != nil {
		pk, err := r.repositoryPublicKey(d.FromConfiguration.Cluster, d.FromConfiguration.Name)
		if err != nil {
			return "", err
		}
		if _, err := git.AddDeployKey(d.Repo, pk, d.Write); err != nil {
			return "", failf("deploy key: %v", err)
		}
		return "", nil
	}
	return "", r.deploy(r.keys[d.Key], d.Repo, d.Write)
}

// revokeKey steps: a deploy key revoked.
func summaryRevokeKey(r *run, s *Step) string {
	return "revoke key " + s.RevokeKey.Key
}

func doRevokeKey(r *run, s *Step) (string, error) {
	git := r.env.sim.Git()
	kp := r.keys[s.RevokeKey.Key]
	if len(kp.deployed) == 0 {
		return "", failf("key %s is not deployed anywhere", s.RevokeKey.Key)
	}
	for _, fp := range kp.deployed {
		if _, err := git.RevokeKey(fp); err != nil {
			return "", fmt.Errorf("revoke key %s: %w", s.RevokeKey.Key, err)
		}
	}
	kp.deployed = nil
	return "", nil
}

// expireToken steps: an HTTPS token expired.
func summaryExpireToken(r *run, s *Step) string {
	return "expire token " + s.ExpireToken.Token
}

func doExpireToken(r *run, s *Step) (string, error) {
	git := r.env.sim.Git()
	known, err := git.ExpireToken(r.tokens[s.ExpireToken.Token].secret)
	if err != nil {
		return "", fmt.Errorf("expire token %s: %w", s.ExpireToken.Token, err)
	}
	if !known {
		return "", failf("token %s is unknown to the git server", s.ExpireToken.Token)
	}
	return "", nil
}

// gitServer steps: git server faults.
func summaryGitServer(r *run, s *Step) string {
	g := s.GitServer
	var what []string
	if g.Down != nil {
		what = append(what, map[bool]string{true: "down", false: "up"}[*g.Down])
	}
	if g.Latency != nil {
		what = append(what, "latency "+fmtDur(g.Latency.D()))
	}
	target := "git server"
	if g.Repo != "" {
		target += " repo " + g.Repo
	}
	return target + " " + strings.Join(what, ", ")
}

func doGitServer(r *run, s *Step) (string, error) {
	git := r.env.sim.Git()
	g := s.GitServer
	if g.Down != nil {
		if g.Repo != "" {
			git.SetRepoDown(g.Repo, *g.Down)
		} else {
			git.SetDown(*g.Down)
		}
	}
	if g.Latency != nil {
		if g.Repo != "" {
			git.SetRepoLatency(g.Repo, g.Latency.D())
		} else {
			git.SetLatency(g.Latency.D())
		}
	}
	return "", nil
}
