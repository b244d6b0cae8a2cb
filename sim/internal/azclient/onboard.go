package azclient

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/base64"
	"encoding/pem"
	"fmt"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore/to"
	"github.com/Azure/azure-sdk-for-go/sdk/resourcemanager/hybridkubernetes/armhybridkubernetes"
	"github.com/Azure/azure-sdk-for-go/sdk/resourcemanager/resources/armresources"

	"github.com/gitopsim/gitopsim/sim/clock"
)

// Onboarded is a connected cluster made by Onboard, with the private key
// its agent authenticates with.
type Onboarded struct {
	ID            string
	Name          string
	ResourceGroup string
	Key           *ecdsa.PrivateKey
	// KeyPEM is Key in PKCS#8 PEM, for storing it in the cluster.
	KeyPEM []byte
}

// Onboard does what `az connectedk8s connect` does on the Azure side:
// generate the agent's key pair and create the connected cluster with its
// public half, waiting for the long-running PUT. The resource group is
// created when missing.
func (c *Clients) Onboard(ctx context.Context, resourceGroup, name, location string) (*Onboarded, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("onboard %s: %w", name, err)
	}
	pub, err := x509.MarshalPKIXPublicKey(&key.PublicKey)
	if err != nil {
		return nil, fmt.Errorf("onboard %s: %w", name, err)
	}
	priv, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return nil, fmt.Errorf("onboard %s: %w", name, err)
	}
	groups, err := armresources.NewResourceGroupsClient(c.SubscriptionID, c.Credential, c.Options)
	if err != nil {
		return nil, err
	}
	if _, err := groups.CreateOrUpdate(ctx, resourceGroup, armresources.ResourceGroup{Location: to.Ptr(location)}, nil); err != nil {
		return nil, fmt.Errorf("onboard %s: resource group %s: %w", name, resourceGroup, err)
	}
	ccs, err := armhybridkubernetes.NewConnectedClusterClient(c.SubscriptionID, c.Credential, c.Options)
	if err != nil {
		return nil, err
	}
	poller, err := ccs.BeginCreate(ctx, resourceGroup, name, armhybridkubernetes.ConnectedCluster{
		Location: to.Ptr(location),
		Identity: &armhybridkubernetes.ConnectedClusterIdentity{Type: to.Ptr(armhybridkubernetes.ResourceIdentityTypeSystemAssigned)},
		Properties: &armhybridkubernetes.ConnectedClusterProperties{
			AgentPublicKeyCertificate: to.Ptr(base64.StdEncoding.EncodeToString(pub)),
			Distribution:              to.Ptr("gitopsim"),
			Infrastructure:            to.Ptr("gitopsim"),
		},
	}, nil)
	if err != nil {
		return nil, fmt.Errorf("onboard %s: %w", name, err)
	}
	// PollUntilDone refuses a frequency under a second outside test
	// binaries, and gitopsim finishes the operation on the next poll: poll
	// by hand with a short pause.
	wall := clock.Real()
	for !poller.Done() {
		if _, err := poller.Poll(ctx); err != nil {
			return nil, fmt.Errorf("onboard %s: %w", name, err)
		}
		if !poller.Done() {
			if err := wall.Sleep(ctx, 20*time.Millisecond); err != nil {
				return nil, fmt.Errorf("onboard %s: %w", name, err)
			}
		}
	}
	res, err := poller.Result(ctx)
	if err != nil {
		return nil, fmt.Errorf("onboard %s: %w", name, err)
	}
	return &Onboarded{
		ID: *res.ID, Name: name, ResourceGroup: resourceGroup, Key: key,
		KeyPEM: pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: priv}),
	}, nil
}
