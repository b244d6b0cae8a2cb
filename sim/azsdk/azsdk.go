// Package azsdk points the official Azure SDK for Go at a running gitopsim:
// the three things a program changes to move from Azure to gitopsim are the
// ARM endpoint, the CA it trusts and the credential, and this package makes
// all three from the arm section of endpoints.json.
//
//	e, _ := sim.ReadEndpoints(".gitopsim/endpoints.json")
//	az, _ := azsdk.New(e.ARM)
//	client, _ := armkubernetesconfiguration.NewSourceControlConfigurationsClient(az.SubscriptionID, az.Credential, az.Options)
package azsdk

import (
	"github.com/gitopsim/gitopsim/sim"
	"github.com/gitopsim/gitopsim/sim/internal/azclient"
)

// Audience is the ARM audience clients ask tokens for, as on public Azure.
const Audience = azclient.Audience

// Clients carries what an Azure SDK client constructor needs: the
// subscription, a credential against gitopsim's issuer, client options
// (endpoint, CA, no provider registration) and an HTTP client trusting the
// gitopsim CA. Onboard creates a connected cluster as `az connectedk8s
// connect` does.
type Clients = azclient.Clients

// Onboarded is a connected cluster made by Clients.Onboard, with the
// private key its agent authenticates with.
type Onboarded = azclient.Onboarded

// New builds SDK clients' options and credential from endpoints.json's arm
// section.
func New(e sim.ARMEndpoint) (*Clients, error) {
	return azclient.New(azclient.Endpoint(e))
}
