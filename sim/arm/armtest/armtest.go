// Package armtest holds what tests of gitopsim's ARM provider share: the
// validation cases of spec §1.4 as SDK request bodies, a configuration
// builder, and SSH key material. Our unit tests and e2e suite use it, and so
// can anyone testing their own automation against gitopsim.
package armtest

import (
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/base64"
	"encoding/pem"
	"strings"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore/to"
	"github.com/Azure/azure-sdk-for-go/sdk/resourcemanager/hybridkubernetes/armhybridkubernetes"
	"github.com/Azure/azure-sdk-for-go/sdk/resourcemanager/kubernetesconfiguration/armkubernetesconfiguration/v2"
	"golang.org/x/crypto/ssh"
)

// Config is a valid namespace-scoped configuration of url.
func Config(url string) armkubernetesconfiguration.SourceControlConfiguration {
	return armkubernetesconfiguration.SourceControlConfiguration{Properties: &armkubernetesconfiguration.SourceControlConfigurationProperties{
		RepositoryURL:        to.Ptr(url),
		OperatorNamespace:    to.Ptr("team-a"),
		OperatorInstanceName: to.Ptr("team-a-flux"),
		OperatorType:         to.Ptr(armkubernetesconfiguration.OperatorTypeFlux),
		OperatorScope:        to.Ptr(armkubernetesconfiguration.OperatorScopeTypeNamespace),
		OperatorParams:       to.Ptr("--git-path=releases"),
	}}
}

// ValidationCase is a configuration PUT that the provider must refuse with
// 400, Code, and a message containing Message.
type ValidationCase struct {
	Name    string
	Config  string // the configuration's name
	Body    armkubernetesconfiguration.SourceControlConfiguration
	Code    string
	Message string
}

// ValidationCases covers every validation rule of the spec, one case each.
func ValidationCases() []ValidationCase {
	b64 := func(s string) *string { return to.Ptr(base64.StdEncoding.EncodeToString([]byte(s))) }
	key := SSHKeyPEM()
	with := func(mut func(p *armkubernetesconfiguration.SourceControlConfigurationProperties)) armkubernetesconfiguration.SourceControlConfiguration {
		c := Config("ssh://git@127.0.0.1/team/app.git")
		mut(c.Properties)
		return c
	}
	return []ValidationCase{
		{"name with upper case", "Bad", Config("https://h/x.git"), "InvalidResourceName", "63 characters"},
		{"name too long", strings.Repeat("a", 64), Config("https://h/x.git"), "InvalidResourceName", "63 characters"},
		{"instance name too long", "c", with(func(p *armkubernetesconfiguration.SourceControlConfigurationProperties) {
			p.OperatorInstanceName = to.Ptr(strings.Repeat("a", 24))
		}), "InvalidParameter", "operatorInstanceName"},
		{"namespace with a dot", "c", with(func(p *armkubernetesconfiguration.SourceControlConfigurationProperties) {
			p.OperatorNamespace = to.Ptr("team.a")
		}), "InvalidParameter", "operatorNamespace"},
		{"namespace ends with hyphen", "c", with(func(p *armkubernetesconfiguration.SourceControlConfigurationProperties) {
			p.OperatorNamespace = to.Ptr("team-")
		}), "InvalidParameter", "operatorNamespace"},
		{"bad scope", "c", with(func(p *armkubernetesconfiguration.SourceControlConfigurationProperties) {
			p.OperatorScope = to.Ptr(armkubernetesconfiguration.OperatorScopeType("tenant"))
		}), "InvalidParameter", "operatorScope"},
		{"bad operator type", "c", with(func(p *armkubernetesconfiguration.SourceControlConfigurationProperties) {
			p.OperatorType = to.Ptr(armkubernetesconfiguration.OperatorType("argo"))
		}), "InvalidParameter", "Flux"},
		{"no repository url", "c", with(func(p *armkubernetesconfiguration.SourceControlConfigurationProperties) { p.RepositoryURL = nil }),
			"InvalidParameter", "repositoryUrl"},
		{"ftp url", "c", with(func(p *armkubernetesconfiguration.SourceControlConfigurationProperties) {
			p.RepositoryURL = to.Ptr("ftp://h/x")
		}),
			"InvalidParameter", "scheme"},
		{"ssh key with https url", "c", func() armkubernetesconfiguration.SourceControlConfiguration {
			c := Config("https://h/x.git")
			c.Properties.ConfigurationProtectedSettings = map[string]*string{"sshPrivateKey": b64(key)}
			return c
		}(), "InvalidParameter", "cannot be used with an HTTP(S)"},
		{"known hosts with https url", "c", func() armkubernetesconfiguration.SourceControlConfiguration {
			c := Config("https://h/x.git")
			c.Properties.SSHKnownHostsContents = b64(KnownHostsLine())
			return c
		}(), "InvalidParameter", "cannot be used with an HTTP(S)"},
		{"https user with ssh url", "c", with(func(p *armkubernetesconfiguration.SourceControlConfigurationProperties) {
			p.ConfigurationProtectedSettings = map[string]*string{"httpsUser": b64("u"), "httpsKey": b64("k")}
		}), "InvalidParameter", "only be used with an http"},
		{"https user without key", "c", func() armkubernetesconfiguration.SourceControlConfiguration {
			c := Config("https://h/x.git")
			c.Properties.ConfigurationProtectedSettings = map[string]*string{"httpsUser": b64("u")}
			return c
		}(), "InvalidParameter", "together"},
		{"https key not base64", "c", func() armkubernetesconfiguration.SourceControlConfiguration {
			c := Config("https://h/x.git")
			c.Properties.ConfigurationProtectedSettings = map[string]*string{"httpsUser": b64("u"), "httpsKey": to.Ptr("%%%")}
			return c
		}(), "InvalidParameter", "base64"},
		{"private key not PEM", "c", with(func(p *armkubernetesconfiguration.SourceControlConfigurationProperties) {
			p.ConfigurationProtectedSettings = map[string]*string{"sshPrivateKey": b64("-----BEGIN NOTHING-----\nAAAA\n-----END NOTHING-----\n")}
		}), "InvalidParameter", "not a valid PEM"},
		{"known hosts not base64", "c", with(func(p *armkubernetesconfiguration.SourceControlConfigurationProperties) {
			p.SSHKnownHostsContents = to.Ptr("@@not base64@@")
		}), "InvalidParameter", "base64"},
		{"known hosts garbage line", "c", with(func(p *armkubernetesconfiguration.SourceControlConfigurationProperties) {
			p.SSHKnownHostsContents = b64("127.0.0.1 ssh-ed25519 not-a-key\n")
		}), "InvalidParameter", "line 1"},
	}
}

// SSHKeyPEM is a new unencrypted Ed25519 private key in OpenSSH PEM.
func SSHKeyPEM() string {
	_, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		panic(err) // crypto/rand does not fail on supported platforms
	}
	blk, err := ssh.MarshalPrivateKey(priv, "")
	if err != nil {
		panic(err)
	}
	return string(pem.EncodeToMemory(blk))
}

// KnownHostsLine is a known_hosts line for a new host key of 127.0.0.1:2222.
func KnownHostsLine() string {
	pub, _, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		panic(err)
	}
	sp, err := ssh.NewPublicKey(pub)
	if err != nil {
		panic(err)
	}
	return "[127.0.0.1]:2222 " + strings.TrimSpace(string(ssh.MarshalAuthorizedKey(sp))) + "\n"
}

// AgentKey is a new agentPublicKeyCertificate: a base64 DER public key, as
// az connectedk8s sends it.
func AgentKey() string {
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		panic(err)
	}
	der, err := x509.MarshalPKIXPublicKey(&k.PublicKey)
	if err != nil {
		panic(err)
	}
	return base64.StdEncoding.EncodeToString(der)
}

// ConnectedCluster is a valid connected-cluster body, as az connectedk8s
// connect sends it: eastus, a system-assigned identity, a new agent key.
func ConnectedCluster() armhybridkubernetes.ConnectedCluster {
	return armhybridkubernetes.ConnectedCluster{
		Location: to.Ptr("eastus"),
		Identity: &armhybridkubernetes.ConnectedClusterIdentity{Type: to.Ptr(armhybridkubernetes.ResourceIdentityTypeSystemAssigned)},
		Properties: &armhybridkubernetes.ConnectedClusterProperties{
			AgentPublicKeyCertificate: to.Ptr(AgentKey()),
			Distribution:              to.Ptr("gitopsim"),
		},
	}
}
