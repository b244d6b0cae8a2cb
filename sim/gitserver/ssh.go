package gitserver

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os/exec"
	"strings"
	"time"

	"github.com/gliderlabs/ssh"
)

type ctxKey struct{}

// sshAuth admits keys of users and deploy keys; any other key fails, and
// the client says "Permission denied (publickey)".
func (s *Server) sshAuth(ctx ssh.Context, key ssh.PublicKey) bool {
	id := s.identityForKey(key)
	if id == nil {
		return false
	}
	ctx.SetValue(ctxKey{}, id)
	return true
}

// serveSSH runs "git-upload-pack '<repo>'" or "git-receive-pack '<repo>'".
// Errors go to stderr, as git shows them, and set the exit status.
func (s *Server) serveSSH(sess ssh.Session) {
	code := s.sshCommand(sess)
	if code == 0 {
		// A refused command exits at once: its client is still
		// waiting for output and would never close its input.
		s.awaitClientEOF(sess)
	}
	_ = sess.Exit(code)
}

// clientEOFTimeout bounds how long a finished command waits for the
// client to close its side of the channel.
const clientEOFTimeout = 10 * time.Second

// awaitClientEOF holds the channel open until the client has sent EOF.
// A client such as go-git writes its request, then closes stdin, then
// reads the answer; a push or a fetch served fast enough would otherwise
// close the channel between the write and the close, and the client's
// close then fails with EOF although the push landed (measured: about
// 1 in 400 pushes). Git's own clients close stdin right after their
// request too, so normally the EOF is already there.
func (s *Server) awaitClientEOF(sess ssh.Session) {
	done := make(chan struct{})
	go func() {
		_, _ = io.Copy(io.Discard, sess)
		close(done)
	}()
	select {
	case <-done:
	case <-sess.Context().Done():
	case <-s.wall.After(clientEOFTimeout):
		s.log.Debug("ssh client kept its input open after the command; closing", "user", sess.User())
	}
}

func (s *Server) sshCommand(sess ssh.Session) int {
	fail := func(format string, args ...any) int {
		fmt.Fprintf(sess.Stderr(), "ERROR: "+format+"\n", args...)
		return 1
	}
	cmd := sess.Command()
	if len(cmd) != 2 || (cmd[0] != UploadPack && cmd[0] != ReceivePack) {
		return fail("gitopsim serves git only: git-upload-pack '<repo>' or git-receive-pack '<repo>'")
	}
	service := cmd[0]
	name, err := CleanRepoName(cmd[1])
	if err != nil {
		return fail("%v", err)
	}
	id, _ := sess.Context().Value(ctxKey{}).(*identity)
	write := service == ReceivePack
	repo, err := s.repoFor(name, id, write)
	if err != nil {
		return fail("%s", oneLine(err.Error()))
	}
	ctx := sess.Context()
	if err := s.fault(ctx, name); err != nil {
		return fail("%v", err)
	}
	// The session must stay open until the status report is written, so
	// the service never sees its Close.
	in := struct{ io.Reader }{sess}
	r := request{proto: "ssh", service: service, repo: name, who: id.String()}
	if s.opts.Backend == Reference {
		code := s.execSSH(ctx, repo, service, in, sess)
		if code != 0 {
			s.finish(r, fmt.Errorf("git %s exited with status %d", service, code))
		} else {
			s.finish(r, nil)
		}
		return code
	}
	out := clientWriter{sess}
	version := protocolVersion(sshEnv(sess, "GIT_PROTOCOL"))
	if service == UploadPack && version == 2 {
		err = advertiseV2(out)
		if err == nil {
			err = s.uploadPackV2(ctx, repo, in, out, false)
		}
		s.finish(r, err)
		if err != nil {
			return 1
		}
		return 0
	}
	tips, err := advertise(out, repo, service, version == 1)
	if err != nil {
		s.finish(r, err)
		return fail("%v", err)
	}
	if service == UploadPack {
		err = s.uploadPack(ctx, repo, in, out, false, tips)
	} else {
		err = s.receivePack(ctx, repo, in, out, id.String())
	}
	s.finish(r, err)
	if err != nil {
		return 1
	}
	return 0
}

// sshEnv is a variable the client set on the session (git sends
// GIT_PROTOCOL this way, with ssh -o SendEnv).
func sshEnv(sess ssh.Session, name string) string {
	for _, kv := range sess.Environ() {
		if v, ok := strings.CutPrefix(kv, name+"="); ok {
			return v
		}
	}
	return ""
}

// repoFor finds the repo and checks access. An admin pushing to a path
// that does not exist creates it (private), so a plain git push works.
func (s *Server) repoFor(name string, id *identity, write bool) (*Repo, error) {
	repo, ok := s.store.Get(name)
	if !ok {
		if write && id.isAdmin() {
			r, err := s.CreateRepo(name, RepoOptions{})
			if err != nil && !errors.Is(err, ErrRepoExists) {
				return nil, err
			}
			if r == nil {
				r, _ = s.store.Get(name)
			}
			s.log.Info("created repository on first push", "repo", name, "who", id.String())
			return r, nil
		}
		return nil, fmt.Errorf("repository '%s' not found", name)
	}
	if err := s.authorize(id, name, write); err != nil {
		return nil, err
	}
	return repo, nil
}

// execSSH hands the session to git upload-pack / git receive-pack.
func (s *Server) execSSH(ctx context.Context, repo *Repo, service string, in io.Reader, sess ssh.Session) int {
	cmd := exec.CommandContext(ctx, s.git, service[len("git-"):], repo.Dir())
	cmd.Stdin, cmd.Stdout, cmd.Stderr = in, sess, sess.Stderr()
	cmd.Env = gitEnv()
	if v := sshEnv(sess, "GIT_PROTOCOL"); v != "" {
		cmd.Env = append(cmd.Env, "GIT_PROTOCOL="+v)
	}
	err := cmd.Run()
	s.afterExec(repo, service)
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		return ee.ExitCode()
	}
	if err != nil {
		fmt.Fprintf(sess.Stderr(), "ERROR: %v\n", err)
		return 1
	}
	return 0
}
