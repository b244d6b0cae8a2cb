package arm

import (
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"time"
	"unicode/utf8"

	"golang.org/x/crypto/ssh"
)

// ProtectedSettingsTTL is how long Azure keeps a configuration's protected
// settings (spec §3.6).
const ProtectedSettingsTTL = 48 * time.Hour

// Compliance states (spec §1.3) and the message format of the real
// service: a JSON object inside a string.
const (
	CompliancePending   = "Pending"
	ComplianceInstalled = "Installed"
	ComplianceFailed    = "Failed"
	pendingMessage      = `{"OperatorMessage":null,"ClusterState":null}`
)

var (
	dnsLabelRE   = regexp.MustCompile(`^[a-z0-9]([-a-z0-9]*[a-z0-9])?$`)
	scpLikeURLRE = regexp.MustCompile(`^[^@/\s:]+@[^:/\s]+:[^\s]+$`)
)

type configuration struct {
	ID        string
	Name      string
	ClusterID string
	Sys       systemData
	Spec      ConfigSpec
	// Protected holds configurationProtectedSettings (values as the
	// client sent them, base64). It never leaves through the ARM API.
	Protected        map[string]string
	ProtectedWritten time.Time
	ProtectedFetched bool
	// ProtectedExpired is set when Azure purged the protected settings
	// before the agent fetched them; the configuration cannot install.
	ProtectedExpired bool
	State            string // provisioningState
	Compliance       Compliance
	PublicKey        string
	// Generation changes on every PUT (and differs between a deleted
	// configuration and its re-creation), so the agent can tell a
	// replaced configuration from the one it installed.
	Generation int64
}

// ConfigSpec is the writable part of a sourceControlConfiguration, as the
// agent receives it.
type ConfigSpec struct {
	RepositoryURL         string `json:"repositoryUrl"`
	OperatorNamespace     string `json:"operatorNamespace"`
	OperatorInstanceName  string `json:"operatorInstanceName"`
	OperatorType          string `json:"operatorType"`
	OperatorParams        string `json:"operatorParams"`
	OperatorScope         string `json:"operatorScope"`
	SSHKnownHostsContents string `json:"sshKnownHostsContents"`
	EnableHelmOperator    bool   `json:"enableHelmOperator"`
	HelmChartVersion      string `json:"helmChartVersion,omitempty"`
	HelmChartValues       string `json:"helmChartValues,omitempty"`
	// HasHelmProperties records whether helmOperatorProperties was given,
	// so that it is echoed as sent.
	HasHelmProperties bool `json:"hasHelmProperties,omitempty"`
}

// Compliance is complianceStatus as the agent reports it.
type Compliance struct {
	State             string    `json:"complianceState"`
	LastConfigApplied time.Time `json:"lastConfigApplied"`
	Message           string    `json:"message"`
	Level             string    `json:"messageLevel"`
}

func pendingCompliance() Compliance {
	return Compliance{State: CompliancePending, Message: pendingMessage, Level: "Information"}
}

// ComplianceMessage renders the JSON-in-a-string message of the real
// service; empty parts are null.
func ComplianceMessage(operatorMessage, clusterState string) string {
	part := func(s string) any {
		if s == "" {
			return nil
		}
		return s
	}
	b, _ := json.Marshal(struct {
		OperatorMessage any `json:"OperatorMessage"`
		ClusterState    any `json:"ClusterState"`
	}{part(operatorMessage), part(clusterState)})
	return string(b)
}

type complianceJSON struct {
	ComplianceState   string `json:"complianceState"`
	LastConfigApplied string `json:"lastConfigApplied"`
	Message           string `json:"message"`
	MessageLevel      string `json:"messageLevel"`
}

type helmPropsJSON struct {
	ChartVersion string `json:"chartVersion"`
	ChartValues  string `json:"chartValues"`
}

type configPropsJSON struct {
	RepositoryURL        string `json:"repositoryUrl"`
	OperatorNamespace    string `json:"operatorNamespace"`
	OperatorInstanceName string `json:"operatorInstanceName"`
	OperatorType         string `json:"operatorType"`
	OperatorParams       string `json:"operatorParams"`
	// ConfigurationProtectedSettings is always an empty object (never
	// what is stored); absent where the response model has no such member.
	ConfigurationProtectedSettings *struct{}      `json:"configurationProtectedSettings,omitempty"`
	OperatorScope                  string         `json:"operatorScope"`
	RepositoryPublicKey            string         `json:"repositoryPublicKey"`
	SSHKnownHostsContents          *string        `json:"sshKnownHostsContents"` // null when unset, as the service writes it
	EnableHelmOperator             bool           `json:"enableHelmOperator"`
	HelmOperatorProperties         *helmPropsJSON `json:"helmOperatorProperties,omitempty"`
	ProvisioningState              string         `json:"provisioningState"`
	ComplianceStatus               complianceJSON `json:"complianceStatus"`
	CreationTime                   string         `json:"creationTime,omitempty"`
	LastModifiedTime               string         `json:"lastModifiedTime,omitempty"`
}

type configJSON struct {
	ID         string          `json:"id"`
	Name       string          `json:"name"`
	Type       string          `json:"type"`
	SystemData systemData      `json:"systemData"`
	Properties configPropsJSON `json:"properties"`
}

const configType = "Microsoft.KubernetesConfiguration/sourceControlConfigurations"

// configJSONOf renders a configuration for the ARM API in the dialect of
// the request's api-version. Protected settings are never written.
func configJSONOf(cfg *configuration, d configDialect) configJSON {
	sp := cfg.Spec
	p := configPropsJSON{
		RepositoryURL:        sp.RepositoryURL,
		OperatorNamespace:    sp.OperatorNamespace,
		OperatorInstanceName: sp.OperatorInstanceName,
		OperatorType:         sp.OperatorType,
		OperatorParams:       sp.OperatorParams,
		OperatorScope:        sp.OperatorScope,
		RepositoryPublicKey:  cfg.PublicKey,
		EnableHelmOperator:   sp.EnableHelmOperator,
		ProvisioningState:    cfg.State,
		ComplianceStatus: complianceJSON{
			ComplianceState:   cfg.Compliance.State,
			LastConfigApplied: d.lastConfigApplied(cfg.Compliance.LastConfigApplied),
			Message:           cfg.Compliance.Message,
			MessageLevel:      d.level(cfg.Compliance),
		},
	}
	if sp.SSHKnownHostsContents != "" {
		p.SSHKnownHostsContents = &sp.SSHKnownHostsContents
	}
	if d.createForm {
		p.CreationTime, p.LastModifiedTime = d.timestamp(cfg.Sys.CreatedAt), d.timestamp(cfg.Sys.LastModifiedAt)
	} else {
		p.ConfigurationProtectedSettings = &struct{}{}
	}
	if sp.HasHelmProperties || sp.EnableHelmOperator {
		p.HelmOperatorProperties = &helmPropsJSON{ChartVersion: sp.HelmChartVersion, ChartValues: sp.HelmChartValues}
	}
	return configJSON{ID: cfg.ID, Name: cfg.Name, Type: configType, SystemData: cfg.Sys, Properties: p}
}

// parent resolves the cluster a configuration hangs under; store lock held.
func (s *Server) configParentLocked(c *call) (*cluster, *Error) {
	rp, typ := c.vars["clusterRp"], c.vars["clusterType"]
	var managed bool
	switch {
	case strings.EqualFold(rp, "Microsoft.Kubernetes") && strings.EqualFold(typ, "connectedClusters"):
	case strings.EqualFold(rp, "Microsoft.ContainerService") && strings.EqualFold(typ, "managedClusters"):
		managed = true
	default:
		return nil, badRequest(CodeInvalidResourceType,
			"The resource type '%s/%s' cannot hold sourceControlConfigurations; use Microsoft.Kubernetes/connectedClusters or Microsoft.ContainerService/managedClusters.", rp, typ)
	}
	return s.clusterLocked(c.vars["sub"], c.vars["rg"], managed, c.vars["cluster"])
}

func configID(parent *cluster, name string) string {
	return parent.ID + "/providers/" + configType + "/" + name
}

func (s *Server) listConfigs(c *call) *Error {
	s.lock(c.now)
	parent, e := s.configParentLocked(c)
	if e != nil {
		s.unlock()
		return e
	}
	prefix := key(parent.ID + "/providers/" + configType + "/")
	var items []any
	for _, cfg := range inOrder(s.store.configs, prefix) {
		items = append(items, configJSONOf(cfg, configDialectOf(c.apiVersion)))
	}
	s.unlock()
	return s.writePage(c, items)
}

// configNotFound is the provider's own 404 for a configuration that does
// not exist under an existing cluster, as the service words it. The code
// is not ResourceNotFound: the k8s-configuration extension reads that
// code as "the cluster is missing" (its show command's hint).
func (s *Server) configNotFound(c *call) *Error {
	return errorf(http.StatusNotFound, CodeNotFound, "SourceControlConfiguration with name '%s' not found.", c.vars["name"])
}

func (s *Server) getConfig(c *call) *Error {
	s.lock(c.now)
	defer s.unlock()
	parent, e := s.configParentLocked(c)
	if e != nil {
		return e
	}
	cfg, ok := s.store.configs[key(configID(parent, c.vars["name"]))]
	if !ok {
		return s.configNotFound(c)
	}
	writeJSON(c.w, http.StatusOK, configJSONOf(cfg, configDialectOf(c.apiVersion)))
	return nil
}

// deleteConfig answers 200 when the configuration existed and 204 when it
// did not; never 202, which the Go SDK's BeginDelete refuses.
func (s *Server) deleteConfig(c *call) *Error {
	s.lock(c.now)
	defer s.unlock()
	parent, e := s.configParentLocked(c)
	if e != nil {
		return e
	}
	k := key(configID(parent, c.vars["name"]))
	cfg, ok := s.store.configs[k]
	if !ok {
		c.w.WriteHeader(http.StatusNoContent)
		return nil
	}
	clear(cfg.Protected)
	delete(s.store.configs, k)
	if e := s.commitLocked(c); e != nil {
		return e
	}
	c.w.WriteHeader(http.StatusOK)
	return nil
}

// putConfig creates (201) or replaces (200) a configuration synchronously.
func (s *Server) putConfig(c *call) *Error {
	name := c.vars["name"]
	if len(name) > 63 || !dnsLabelRE.MatchString(name) {
		e := badRequest(CodeInvalidResourceName,
			"The configuration name '%s' is invalid: it must be at most 63 characters of lower-case letters, digits and '-', starting and ending with a letter or digit.", name)
		e.Target = "name"
		return e
	}
	raw, e := readBody(c)
	if e != nil {
		return e
	}
	c.logBody = redactConfigBody(raw)
	spec, protected, e := decodeConfig(raw, name)
	if e != nil {
		return e
	}
	s.lock(c.now)
	defer s.unlock()
	parent, e := s.configParentLocked(c)
	if e != nil {
		return e
	}
	if parent.State == "Deleting" {
		return errorf(http.StatusConflict, CodeConflict, "The cluster '%s' is being deleted.", parent.Name)
	}
	id := configID(parent, name)
	cfg, exists := s.store.configs[key(id)]
	status := http.StatusOK
	if !exists {
		cfg = &configuration{ID: id, Name: name, ClusterID: parent.ID, Sys: newSystemData(c.who, c.now)}
		s.store.configs[key(id)] = cfg
		status = http.StatusCreated
	}
	// PUT replaces: the agent reinstalls and reports again.
	clear(cfg.Protected)
	cfg.Spec, cfg.Protected, cfg.ProtectedFetched = spec, protected, false
	cfg.ProtectedWritten = time.Time{}
	if len(protected) > 0 {
		cfg.ProtectedWritten = c.now
	}
	cfg.State = "Succeeded"
	cfg.Compliance = pendingCompliance()
	cfg.PublicKey = publicKeyOf(protected)
	cfg.ProtectedExpired = false
	s.store.genSeq++
	cfg.Generation = s.store.genSeq
	cfg.Sys.touch(c.who, c.now)
	if e := s.commitLocked(c); e != nil {
		return e
	}
	writeJSON(c.w, status, configJSONOf(cfg, configDialectOf(c.apiVersion)))
	return nil
}

// purgeExpiredSettingsLocked deletes protected settings 48 hours after they
// were written. A configuration whose agent never fetched them fails, and
// only a delete and re-create brings it back.
func (s *Server) purgeExpiredSettingsLocked(now time.Time) {
	for _, cfg := range s.store.configs {
		if len(cfg.Protected) == 0 || now.Before(cfg.ProtectedWritten.Add(ProtectedSettingsTTL)) {
			continue
		}
		clear(cfg.Protected)
		cfg.Protected = nil
		s.store.notices = append(s.store.notices, Notice{ID: cfg.ID, Kind: NoticeProtectedSettingsPurged, Time: cfg.ProtectedWritten.Add(ProtectedSettingsTTL), Fetched: cfg.ProtectedFetched})
		if !cfg.ProtectedFetched {
			cfg.ProtectedExpired = true
			cfg.Compliance = Compliance{
				State: ComplianceFailed,
				Message: ComplianceMessage(
					"The configuration's protected settings (configurationProtectedSettings) were deleted by Azure 48 hours after they were written, before the cluster's agent fetched them; bring the cluster online, then delete and recreate the configuration with its protected settings.",
					"Failed"),
				Level: "Error",
			}
		}
	}
}

// publicKeyOf derives repositoryPublicKey from a supplied private key, as
// Arc reports it; empty when the cluster will generate its own key.
func publicKeyOf(protected map[string]string) string {
	b64 := protected["sshPrivateKey"]
	if b64 == "" {
		return ""
	}
	pemBytes, err := base64.StdEncoding.DecodeString(b64)
	if err != nil {
		return ""
	}
	signer, err := ssh.ParsePrivateKey(pemBytes)
	if err != nil {
		return ""
	}
	return strings.TrimSpace(string(ssh.MarshalAuthorizedKey(signer.PublicKey())))
}

// decodeConfig parses and validates a configuration body (spec §1.4).
func decodeConfig(raw json.RawMessage, name string) (ConfigSpec, map[string]string, *Error) {
	var sp ConfigSpec
	o, e := parseObject("", "SourceControlConfiguration", raw)
	if e != nil {
		return sp, nil, e
	}
	o.ignore("id", "name", "type", "systemData")
	props, ok, e := o.obj("properties", "SourceControlConfigurationProperties")
	if e != nil {
		return sp, nil, e
	}
	if e := o.unknown(); e != nil {
		return sp, nil, e
	}
	if !ok {
		return sp, nil, invalidParam("properties", "The 'properties' property is required.")
	}
	props.ignore("repositoryPublicKey", "provisioningState", "complianceStatus", "creationTime", "lastModifiedTime")
	strs := []struct {
		key string
		dst *string
	}{
		{"repositoryUrl", &sp.RepositoryURL}, {"operatorNamespace", &sp.OperatorNamespace},
		{"operatorInstanceName", &sp.OperatorInstanceName}, {"operatorType", &sp.OperatorType},
		{"operatorParams", &sp.OperatorParams}, {"operatorScope", &sp.OperatorScope},
		{"sshKnownHostsContents", &sp.SSHKnownHostsContents},
	}
	for _, f := range strs {
		v, _, e := props.str(f.key)
		if e != nil {
			return sp, nil, e
		}
		*f.dst = v
	}
	helm, _, e := props.boolish("enableHelmOperator")
	if e != nil {
		return sp, nil, e
	}
	sp.EnableHelmOperator = helm
	if hp, ok, e := props.obj("helmOperatorProperties", "HelmOperatorProperties"); e != nil {
		return sp, nil, e
	} else if ok {
		sp.HasHelmProperties = true
		if sp.HelmChartVersion, _, e = hp.str("chartVersion"); e != nil {
			return sp, nil, e
		}
		if sp.HelmChartValues, _, e = hp.str("chartValues"); e != nil {
			return sp, nil, e
		}
		if e := hp.unknown(); e != nil {
			return sp, nil, e
		}
	}
	protected, _, e := props.strMap("configurationProtectedSettings")
	if e != nil {
		return sp, nil, e
	}
	if e := props.unknown(); e != nil {
		return sp, nil, e
	}
	if e := validateSpec(&sp, protected, name); e != nil {
		clear(protected)
		return sp, nil, e
	}
	if len(protected) == 0 {
		protected = nil
	}
	return sp, protected, nil
}

func validateSpec(sp *ConfigSpec, protected map[string]string, name string) *Error {
	const p = "properties."
	if sp.OperatorInstanceName == "" {
		sp.OperatorInstanceName = name
	}
	if sp.OperatorNamespace == "" {
		sp.OperatorNamespace = "default"
	}
	// The instance name keeps the tools' 23-character limit; the namespace
	// may be any Kubernetes namespace name (the API's own description is
	// looser than the CLI's 23), which is how a too-long Helm operator
	// release name (spec §1.4) reaches the agent at all.
	for _, f := range []struct {
		field, v string
		max      int
	}{
		{"operatorInstanceName", sp.OperatorInstanceName, 23}, {"operatorNamespace", sp.OperatorNamespace, 63},
	} {
		if len(f.v) > f.max || !dnsLabelRE.MatchString(f.v) {
			return invalidParam(p+f.field,
				"Invalid value '%s' for %s: it must be at most %d characters of lower-case letters, digits and '-', starting and ending with a letter or digit.", f.v, f.field, f.max)
		}
	}
	// The service stores the enum's spelling: the CLI sends "flux" and
	// reads back "Flux".
	if sp.OperatorType != "" && !strings.EqualFold(sp.OperatorType, "Flux") {
		return invalidParam(p+"operatorType", "Invalid value '%s' for operatorType: the only supported operator type is 'Flux'.", sp.OperatorType)
	}
	sp.OperatorType = "Flux"
	switch strings.ToLower(sp.OperatorScope) {
	case "":
		sp.OperatorScope = "cluster"
	case "cluster", "namespace":
		sp.OperatorScope = strings.ToLower(sp.OperatorScope)
	default:
		return invalidParam(p+"operatorScope", "Invalid value '%s' for operatorScope: allowed values are 'cluster' and 'namespace'.", sp.OperatorScope)
	}
	if strings.TrimSpace(sp.RepositoryURL) == "" {
		return invalidParam(p+"repositoryUrl", "The 'repositoryUrl' property is required.")
	}
	isHTTP, err := checkRepoURL(sp.RepositoryURL)
	if err != nil {
		return invalidParam(p+"repositoryUrl",
			"Invalid repositoryUrl '%s': %v. Use http[s]://server/repo[.git], git://server/repo[.git], ssh://user@server/repo[.git] or user@server:repo[.git].", sp.RepositoryURL, err)
	}

	// The swagger allows any key (additionalProperties: string); the agent
	// reads sshPrivateKey, httpsUser and httpsKey, and keeps the others
	// as secret as those.
	const ps = p + "configurationProtectedSettings."
	sshKey, hasKey := protected["sshPrivateKey"]
	_, hasUser := protected["httpsUser"]
	_, hasToken := protected["httpsKey"]
	if isHTTP && (hasKey || sp.SSHKnownHostsContents != "") {
		return invalidParam(ps+"sshPrivateKey",
			"An SSH private key and known hosts contents cannot be used with an HTTP(S) repository URL '%s'; use an SSH URL, or httpsUser and httpsKey.", sp.RepositoryURL)
	}
	if (hasUser || hasToken) && !isHTTP {
		return invalidParam(ps+"httpsUser", "HTTPS credentials (httpsUser, httpsKey) can only be used with an http:// or https:// repository URL.")
	}
	if hasUser != hasToken {
		return invalidParam(ps+"httpsKey", "httpsUser and httpsKey must be given together.")
	}
	for _, k := range []string{"httpsUser", "httpsKey"} {
		if v, ok := protected[k]; ok {
			if b, err := base64.StdEncoding.DecodeString(v); err != nil || len(b) == 0 {
				return invalidParam(ps+k, "The protected setting '%s' must be a non-empty base64-encoded value.", k)
			}
		}
	}
	if hasKey {
		if e := checkPrivateKey(sshKey); e != nil {
			return e
		}
	}
	if sp.SSHKnownHostsContents != "" {
		if e := checkKnownHosts(sp.SSHKnownHostsContents); e != nil {
			return e
		}
	}
	sp.OperatorParams = impliedReadOnly(strings.TrimSpace(sp.OperatorParams))
	return nil
}

// checkRepoURL accepts the URL forms Arc tooling accepts and reports
// whether it is http(s).
func checkRepoURL(u string) (isHTTP bool, err error) {
	if scpLikeURLRE.MatchString(u) {
		return false, nil
	}
	pu, perr := url.Parse(u)
	if perr != nil {
		return false, errors.New("it does not parse as a URL")
	}
	switch strings.ToLower(pu.Scheme) {
	case "http", "https":
		isHTTP = true
	case "git", "ssh":
	case "":
		return false, errors.New("it has no scheme and is not of the form user@server:repo")
	default:
		return false, fmt.Errorf("the scheme '%s' is not supported", pu.Scheme)
	}
	if pu.Host == "" {
		return false, errors.New("it has no server")
	}
	if strings.Trim(pu.Path, "/") == "" {
		return false, errors.New("it names no repository")
	}
	return isHTTP, nil
}

func checkPrivateKey(b64 string) *Error {
	const target = "properties.configurationProtectedSettings.sshPrivateKey"
	pemBytes, err := base64.StdEncoding.DecodeString(b64)
	if err != nil {
		return invalidParam(target, "The protected setting 'sshPrivateKey' must be the base64 encoding of a PEM private key.")
	}
	if _, err := ssh.ParseRawPrivateKey(pemBytes); err != nil {
		var missing *ssh.PassphraseMissingError
		if errors.As(err, &missing) {
			return invalidParam(target, "The SSH private key in 'sshPrivateKey' is protected by a passphrase; Flux needs an unencrypted key.")
		}
		// Never echo the key or parser details that could quote it.
		return invalidParam(target, "The protected setting 'sshPrivateKey' is not a valid PEM RSA, ECDSA, DSA or Ed25519 private key.")
	}
	return nil
}

func checkKnownHosts(b64 string) *Error {
	const target = "properties.sshKnownHostsContents"
	b, err := base64.StdEncoding.DecodeString(b64)
	if err != nil || !utf8.Valid(b) {
		return invalidParam(target, "sshKnownHostsContents must be the base64 encoding of UTF-8 known_hosts text.")
	}
	for i, line := range strings.Split(string(b), "\n") {
		t := strings.TrimSpace(line)
		if t == "" || strings.HasPrefix(t, "#") {
			continue
		}
		if _, _, _, _, _, err := ssh.ParseKnownHosts([]byte(t)); err != nil {
			return invalidParam(target, "sshKnownHostsContents line %d is not a valid known_hosts entry: %v.", i+1, err)
		}
	}
	return nil
}

// impliedReadOnly prepends --git-readonly when neither --git-user nor
// --git-email is given, as Arc does.
func impliedReadOnly(params string) string {
	for _, f := range strings.Fields(params) {
		name, _, _ := strings.Cut(f, "=")
		if name == "--git-user" || name == "--git-email" || name == "--git-readonly" {
			return params
		}
	}
	if strings.TrimSpace(params) == "" {
		return "--git-readonly"
	}
	return "--git-readonly " + params
}

// redactConfigBody replaces every protected setting value with a marker,
// for the request log.
func redactConfigBody(raw json.RawMessage) json.RawMessage {
	var m map[string]any
	if err := json.Unmarshal(raw, &m); err != nil {
		return nil // an unparsable body may hold anything: log none of it
	}
	for k, v := range m {
		if !strings.EqualFold(k, "properties") {
			continue
		}
		props, ok := v.(map[string]any)
		if !ok {
			continue
		}
		for pk, pv := range props {
			if strings.EqualFold(pk, "configurationProtectedSettings") {
				if ps, ok := pv.(map[string]any); ok {
					for sk := range ps {
						ps[sk] = "[redacted]"
					}
				} else {
					props[pk] = "[redacted]"
				}
			}
		}
	}
	b, err := json.Marshal(m)
	if err != nil {
		return nil
	}
	return b
}
