package ui

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"path"
	"slices"
	"strings"
	"time"

	"github.com/gitopsim/gitopsim/sim/agent"
)

// maxBody bounds a control's JSON body.
const maxBody = 1 << 20

// decode reads a control's JSON body strictly: unknown fields, trailing
// data and oversized bodies are errors. An empty body leaves v as it is.
func decode(w http.ResponseWriter, r *http.Request, v any) bool {
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxBody))
	if err != nil {
		writeError(w, http.StatusBadRequest, "BadRequest", fmt.Sprintf("cannot read the body: %v", err))
		return false
	}
	if len(strings.TrimSpace(string(body))) == 0 {
		return true
	}
	dec := json.NewDecoder(strings.NewReader(string(body)))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		writeError(w, http.StatusBadRequest, "BadRequest", fmt.Sprintf("the body is not the JSON this endpoint takes: %v", err))
		return false
	}
	if dec.More() {
		writeError(w, http.StatusBadRequest, "BadRequest", "the body has data after its JSON object")
		return false
	}
	return true
}

// clockControl is pause, resume, scale and jump.
func (s *Server) clockControl(w http.ResponseWriter, r *http.Request) {
	op := r.PathValue("op")
	if !slices.Contains([]string{"pause", "resume", "scale", "jump"}, op) {
		writeError(w, http.StatusNotFound, "NotFound", fmt.Sprintf("no clock control %q: pause, resume, scale or jump", op))
		return
	}
	var body struct {
		Scale *float64 `json:"scale"`
		By    string   `json:"by"`
	}
	if !decode(w, r, &body) {
		return
	}
	if s.ctl == nil {
		writeError(w, http.StatusConflict, "Conflict", s.clockView().Reason)
		return
	}
	var ran *int
	switch op {
	case "pause":
		s.ctl.Pause()
		s.control(KindClock, "paused", "", "time paused by the presenter")
	case "resume":
		s.ctl.Resume()
		s.control(KindClock, "resumed", "", "time resumed")
	case "scale":
		if body.Scale == nil {
			writeError(w, http.StatusBadRequest, "BadRequest", `scale needs {"scale": N}`)
			return
		}
		if err := s.ctl.SetScale(*body.Scale); err != nil {
			writeError(w, http.StatusBadRequest, "BadRequest", err.Error())
			return
		}
		s.control(KindClock, "scaled", "", fmt.Sprintf("time runs at %g×", *body.Scale))
	case "jump":
		d, err := time.ParseDuration(body.By)
		if err != nil {
			writeError(w, http.StatusBadRequest, "BadRequest", fmt.Sprintf(`jump needs {"by": "<duration>"} such as "15m", "1h", "48h": %v`, err))
			return
		}
		from := s.ctl.Now()
		n, err := s.ctl.Jump(d)
		if err != nil {
			writeError(w, http.StatusBadRequest, "BadRequest", err.Error())
			return
		}
		ran = &n
		s.rec.Add(Event{Time: from, Kind: KindClock, Action: "jumped", Message: fmt.Sprintf("jumped %s ahead (%d timers ran)", fmtDur(d), n)})
		s.log.Info("web view: time jumped", "by", d.String(), "ran", n)
	}
	v := s.clockView()
	v.Ran = ran
	writeJSON(w, http.StatusOK, v)
}

// control records a presenter's action on the timeline and in the log.
func (s *Server) control(kind, action, cluster, msg string) {
	s.rec.Add(Event{Time: s.sim.Clock().Now(), Kind: kind, Action: action, Cluster: cluster, Message: msg})
	s.log.Info("web view: "+msg, "kind", kind, "action", action)
}

// links cuts or restores a cluster's links to Azure and git.
func (s *Server) links(w http.ResponseWriter, r *http.Request) {
	var body struct {
		Offline *bool `json:"offline"`
	}
	if !decode(w, r, &body) {
		return
	}
	if body.Offline == nil {
		writeError(w, http.StatusBadRequest, "BadRequest", `links needs {"offline": true|false}`)
		return
	}
	c, row, ok := s.findCluster(w, r)
	if !ok {
		return
	}
	if c == nil {
		writeError(w, http.StatusConflict, "Conflict", "the cluster has no agent in this simulator: its links cannot be cut")
		return
	}
	c.Agent.ARMLink().SetOffline(*body.Offline)
	c.Agent.GitLink().SetOffline(*body.Offline)
	s.rec.LinksChanged(c.ID, *body.Offline, s.sim.Clock().Now())
	key := clusterKey(c.ResourceGroup, c.Name)
	if *body.Offline {
		s.control(KindLink, "offline", key, fmt.Sprintf("links of %s cut (Azure and git)", c.Name))
	} else {
		s.control(KindLink, "online", key, fmt.Sprintf("links of %s restored", c.Name))
	}
	row.LinksOffline = *body.Offline
	writeJSON(w, http.StatusOK, row)
}

// gitDown takes the whole git server down or up.
func (s *Server) gitDown(w http.ResponseWriter, r *http.Request) {
	var body struct {
		Down *bool `json:"down"`
	}
	if !decode(w, r, &body) {
		return
	}
	if body.Down == nil {
		writeError(w, http.StatusBadRequest, "BadRequest", `git needs {"down": true|false}`)
		return
	}
	s.sim.Git().SetDown(*body.Down)
	if *body.Down {
		s.control(KindGit, "down", "", "the git server is down")
	} else {
		s.control(KindGit, "up", "", "the git server serves again")
	}
	repos, down := repoRows(s.sim)
	writeJSON(w, http.StatusOK, map[string]any{"repos": repos, "gitDown": down})
}

// repo is /api/repos/{repo} (down) and /api/repos/{repo}/push.
func (s *Server) repo(w http.ResponseWriter, r *http.Request) {
	p := r.PathValue("path")
	if name, ok := strings.CutSuffix(p, "/push"); ok {
		s.push(w, r, name)
		return
	}
	var body struct {
		Down *bool `json:"down"`
	}
	if !decode(w, r, &body) {
		return
	}
	if !s.knownRepo(w, p) {
		return
	}
	if body.Down == nil {
		writeError(w, http.StatusBadRequest, "BadRequest", `a repo takes {"down": true|false}`)
		return
	}
	s.sim.Git().SetRepoDown(p, *body.Down)
	if *body.Down {
		s.control(KindGit, "down", "", fmt.Sprintf("repository %s is unavailable", p))
	} else {
		s.control(KindGit, "up", "", fmt.Sprintf("repository %s serves again", p))
	}
	repos, down := repoRows(s.sim)
	writeJSON(w, http.StatusOK, map[string]any{"repos": repos, "gitDown": down})
}

func (s *Server) knownRepo(w http.ResponseWriter, name string) bool {
	if slices.Contains(s.sim.Git().Repos(), name) {
		return true
	}
	writeError(w, http.StatusNotFound, "NotFound", fmt.Sprintf("no repository %q on the git server", name))
	return false
}

// changes lists the prepared changes (Options.Changes), read now.
func (s *Server) changes(w http.ResponseWriter, _ *http.Request) {
	set, err := readChanges(s.opts.Changes)
	if err != nil {
		s.log.Warn("web view: cannot read the prepared changes", "dir", s.opts.Changes, "err", err)
		set.Problems = append(set.Problems, err.Error())
	}
	writeJSON(w, http.StatusOK, set)
}

// push commits files to a branch, a prepared change, or the demo change
// when given neither.
func (s *Server) push(w http.ResponseWriter, r *http.Request, repo string) {
	var body struct {
		Branch  string             `json:"branch"`
		Message string             `json:"message"`
		Files   map[string]*string `json:"files"`
		Change  string             `json:"change"`
	}
	if !decode(w, r, &body) {
		return
	}
	if !s.knownRepo(w, repo) {
		return
	}
	if body.Change != "" {
		if len(body.Files) > 0 {
			writeError(w, http.StatusBadRequest, "BadRequest", "give files or a prepared change, not both")
			return
		}
		set, err := readChanges(s.opts.Changes)
		files, ok := set.files[body.Change]
		if err != nil || !ok {
			writeError(w, http.StatusNotFound, "NotFound", fmt.Sprintf("no prepared change %q (GET /api/changes lists them)", body.Change))
			return
		}
		body.Files = files
		if body.Message == "" {
			body.Message = body.Change
			if i := slices.IndexFunc(set.Changes, func(c Change) bool { return c.Name == body.Change }); i >= 0 && set.Changes[i].Message != "" {
				body.Message = set.Changes[i].Message
			}
		}
	}
	for p := range body.Files {
		if err := validPath(p); err != nil {
			writeError(w, http.StatusBadRequest, "BadRequest", err.Error())
			return
		}
	}
	if body.Branch == "" {
		body.Branch = s.defaultBranch(repo)
	}
	if len(body.Files) == 0 {
		s.demoMu.Lock()
		s.demo[repo]++
		n := s.demo[repo]
		s.demoMu.Unlock()
		ns := ""
		if dns := s.demoNamespace(repo, body.Branch); dns != "" {
			ns = "\n  namespace: " + dns
		}
		content := fmt.Sprintf("# Pushed from the gitopsim web view: change %d.\napiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: gitopsim-demo%s\ndata:\n  change: %q\n  pushedAt: %q\n",
			n, ns, fmt.Sprint(n), s.sim.Clock().Now().UTC().Format(time.RFC3339))
		body.Files = map[string]*string{"gitopsim-demo.yaml": &content}
		if body.Message == "" {
			body.Message = fmt.Sprintf("demo change %d", n)
		}
	}
	if body.Message == "" {
		body.Message = "change pushed from the gitopsim web view"
	}
	h, err := s.sim.Git().Commit(repo, body.Branch, body.Message, body.Files)
	if err != nil {
		s.log.Warn("web view: push failed", "repo", repo, "branch", body.Branch, "err", err)
		writeError(w, http.StatusBadRequest, "BadRequest", fmt.Sprintf("cannot push to %s %s: %v", repo, body.Branch, err))
		return
	}
	s.log.Info("web view: pushed", "repo", repo, "branch", body.Branch, "revision", h.String())
	writeJSON(w, http.StatusOK, map[string]any{"repo": repo, "branch": body.Branch, "revision": h.String()})
}

// demoNamespace is where the demo change's ConfigMap goes: the operator
// namespace of the configurations that follow the branch when they are
// all namespace-scoped in one namespace (fluxd would exclude an object
// outside it, --k8s-allow-namespace), else none, which fluxd puts in its
// default namespace.
func (s *Server) demoNamespace(repo, branch string) string {
	ns := ""
	for _, cl := range s.sim.ARM().Overview() {
		for _, c := range cl.Configs {
			if repoPath(c.RepositoryURL) != repo || agent.GitBranch(c.OperatorParams) != branch {
				continue
			}
			if !strings.EqualFold(c.Scope, "namespace") || ns != "" && ns != c.Namespace {
				return ""
			}
			ns = c.Namespace
		}
	}
	return ns
}

// defaultBranch is the branch the repo's configurations follow when they
// agree on one, else the branch of its HEAD, else fluxd's default master.
func (s *Server) defaultBranch(repo string) string {
	followed := map[string]bool{}
	for _, cl := range s.sim.ARM().Overview() {
		for _, c := range cl.Configs {
			if repoPath(c.RepositoryURL) == repo {
				followed[agent.GitBranch(c.OperatorParams)] = true
			}
		}
	}
	if len(followed) == 1 {
		for b := range followed {
			return b
		}
	}
	if b, err := s.sim.Git().HeadBranch(repo); err == nil {
		return b
	}
	return "master"
}

// validPath accepts a clean relative path inside the work tree.
func validPath(p string) error {
	if p == "" || path.IsAbs(p) || path.Clean(p) != p || p == "." || strings.HasPrefix(p, "../") || p == ".." {
		return fmt.Errorf("file path %q: want a clean relative path such as apps/web.yaml", p)
	}
	for _, part := range strings.Split(p, "/") {
		if strings.EqualFold(part, ".git") {
			return fmt.Errorf("file path %q: .git cannot be written", p)
		}
	}
	return nil
}
