package main

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore/to"
	"github.com/Azure/azure-sdk-for-go/sdk/resourcemanager/kubernetesconfiguration/armkubernetesconfiguration/v2"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"

	"github.com/gitopsim/gitopsim/sim"
	"github.com/gitopsim/gitopsim/sim/azsdk"
)

// userFlow is the README's promise, with only endpoints.json, the git CLI,
// the Azure SDK and client-go: push manifests, create a configuration on
// the local connected cluster, see them applied and Installed reported.
func userFlow(t *testing.T, e *sim.Endpoints) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	home := t.TempDir()
	src := filepath.Join(home, "src")
	if err := os.MkdirAll(src, 0o755); err != nil {
		t.Fatal(err)
	}
	manifest := "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: hello\n  namespace: demo\ndata:\n  greeting: hi\n"
	if err := os.WriteFile(filepath.Join(src, "hello.yaml"), []byte(manifest), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, args := range [][]string{
		{"init", "-q", "-b", "main"}, {"add", "hello.yaml"}, {"commit", "-q", "-m", "hello"},
		{"push", "-q", e.Git.SSHURL + "/demo/app.git", "main"},
	} {
		cmd := exec.CommandContext(ctx, "git", args...)
		cmd.Dir = src
		cmd.Env = []string{"PATH=" + os.Getenv("PATH"), "HOME=" + home, "GIT_CONFIG_GLOBAL=/dev/null", "GIT_CONFIG_NOSYSTEM=1",
			"GIT_AUTHOR_NAME=u", "GIT_AUTHOR_EMAIL=u@example.com", "GIT_COMMITTER_NAME=u", "GIT_COMMITTER_EMAIL=u@example.com",
			fmt.Sprintf("GIT_SSH_COMMAND=ssh -F /dev/null -i %s -o IdentitiesOnly=yes -o BatchMode=yes -o UserKnownHostsFile=%s", e.Git.SSHPrivateKeyFile, e.Git.KnownHostsFile)}
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("git %s: %v\n%s", strings.Join(args, " "), err, out)
		}
	}
	configs := configsClient(t, e)
	b64 := func(s string) *string { return to.Ptr(base64.StdEncoding.EncodeToString([]byte(s))) }
	cc := e.ConnectedClusters[0]
	_, err := configs.CreateOrUpdate(ctx, cc.ResourceGroup, "Microsoft.Kubernetes", "connectedClusters", cc.Name, "demo",
		armkubernetesconfiguration.SourceControlConfiguration{Properties: &armkubernetesconfiguration.SourceControlConfigurationProperties{
			RepositoryURL: to.Ptr(e.Git.HTTPSURL + "/demo/app.git"), OperatorNamespace: to.Ptr("demo"), OperatorInstanceName: to.Ptr("demo"),
			OperatorType: to.Ptr(armkubernetesconfiguration.OperatorTypeFlux), OperatorScope: to.Ptr(armkubernetesconfiguration.OperatorScopeTypeNamespace),
			OperatorParams:                 to.Ptr("--git-branch=main"),
			ConfigurationProtectedSettings: map[string]*string{"httpsUser": b64(e.Git.HTTPSUser), "httpsKey": b64(e.Git.HTTPSToken)},
		}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := clientcmd.BuildConfigFromFlags("", cc.Kubeconfig)
	if err != nil {
		t.Fatal(err)
	}
	kube := kubernetes.NewForConfigOrDie(cfg)
	var last string
	for {
		cm, err := kube.CoreV1().ConfigMaps("demo").Get(ctx, "hello", metav1.GetOptions{})
		got, gerr := configs.Get(ctx, cc.ResourceGroup, "Microsoft.Kubernetes", "connectedClusters", cc.Name, "demo", nil)
		if gerr == nil {
			last = string(*got.Properties.ComplianceStatus.ComplianceState) + " " + *got.Properties.ComplianceStatus.Message
		}
		if err == nil && cm.Data["greeting"] == "hi" && strings.HasPrefix(last, "Installed ") {
			return
		}
		select {
		case <-ctx.Done():
			t.Fatalf("manifest not applied within a minute (fast profile); compliance %q, configmap err %v", last, err)
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// webView checks what up serves beside the APIs: the web view named in
// endpoints.json shows the local cluster with the configuration userFlow
// made, and a jump of two days on its clock leaves the clients' tokens
// good (they are timed on the wall clock, as clients time them).
func webView(t *testing.T, e *sim.Endpoints) {
	t.Helper()
	if e.UI == nil || !strings.HasPrefix(e.UI.URL, "http://127.0.0.1:") {
		t.Fatalf("endpoints ui = %+v", e.UI)
	}
	page, err := http.Get(e.UI.URL)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(page.Body)
	page.Body.Close()
	if page.StatusCode != 200 || !strings.Contains(string(body), `id="gitopsim-data"`) {
		t.Fatalf("page: %d\n%.300s", page.StatusCode, body)
	}
	var st struct {
		Clusters []struct {
			Key, Connectivity string
			Configurations    []struct{ Name, State string }
		}
	}
	getJSON(t, e.UI.URL+"api/state", &st)
	if len(st.Clusters) != 1 || st.Clusters[0].Key != "gitopsim/local" || len(st.Clusters[0].Configurations) != 1 || st.Clusters[0].Configurations[0].Name != "demo" {
		t.Errorf("web view state: %+v", st.Clusters)
	}
	configs := configsClient(t, e)
	cc := e.ConnectedClusters[0]
	// The client's token is fetched now and cached for the next call.
	if _, err := configs.Get(context.Background(), cc.ResourceGroup, "Microsoft.Kubernetes", "connectedClusters", cc.Name, "demo", nil); err != nil {
		t.Fatal(err)
	}
	resp, err := http.Post(e.UI.URL+"api/clock/jump", "application/json", strings.NewReader(`{"by": "48h"}`))
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("jump: %v %v", err, resp)
	}
	resp.Body.Close()
	if _, err := configs.Get(context.Background(), cc.ResourceGroup, "Microsoft.Kubernetes", "connectedClusters", cc.Name, "demo", nil); err != nil {
		t.Errorf("an ARM call after a 48h jump, with the token from before it: %v", err)
	}
}

func getJSON(t *testing.T, url string, out any) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if err := json.NewDecoder(resp.Body).Decode(out); err != nil {
		t.Fatalf("%s: %v", url, err)
	}
}

// configsClient is the Azure SDK's configurations client for e's ARM.
func configsClient(t *testing.T, e *sim.Endpoints) *armkubernetesconfiguration.SourceControlConfigurationsClient {
	t.Helper()
	az, err := azsdk.New(e.ARM)
	if err != nil {
		t.Fatal(err)
	}
	configs, err := armkubernetesconfiguration.NewSourceControlConfigurationsClient(az.SubscriptionID, az.Credential, az.Options)
	if err != nil {
		t.Fatal(err)
	}
	return configs
}
