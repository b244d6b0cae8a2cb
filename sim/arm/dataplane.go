package arm

import (
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/rsa"
	"encoding/json"
	"errors"
	"net/http"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// The agent data plane is what the in-cluster Arc agent talks to instead of
// the public ARM API: heartbeats, desired configurations with their
// protected settings, and compliance reports. Every path names a connected
// cluster, and every request carries a short JWT signed with the private
// key whose public half is that cluster's agentPublicKeyCertificate, so one
// cluster's agent can never read or write another's configurations.
const (
	agentPrefix = "agent/v1/subscriptions/{sub}/resourceGroups/{rg}/providers/Microsoft.Kubernetes/connectedClusters/{name}"
	// AgentAudience is the aud claim of agent tokens.
	AgentAudience = "gitopsim-agent"
	// maxAgentTokenLifetime bounds how long a signed agent token is good for.
	maxAgentTokenLifetime = 10 * time.Minute
)

// Heartbeat is what an agent reports about its cluster.
type Heartbeat struct {
	AgentVersion      string `json:"agentVersion"`
	KubernetesVersion string `json:"kubernetesVersion"`
	TotalNodeCount    int    `json:"totalNodeCount"`
	TotalCoreCount    int    `json:"totalCoreCount"`
}

// HeartbeatResult is the cluster as ARM sees it after a heartbeat.
type HeartbeatResult struct {
	ConnectivityStatus string    `json:"connectivityStatus"`
	IdentityExpires    time.Time `json:"managedIdentityCertificateExpirationTime"`
}

// DesiredConfiguration is one configuration of the agent's cluster, with
// its protected settings (values base64, as the client sent them) while
// Azure still keeps them.
type DesiredConfiguration struct {
	ID                string            `json:"id"`
	Name              string            `json:"name"`
	Generation        int64             `json:"generation"`
	Spec              ConfigSpec        `json:"spec"`
	ProtectedSettings map[string]string `json:"protectedSettings,omitempty"`
	// ProtectedSettingsExpired means Azure deleted the protected settings
	// (48 hours) before any agent fetched them: the configuration is
	// Failed until it is deleted and created again.
	ProtectedSettingsExpired bool       `json:"protectedSettingsExpired,omitempty"`
	Compliance               Compliance `json:"compliance"`
	PublicKey                string     `json:"repositoryPublicKey"`
}

// ComplianceReport is an agent's report on one configuration.
type ComplianceReport struct {
	// Generation is the configuration generation the report is about; a
	// report on a replaced generation is refused with 409.
	Generation          int64     `json:"generation"`
	ComplianceState     string    `json:"complianceState"`
	Message             string    `json:"message"`
	MessageLevel        string    `json:"messageLevel"`
	LastConfigApplied   time.Time `json:"lastConfigApplied"`
	RepositoryPublicKey string    `json:"repositoryPublicKey"`
}

var complianceStates = []string{"Pending", "Installed", "Failed", "Compliant", "Noncompliant"}

func (s *Server) agentRoutes() {
	add := func(name, suffix string, methods map[string]handler) {
		r := newRoute(name, agentPrefix+suffix, nil, methods)
		r.public = true // agents authenticate with their own key, not Entra ID
		r.dataPlane = true
		s.router.add(r)
	}
	add("agentHeartbeat", "/heartbeat", map[string]handler{http.MethodPost: s.agentHeartbeat})
	add("agentConfigurations", "/configurations", map[string]handler{http.MethodGet: s.agentConfigurations})
	add("agentComplianceReport", "/configurations/{config}/status", map[string]handler{http.MethodPut: s.agentReport})
}

// agentCluster authenticates the agent and returns its cluster; store lock
// held on success.
func (s *Server) agentCluster(c *call) (*cluster, *Error) {
	raw, ok := strings.CutPrefix(c.r.Header.Get("Authorization"), "Bearer ")
	if !ok || raw == "" {
		return nil, errorf(http.StatusUnauthorized, CodeAuthenticationFailed, "Authentication failed. Agent requests need 'Authorization: Bearer <token signed with the cluster's agent key>'.")
	}
	claims := jwt.MapClaims{}
	// Read the subject first, without trusting it, to know which key to
	// check the signature against.
	if _, _, err := jwt.NewParser().ParseUnverified(raw, claims); err != nil {
		return nil, errorf(http.StatusUnauthorized, CodeInvalidAuthenticationToken, "The agent token is malformed.")
	}
	sub, _ := claims.GetSubject()
	id := clusterID(c.vars["sub"], c.vars["rg"], false, c.vars["name"])
	s.lock(c.now)
	cl, ok := s.store.clusters[key(id)]
	if !ok {
		s.unlock()
		return nil, errorf(http.StatusNotFound, CodeResourceNotFound, "The connected cluster '%s' does not exist.", c.vars["name"])
	}
	if !strings.EqualFold(sub, id) {
		s.unlock()
		return nil, errorf(http.StatusForbidden, CodeAuthorizationFailed, "The agent of '%s' is not authorized to access connected cluster '%s'.", sub, id)
	}
	pub, err := ParseAgentPublicKey(cl.Props.AgentPublicKeyCertificate)
	if err != nil {
		s.unlock()
		return nil, errorf(http.StatusForbidden, CodeAuthorizationFailed, "The connected cluster '%s' has no usable agent public key.", id)
	}
	now := c.now
	check := []jwt.ParserOption{jwt.WithTimeFunc(func() time.Time { return now }), jwt.WithAudience(AgentAudience), jwt.WithExpirationRequired(),
		jwt.WithIssuedAt(), jwt.WithValidMethods([]string{"ES256", "RS256", "EdDSA"})}
	signed := raw + "\x00" + cl.Props.AgentPublicKeyCertificate
	if s.agentTokens.verified(signed) {
		// The signature checked out against this key before: only the
		// claims, which depend on the time, are checked again.
		err = jwt.NewValidator(check...).Validate(claims)
	} else {
		_, err = jwt.ParseWithClaims(raw, jwt.MapClaims{}, func(t *jwt.Token) (any, error) {
			switch pub.(type) {
			case *ecdsa.PublicKey, *rsa.PublicKey, ed25519.PublicKey:
				return pub, nil
			}
			return nil, errors.New("unsupported agent key type")
		}, check...)
		if exp, _ := claims.GetExpirationTime(); err == nil && exp != nil {
			s.agentTokens.add(signed, exp.Time, now)
		}
	}
	if err == nil {
		iat, _ := claims.GetIssuedAt()
		exp, _ := claims.GetExpirationTime()
		if iat == nil || exp.Sub(iat.Time) > maxAgentTokenLifetime {
			err = errors.New("lifetime too long")
		}
	}
	if err != nil {
		s.unlock()
		return nil, errorf(http.StatusUnauthorized, CodeInvalidAuthenticationToken,
			"The agent token for '%s' is not valid: it must be signed with the private key matching agentPublicKeyCertificate, have audience '%s' and live at most %v.", id, AgentAudience, maxAgentTokenLifetime)
	}
	if cl.State == "Deleting" {
		s.unlock()
		return nil, errorf(http.StatusNotFound, CodeResourceNotFound, "The connected cluster '%s' is being deleted.", id)
	}
	return cl, nil
}

// heartbeatSaveEvery bounds how often a heartbeat that changes nothing but
// the time is written to the state dir.
const heartbeatSaveEvery = time.Minute

func (s *Server) agentHeartbeat(c *call) *Error {
	raw, e := readBody(c)
	if e != nil {
		return e
	}
	c.logBody = raw
	var hb Heartbeat
	dec := json.NewDecoder(strings.NewReader(string(raw)))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&hb); err != nil {
		return badRequest(CodeInvalidRequestContent, "The heartbeat could not be read: %v.", err)
	}
	cl, e := s.agentCluster(c)
	if e != nil {
		return e
	}
	defer s.unlock()
	if connectivity(cl, c.now) == "Expired" {
		return errorf(http.StatusForbidden, "ClusterIdentityExpired",
			"The managed identity certificate of '%s' expired at %s; delete the connected cluster and onboard it again.", cl.ID, cl.IdentityExpires.UTC().Format(time.RFC3339))
	}
	before := cl.Props
	cl.LastHeartbeat = c.now
	cl.IdentityExpires = c.now.Add(IdentityLifetime)
	cl.Props.AgentVersion, cl.Props.KubernetesVersion = hb.AgentVersion, hb.KubernetesVersion
	cl.Props.TotalNodeCount, cl.Props.TotalCoreCount = hb.TotalNodeCount, hb.TotalCoreCount
	// Each heartbeat moves the time only; writing the whole state for
	// it would make a fleet's heartbeats the state dir's main load. What
	// it reports is written at once; the time when the state was last
	// written heartbeatSaveEvery ago or more, so a crash loses less than
	// that of any cluster's (Azure shows a cluster Offline only 15 minutes
	// after its last heartbeat).
	s.savedMu.Lock()
	savedAt := s.savedAt
	s.savedMu.Unlock()
	if cl.Props != before || c.now.Sub(savedAt) >= heartbeatSaveEvery {
		if e := s.commitLocked(c); e != nil {
			return e
		}
	}
	writeJSON(c.w, http.StatusOK, HeartbeatResult{ConnectivityStatus: connectivity(cl, c.now), IdentityExpires: cl.IdentityExpires})
	return nil
}

func (s *Server) agentConfigurations(c *call) *Error {
	cl, e := s.agentCluster(c)
	if e != nil {
		return e
	}
	defer s.unlock()
	prefix := key(cl.ID + "/providers/" + configType + "/")
	out := []DesiredConfiguration{}
	changed := false
	for _, cfg := range inOrder(s.store.configs, prefix) {
		d := DesiredConfiguration{ID: cfg.ID, Name: cfg.Name, Generation: cfg.Generation, Spec: cfg.Spec, Compliance: cfg.Compliance, PublicKey: cfg.PublicKey, ProtectedSettingsExpired: cfg.ProtectedExpired}
		if len(cfg.Protected) > 0 {
			d.ProtectedSettings = make(map[string]string, len(cfg.Protected))
			for k, v := range cfg.Protected {
				d.ProtectedSettings[k] = v
			}
			changed = changed || !cfg.ProtectedFetched
			cfg.ProtectedFetched = true
		}
		out = append(out, d)
	}
	// A poll changes the state only the first time it hands out a
	// configuration's protected settings.
	if changed {
		if e := s.commitLocked(c); e != nil {
			return e
		}
	}
	writeJSON(c.w, http.StatusOK, map[string]any{"value": out})
	return nil
}

func (s *Server) agentReport(c *call) *Error {
	raw, e := readBody(c)
	if e != nil {
		return e
	}
	c.logBody = raw
	var rep ComplianceReport
	dec := json.NewDecoder(strings.NewReader(string(raw)))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&rep); err != nil {
		return badRequest(CodeInvalidRequestContent, "The compliance report could not be read: %v.", err)
	}
	if !slices.Contains(complianceStates, rep.ComplianceState) {
		return invalidParam("complianceState", "Invalid complianceState '%s': allowed values are %s.", rep.ComplianceState, strings.Join(complianceStates, ", "))
	}
	cl, e := s.agentCluster(c)
	if e != nil {
		return e
	}
	defer s.unlock()
	cfg, ok := s.store.configs[key(cl.ID+"/providers/"+configType+"/"+c.vars["config"])]
	if !ok {
		return errorf(http.StatusNotFound, CodeResourceNotFound, "The configuration '%s' does not exist on '%s'; it may have been deleted.", c.vars["config"], cl.Name)
	}
	if rep.Generation != cfg.Generation {
		return errorf(http.StatusConflict, CodeConflict, "The report is about generation %d of '%s', but the configuration is at generation %d; fetch it again.", rep.Generation, cfg.Name, cfg.Generation)
	}
	level := rep.MessageLevel
	if level == "" {
		level = "Information"
	}
	compliance, publicKey := Compliance{State: rep.ComplianceState, LastConfigApplied: rep.LastConfigApplied, Message: rep.Message, Level: level}, cfg.PublicKey
	if rep.RepositoryPublicKey != "" {
		publicKey = rep.RepositoryPublicKey
	}
	// An agent reports after every sync; most reports repeat the last.
	if compliance != cfg.Compliance || publicKey != cfg.PublicKey {
		cfg.Compliance, cfg.PublicKey = compliance, publicKey
		if e := s.commitLocked(c); e != nil {
			return e
		}
	}
	c.w.WriteHeader(http.StatusNoContent)
	return nil
}

// agentTokens remembers the agent tokens whose signature checked out, with
// the agent key they were checked against, until they expire. An agent
// reuses its token for minutes (AgentClient's tokenReuse), and checking an
// ECDSA signature on every heartbeat and poll was most of what a fleet of
// agents cost the server.
type agentTokens struct {
	mu   sync.Mutex
	good map[string]time.Time // token + "\x00" + agentPublicKeyCertificate → expiry
	// swept is the size after the last removal of expired tokens.
	swept int
}

// verified reports whether the token and key are known to match.
func (t *agentTokens) verified(signed string) bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	_, ok := t.good[signed]
	return ok
}

// add remembers a verified token; whenever the cache has doubled, tokens
// expired by now are forgotten.
func (t *agentTokens) add(signed string, exp, now time.Time) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.good == nil {
		t.good = map[string]time.Time{}
	}
	t.good[signed] = exp
	if len(t.good) >= max(1024, 2*t.swept) {
		for k, e := range t.good {
			if e.Before(now) {
				delete(t.good, k)
			}
		}
		t.swept = len(t.good)
	}
}
