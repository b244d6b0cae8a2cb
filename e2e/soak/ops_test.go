package soak

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/base64"
	"encoding/pem"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore/to"
	"github.com/Azure/azure-sdk-for-go/sdk/resourcemanager/kubernetesconfiguration/armkubernetesconfiguration/v2"
	gossh "golang.org/x/crypto/ssh"

	"github.com/gitopsim/gitopsim/sim/cluster"
	"github.com/gitopsim/gitopsim/sim/gitserver"
)

// action is one kind of thing a round may do, with its weight.
type action struct {
	name   string
	weight int
	// can says whether the action makes sense now; nil means always.
	can func(w *world) bool
	do  func(w *world)
}

// actions are what users and the world do to gitopsim: user work first,
// then faults.
var actions = []action{
	{"push", 30, func(w *world) bool { return len(w.live) > 0 }, (*world).push},
	{"create configuration", 12, func(w *world) bool { return len(w.live) < 4*len(w.clusters) }, (*world).create},
	{"delete configuration", 6, func(w *world) bool { return len(w.live) > len(w.clusters) }, (*world).delete},
	{"re-apply configuration", 6, func(w *world) bool { return len(w.live) > 0 }, (*world).reapply},
	{"assign policy", 3, func(w *world) bool { return len(w.assignments) < 4 }, (*world).assignPolicy},
	{"remove policy assignment", 2, func(w *world) bool { return len(w.assignments) > 0 }, (*world).unassignPolicy},
	{"link down", 10, nil, (*world).linkDown},
	{"git down", 4, func(w *world) bool { return !w.active(faultGitDown, "") }, (*world).gitDown},
	{"git slow", 4, func(w *world) bool { return !w.active(faultGitSlow, "") }, (*world).gitSlow},
	{"ARM 503", 6, func(w *world) bool { return !w.active(faultARM, "") }, (*world).arm503},
	{"restart gitopsim", 6, nil, (*world).restart},
	{"restart kube-apiserver", 5, nil, (*world).restartAPIServer},
}

// doRound does up to three random actions, then lets a round of virtual
// time pass.
func (w *world) doRound() {
	for n := w.rng.IntN(4); n > 0 && !w.t.Failed(); n-- {
		w.randomAction()
	}
	w.advance(round)
}

func (w *world) randomAction() {
	var can []action
	total := 0
	for _, a := range actions {
		if a.can == nil || a.can(w) {
			can = append(can, a)
			total += a.weight
		}
	}
	pick := w.rng.IntN(total)
	for _, a := range can {
		if pick < a.weight {
			w.stats.ops[a.name]++
			a.do(w)
			return
		}
		pick -= a.weight
	}
}

// pickLive picks a live configuration; the order is stable, so that a
// seed repeats its run.
func (w *world) pickLive() *configuration {
	keys := make([]string, 0, len(w.live))
	for k := range w.live {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return w.live[keys[w.rng.IntN(len(keys))]]
}

// manifest is a configuration's repo content at rev; broken content is
// YAML fluxd cannot parse, so the whole sync fails and nothing applies.
func manifest(ns string, rev int, broken bool) map[string]*string {
	s := fmt.Sprintf("apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: soak\n  namespace: %s\ndata:\n  rev: \"%d\"\n", ns, rev)
	if broken {
		s = fmt.Sprintf("apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: soak\n  namespace: %s\ndata: {rev: \"%d\"\n", ns, rev)
	}
	return map[string]*string{"soak.yaml": &s}
}

// commit pushes new content to c's repo; one in seven pushes is broken.
func (w *world) commit(c *configuration, broken bool) {
	rev := c.rev + 1
	h, err := w.s.Git().Commit(c.repo, "main", fmt.Sprintf("rev %d", rev), manifest(c.ns, rev, broken))
	if err != nil {
		w.t.Errorf("push to %s: %v", c.repo, err)
		return
	}
	c.head, c.good = h.String(), !broken
	if !broken {
		c.rev = rev
	}
}

func (w *world) push() {
	c := w.pickLive()
	w.commit(c, w.rng.IntN(7) == 0)
}

// create makes a repo with its own reader (an HTTPS token or an SSH
// deploy key, both secret) and a configuration of it.
func (w *world) create() {
	w.seq++
	name := fmt.Sprintf("cfg-%d", w.seq)
	c := &configuration{
		cluster: w.clusters[w.rng.IntN(len(w.clusters))], name: name,
		ns: fmt.Sprintf("soak-%d", w.seq), repo: "soak/" + name, https: w.rng.IntN(2) == 0,
	}
	git := w.s.Git()
	if _, err := git.CreateRepo(c.repo, gitserver.RepoOptions{DefaultBranch: "main"}); err != nil {
		w.t.Errorf("create repo %s: %v", c.repo, err)
		return
	}
	w.commit(c, false)
	prot := map[string]*string{}
	var url string
	if c.https {
		user := "reader-" + name
		if err := git.AddUser(user, false); err != nil {
			w.t.Errorf("add user: %v", err)
			return
		}
		if err := git.Grant(user, c.repo, false); err != nil {
			w.t.Errorf("grant: %v", err)
			return
		}
		tok, err := git.AddToken(user, gitserver.TokenOptions{ReadOnly: true})
		if err != nil {
			w.t.Errorf("add token: %v", err)
			return
		}
		w.secret(tok)
		prot["httpsUser"], prot["httpsKey"] = b64(user), b64(tok)
		url = git.HTTPSURL() + "/" + c.repo + ".git"
	} else {
		priv, authorized, err := newKey()
		if err != nil {
			w.t.Fatal(err)
		}
		if _, err := git.AddDeployKey(c.repo, authorized, false); err != nil {
			w.t.Errorf("add deploy key: %v", err)
			return
		}
		w.secret(priv)
		prot["sshPrivateKey"] = b64(priv)
		url = git.SSHURL() + "/" + c.repo + ".git"
	}
	c.body = armkubernetesconfiguration.SourceControlConfiguration{Properties: &armkubernetesconfiguration.SourceControlConfigurationProperties{
		RepositoryURL:                  to.Ptr(url),
		OperatorNamespace:              to.Ptr(c.ns),
		OperatorInstanceName:           to.Ptr(name),
		OperatorType:                   to.Ptr(armkubernetesconfiguration.OperatorTypeFlux),
		OperatorScope:                  to.Ptr(armkubernetesconfiguration.OperatorScopeTypeNamespace),
		OperatorParams:                 to.Ptr("--git-branch=main"),
		ConfigurationProtectedSettings: prot,
	}}
	if w.put(c, "create configuration") {
		w.live[c.key()] = c
	}
}

// reapply PUTs a live configuration's body again: an update that changes
// nothing must change nothing.
func (w *world) reapply() { w.put(w.pickLive(), "re-apply configuration") }

// put sends c's body; it reports whether ARM acknowledged it.
func (w *world) put(c *configuration, op string) bool {
	ctx, cancel := context.WithTimeout(w.ctx, time.Minute)
	defer cancel()
	_, err := w.configs.CreateOrUpdate(ctx, resourceGroup, "Microsoft.Kubernetes", "connectedClusters", c.cluster, c.name, c.body, nil)
	return w.acked(op, c, err)
}

func (w *world) delete() {
	c := w.pickLive()
	ctx, cancel := context.WithTimeout(w.ctx, time.Minute)
	defer cancel()
	var err error
	if p, e := w.configs.BeginDelete(ctx, resourceGroup, "Microsoft.Kubernetes", "connectedClusters", c.cluster, c.name, nil); e != nil {
		err = e
	} else {
		_, err = p.PollUntilDone(ctx, nil)
	}
	if w.acked("delete configuration", c, err) {
		delete(w.live, c.key())
		w.gone[c.key()] = c
	}
}

// acked sorts an ARM answer about a configuration.
func (w *world) acked(op string, c *configuration, err error) bool {
	return w.ackedErr(op, c.key(), err)
}

// ackedErr sorts an ARM answer: success, a 503 the soak injected (the
// write was not made), or a failure of gitopsim.
func (w *world) ackedErr(op, what string, err error) bool {
	if err == nil {
		return true
	}
	// The fault's own message, whichever route met it: the call, or the
	// token its credential fetched first (azidentity wraps that answer
	// in an error of its own).
	if strings.Contains(err.Error(), faultMessage) {
		w.stats.refused[op]++
		return false
	}
	w.t.Errorf("%s %s: %v", op, what, redact(err.Error(), w.secrets))
	return false
}

func (w *world) linkDown() {
	var free []string
	for _, c := range w.clusters {
		if !w.active(faultLink, c) {
			free = append(free, c)
		}
	}
	if len(free) == 0 {
		return
	}
	f := &fault{kind: faultLink, cluster: free[w.rng.IntN(len(free))], link: []string{"all", "arm", "git"}[w.rng.IntN(3)]}
	w.inject(f, time.Duration(1+w.rng.IntN(40))*time.Minute)
}

func (w *world) gitDown() {
	w.inject(&fault{kind: faultGitDown}, time.Duration(1+w.rng.IntN(15))*time.Minute)
}

// gitSlow delays every git request by wall time (the network is slow,
// not the simulation), so it stays small.
func (w *world) gitSlow() {
	f := &fault{kind: faultGitSlow, latency: time.Duration(20+w.rng.IntN(200)) * time.Millisecond}
	w.inject(f, time.Duration(5+w.rng.IntN(20))*time.Minute)
}

// arm503 makes ARM answer 503 to the next requests, of every route or of
// one; the agents and the soak's own calls both meet it.
func (w *world) arm503() {
	routes := w.s.ARM().RouteNames()
	f := &fault{kind: faultARM, times: 3 + w.rng.IntN(40)}
	if w.rng.IntN(2) == 0 {
		f.route = routes[w.rng.IntN(len(routes))]
	}
	w.inject(f, time.Duration(1+w.rng.IntN(20))*time.Minute)
}

func (w *world) restart() {
	fresh := w.rng.IntN(2) == 0
	if fresh {
		w.stats.freshWorkdirs++
	}
	w.restartSim(fresh)
}

// restartAPIServer stops the kube-apiserver for up to five minutes of
// virtual time, while the agents go on, and starts it again.
func (w *world) restartAPIServer() {
	r, ok := w.backend.(cluster.APIServerRestarter)
	if !ok {
		w.t.Fatalf("the %s backend cannot restart its API server", w.backend.Name())
	}
	if err := r.StopAPIServer(w.ctx); err != nil {
		w.t.Errorf("stop kube-apiserver: %v", err)
		return
	}
	w.advance(time.Duration(w.rng.IntN(5)) * time.Minute)
	if err := r.StartAPIServer(w.ctx); err != nil {
		w.t.Fatalf("start kube-apiserver again: %v", err)
	}
	w.stats.apiRestarts++
}

// secret notes a secret, and the forms it travels in.
func (w *world) secret(s string) {
	w.secrets = append(w.secrets, s, *b64(s))
	// A PEM key's body lines are secret on their own.
	if blk, _ := pem.Decode([]byte(s)); blk != nil {
		w.secrets = append(w.secrets, base64.StdEncoding.EncodeToString(blk.Bytes)[:40])
	}
}

func b64(s string) *string { return to.Ptr(base64.StdEncoding.EncodeToString([]byte(s))) }

func newKey() (privatePEM, authorized string, err error) {
	pub, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return "", "", err
	}
	blk, err := gossh.MarshalPrivateKey(priv, "")
	if err != nil {
		return "", "", err
	}
	sp, err := gossh.NewPublicKey(pub)
	if err != nil {
		return "", "", err
	}
	return string(pem.EncodeToMemory(blk)), strings.TrimSpace(string(gossh.MarshalAuthorizedKey(sp))), nil
}

// redact hides secrets in a message the soak prints.
func redact(s string, secrets []string) string {
	for _, x := range secrets {
		s = strings.ReplaceAll(s, x, "[secret]")
	}
	return s
}
