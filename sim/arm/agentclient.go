package arm

import (
	"bytes"
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/rsa"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/gitopsim/gitopsim/sim/clock"
)

// AgentClientOptions configures an AgentClient.
type AgentClientOptions struct {
	// URL is the ARM server's base URL (endpoints.json arm.url).
	URL string
	// HTTPClient must trust the gitopsim CA; the agent's link to ARM (and
	// its faults) lives in its transport.
	HTTPClient *http.Client
	// ClusterID is the connected cluster's resource id.
	ClusterID string
	// Key is the private half of the cluster's agentPublicKeyCertificate.
	Key crypto.Signer
	// Clock stamps the signed tokens; it must be the simulator's clock.
	Clock clock.Clock
}

// AgentClient is the in-cluster agent's client for the data plane.
type AgentClient struct {
	opts AgentClientOptions
	base string

	mu       sync.Mutex
	tok      string
	tokIssue time.Time
}

// tokenReuse is how long a signed token is reused: well inside its five
// minutes of validity. Signing per request dominated long virtual runs
// (an offline agent tries every 30 seconds for days).
const tokenReuse = 4 * time.Minute

// NewAgentClient validates opts.
func NewAgentClient(opts AgentClientOptions) (*AgentClient, error) {
	if opts.URL == "" || opts.ClusterID == "" || opts.Key == nil || opts.HTTPClient == nil || opts.Clock == nil {
		return nil, errors.New("arm: agent client needs URL, HTTPClient, ClusterID, Key and Clock")
	}
	if _, err := SignAgentToken(opts.ClusterID, opts.Key, opts.Clock); err != nil {
		return nil, err
	}
	segs := strings.Split(strings.Trim(opts.ClusterID, "/"), "/")
	if len(segs) != 8 || !strings.EqualFold(segs[6], "connectedClusters") {
		return nil, fmt.Errorf("arm: %q is not a connected cluster id", opts.ClusterID)
	}
	for i, s := range segs {
		segs[i] = url.PathEscape(s)
	}
	base := strings.TrimRight(opts.URL, "/") + "/agent/v1/" + strings.Join(segs, "/")
	return &AgentClient{opts: opts, base: base}, nil
}

func (a *AgentClient) token() (string, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	now := a.opts.Clock.Now()
	if a.tok != "" && !now.Before(a.tokIssue) && now.Sub(a.tokIssue) < tokenReuse {
		return a.tok, nil
	}
	t, err := SignAgentToken(a.opts.ClusterID, a.opts.Key, a.opts.Clock)
	if err != nil {
		return "", err
	}
	a.tok, a.tokIssue = t, now
	return t, nil
}

// SignAgentToken makes the bearer token an agent presents: a JWT naming
// its cluster, signed with the agent key, valid five minutes on clk.
func SignAgentToken(clusterID string, key crypto.Signer, clk clock.Clock) (string, error) {
	var m jwt.SigningMethod
	switch key.(type) {
	case *ecdsa.PrivateKey:
		m = jwt.SigningMethodES256
	case *rsa.PrivateKey:
		m = jwt.SigningMethodRS256
	case ed25519.PrivateKey:
		m = jwt.SigningMethodEdDSA
	default:
		return "", fmt.Errorf("arm: agent key type %T not supported", key)
	}
	now := clk.Now()
	t := jwt.NewWithClaims(m, jwt.MapClaims{
		"sub": clusterID, "aud": AgentAudience,
		"iat": now.Unix(), "nbf": now.Add(-time.Minute).Unix(), "exp": now.Add(5 * time.Minute).Unix(),
	})
	return t.SignedString(key)
}

// do sends one request and decodes a JSON answer into out (if not nil).
// ARM errors come back as *Error with their status and code.
func (a *AgentClient) do(ctx context.Context, method, path string, in, out any) error {
	var body io.Reader
	if in != nil {
		b, err := json.Marshal(in)
		if err != nil {
			return err
		}
		body = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, a.base+path, body)
	if err != nil {
		return err
	}
	tok, err := a.token()
	if err != nil {
		return fmt.Errorf("sign agent token: %w", err)
	}
	req.Header.Set("Authorization", "Bearer "+tok)
	if in != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := a.opts.HTTPClient.Do(req)
	if err != nil {
		return fmt.Errorf("agent %s %s: %w", method, path, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, maxBodyBytes))
	if err != nil {
		return fmt.Errorf("agent %s %s: %w", method, path, err)
	}
	if resp.StatusCode >= 300 {
		var env envelope
		if json.Unmarshal(b, &env) == nil && env.Error.Code != "" {
			return &Error{Status: resp.StatusCode, Code: env.Error.Code, Message: env.Error.Message}
		}
		return &Error{Status: resp.StatusCode, Code: http.StatusText(resp.StatusCode), Message: strings.TrimSpace(string(b))}
	}
	if out != nil {
		if err := json.Unmarshal(b, out); err != nil {
			return fmt.Errorf("agent %s %s: decode: %w", method, path, err)
		}
	}
	return nil
}

// Heartbeat reports the cluster's state; it keeps the cluster Connected and
// renews its identity.
func (a *AgentClient) Heartbeat(ctx context.Context, hb Heartbeat) (*HeartbeatResult, error) {
	var out HeartbeatResult
	if err := a.do(ctx, http.MethodPost, "/heartbeat", hb, &out); err != nil {
		return nil, err
	}
	return &out, nil
}

// Configurations returns the desired configurations of the cluster, with
// their protected settings while Azure keeps them.
func (a *AgentClient) Configurations(ctx context.Context) ([]DesiredConfiguration, error) {
	var out struct {
		Value []DesiredConfiguration `json:"value"`
	}
	if err := a.do(ctx, http.MethodGet, "/configurations", nil, &out); err != nil {
		return nil, err
	}
	return out.Value, nil
}

// ReportCompliance sets a configuration's complianceStatus (and
// repositoryPublicKey when given).
func (a *AgentClient) ReportCompliance(ctx context.Context, name string, r ComplianceReport) error {
	return a.do(ctx, http.MethodPut, "/configurations/"+url.PathEscape(name)+"/status", r, nil)
}
