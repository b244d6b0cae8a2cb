// Package azclient builds official Azure SDK clients for a gitopsim ARM
// endpoint. It is the dependency-free core of sim/azsdk, so that package
// sim itself can onboard clusters through the public API.
package azclient

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net/http"
	"os"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/arm"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/cloud"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/policy"
	"github.com/Azure/azure-sdk-for-go/sdk/azidentity"
)

// Endpoint is the arm section of endpoints.json.
type Endpoint struct {
	URL            string
	CAFile         string
	TenantID       string
	SubscriptionID string
	AuthorityHost  string
	ClientID       string
	ClientSecret   string
}

// Audience is the ARM audience clients ask tokens for, as on public Azure.
const Audience = "https://management.core.windows.net/"

// Clients carries what an Azure SDK client constructor needs.
type Clients struct {
	SubscriptionID string
	// Credential is an azidentity client-secret credential against
	// gitopsim's issuer.
	Credential azcore.TokenCredential
	// Options configure ARM clients: gitopsim's endpoint, its CA, and no
	// provider registration (gitopsim reports every provider Registered).
	Options *arm.ClientOptions
	// Cloud is the cloud configuration inside Options.
	Cloud cloud.Configuration
	// HTTPClient trusts the gitopsim CA, for raw requests.
	HTTPClient *http.Client
}

// New builds SDK clients' options and credential from endpoints.json's arm
// section.
func New(e Endpoint) (*Clients, error) {
	if e.URL == "" {
		return nil, errors.New("azclient: endpoints have no ARM url (is gitopsim up?)")
	}
	pem, err := os.ReadFile(e.CAFile)
	if err != nil {
		return nil, fmt.Errorf("azclient: read CA: %w", err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(pem) {
		return nil, fmt.Errorf("azclient: no certificate in %s", e.CAFile)
	}
	hc := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}}}
	cfg := cloud.Configuration{
		ActiveDirectoryAuthorityHost: e.AuthorityHost,
		Services: map[cloud.ServiceName]cloud.ServiceConfiguration{
			cloud.ResourceManager: {Endpoint: e.URL, Audience: Audience},
		},
	}
	cred, err := azidentity.NewClientSecretCredential(e.TenantID, e.ClientID, e.ClientSecret, &azidentity.ClientSecretCredentialOptions{
		ClientOptions: azcore.ClientOptions{Cloud: cfg, Transport: hc},
		// gitopsim's issuer is not on MSAL's list of known authorities.
		DisableInstanceDiscovery: true,
	})
	if err != nil {
		return nil, fmt.Errorf("azclient: credential: %w", err)
	}
	return &Clients{
		SubscriptionID: e.SubscriptionID,
		Credential:     cred,
		Cloud:          cfg,
		HTTPClient:     hc,
		Options: &arm.ClientOptions{
			ClientOptions:         policy.ClientOptions{Cloud: cfg, Transport: hc},
			DisableRPRegistration: true,
		},
	}, nil
}

// WithAPIVersion returns a copy of Options that pins the api-version.
func (c *Clients) WithAPIVersion(v string) *arm.ClientOptions {
	o := *c.Options
	o.APIVersion = v
	return &o
}
