package agent

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"helm.sh/helm/v3/pkg/action"
	"helm.sh/helm/v3/pkg/chart"
	"helm.sh/helm/v3/pkg/storage/driver"
	"helm.sh/helm/v3/pkg/strvals"
	apimeta "k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/client-go/discovery"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"

	"github.com/gitopsim/gitopsim/sim/arm"
)

// HelmOperatorImage is the image of the Helm operator Deployment (never
// run: the operator runs inside gitopsim).
const HelmOperatorImage = "docker.io/fluxcd/helm-operator:1.4.4"

// DefaultHelmOperatorChartVersion is the helm-operator chart version when
// helmOperatorProperties gives none (the az CLI's default).
const DefaultHelmOperatorChartVersion = "1.2.0"

// helmReleaseCRD is helmreleases.helm.fluxcd.io as the helm-operator chart
// ships it: v1, short names hr and hrs, a status subresource, and an open
// schema (the operator validates the spec itself).
const helmReleaseCRD = `apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata:
  name: helmreleases.helm.fluxcd.io
spec:
  group: helm.fluxcd.io
  names:
    kind: HelmRelease
    listKind: HelmReleaseList
    plural: helmreleases
    singular: helmrelease
    shortNames: [hr, hrs]
  scope: Namespaced
  versions:
    - name: v1
      served: true
      storage: true
      subresources:
        status: {}
      additionalPrinterColumns:
        - {name: Release, type: string, jsonPath: .status.releaseName, description: Release is the name of the Helm release}
        - {name: Phase, type: string, jsonPath: .status.phase, description: Phase is the current release phase}
        - {name: ReleaseStatus, type: string, jsonPath: .status.releaseStatus, description: ReleaseStatus is the status of the Helm release}
        - {name: Message, type: string, jsonPath: '.status.conditions[?(@.type=="Released")].message'}
        - {name: Age, type: date, jsonPath: .metadata.creationTimestamp}
      schema:
        openAPIV3Schema:
          type: object
          properties:
            spec:
              type: object
              x-kubernetes-preserve-unknown-fields: true
            status:
              type: object
              x-kubernetes-preserve-unknown-fields: true
`

// helmOperatorDeployment is the chart's one template. Zero replicas, as
// for fluxd: the operator runs inside gitopsim.
const helmOperatorDeployment = `apiVersion: apps/v1
kind: Deployment
metadata:
  name: {{ .Release.Name }}
  labels:
    app: helm-operator
    release: {{ .Release.Name }}
  annotations:
    gitopsim.dev/simulated: "true"
spec:
  replicas: 0
  selector:
    matchLabels: {app: helm-operator, release: {{ .Release.Name }}}
  template:
    metadata:
      labels: {app: helm-operator, release: {{ .Release.Name }}}
    spec:
      serviceAccountName: {{ .Values.serviceAccount.name }}
      containers:
        - name: flux-helm-operator
          image: "{{ .Values.image.repository }}:{{ .Values.image.tag }}"
          args:
            - --enabled-helm-versions={{ .Values.helm.versions }}
            - --charts-sync-interval={{ .Values.chartsSyncInterval }}
            - --status-update-interval={{ .Values.statusUpdateInterval }}
            - --workers={{ .Values.workers }}
            - --git-timeout={{ .Values.git.timeout }}
            {{- if .Values.allowNamespace }}
            - --allow-namespace={{ .Values.allowNamespace }}
            {{- end }}
`

// helmOperatorChart builds the helm-operator chart at version v: the CRD
// in crds/ (Helm installs it once and never deletes it) and the operator
// Deployment.
func helmOperatorChart(v string) *chart.Chart {
	return &chart.Chart{
		Metadata: &chart.Metadata{
			APIVersion: chart.APIVersionV2, Name: "helm-operator", Version: v, AppVersion: "1.4.4",
			Description: "Flux Helm Operator (simulated by gitopsim)", Type: "application",
		},
		Templates: []*chart.File{{Name: "templates/deployment.yaml", Data: []byte(helmOperatorDeployment)}},
		Files:     []*chart.File{{Name: "crds/helmreleases.yaml", Data: []byte(helmReleaseCRD)}},
		Values:    helmOperatorDefaults(),
	}
}

// helmOperatorDefaults are the chart's values.yaml.
func helmOperatorDefaults() map[string]any {
	return map[string]any{
		"image":                map[string]any{"repository": "docker.io/fluxcd/helm-operator", "tag": "1.4.4"},
		"helm":                 map[string]any{"versions": "v3"},
		"chartsSyncInterval":   "3m",
		"statusUpdateInterval": "10s",
		"workers":              int64(2),
		"git":                  map[string]any{"timeout": "20s"},
		"allowNamespace":       "",
		"serviceAccount":       map[string]any{"name": ""},
	}
}

// helmSettings are the operator flags the simulation honours, read from
// the chart's values after chartValues are applied.
type helmSettings struct {
	chartsSync     time.Duration
	versions       []string
	allowNamespace string
}

// helmOperatorValues turns chartValues (Helm --set flags) into the values
// the operator release is installed with, over the agent's defaults.
func helmOperatorValues(sp arm.ConfigSpec, defaultSync time.Duration) (map[string]any, helmSettings, error) {
	vals := map[string]any{
		"chartsSyncInterval": defaultSync.String(),
		"serviceAccount":     map[string]any{"name": sp.OperatorInstanceName},
	}
	if strings.EqualFold(sp.OperatorScope, "namespace") {
		vals["allowNamespace"] = sp.OperatorNamespace
	}
	if err := parseSetFlags(sp.HelmChartValues, vals); err != nil {
		return nil, helmSettings{}, err
	}
	var hs helmSettings
	merged := mergeValues(helmOperatorDefaults(), vals)
	interval := fmt.Sprint(merged["chartsSyncInterval"])
	d, err := time.ParseDuration(interval)
	if err != nil || d <= 0 {
		return nil, hs, fmt.Errorf("chartsSyncInterval %q is not a positive duration", interval)
	}
	hs.chartsSync = d
	if h, ok := merged["helm"].(map[string]any); ok {
		for _, v := range strings.Split(fmt.Sprint(h["versions"]), ",") {
			if v = strings.TrimSpace(v); v != "" {
				hs.versions = append(hs.versions, v)
			}
		}
	}
	if len(hs.versions) == 0 {
		return nil, hs, errors.New("helm.versions is empty")
	}
	hs.allowNamespace = fmt.Sprint(merged["allowNamespace"])
	return vals, hs, nil
}

// parseSetFlags applies Helm's --set, --set-string and --set-json flags
// in s (the way `helm install` reads them) to vals.
func parseSetFlags(s string, vals map[string]any) error {
	words, err := splitWords(s)
	if err != nil {
		return err
	}
	for i := 0; i < len(words); i++ {
		flag, arg, inline := strings.Cut(words[i], "=")
		if !inline {
			if i+1 >= len(words) {
				return fmt.Errorf("flag needs an argument: %s", flag)
			}
			i++
			arg = words[i]
		}
		switch flag {
		case "--set":
			err = strvals.ParseInto(arg, vals)
		case "--set-string":
			err = strvals.ParseIntoString(arg, vals)
		case "--set-json":
			err = strvals.ParseJSON(arg, vals)
		default:
			return fmt.Errorf("unknown flag: %s (chartValues takes --set, --set-string and --set-json)", flag)
		}
		if err != nil {
			return fmt.Errorf("failed parsing %s data: %w", flag, err)
		}
	}
	return nil
}

// splitWords splits s like a shell would for simple quoting: spaces
// separate words, single and double quotes group them.
func splitWords(s string) ([]string, error) {
	var out []string
	var cur strings.Builder
	var quote rune
	inWord := false
	for _, r := range s {
		switch {
		case quote != 0 && r == quote:
			quote = 0
		case quote != 0:
			cur.WriteRune(r)
		case r == '\'' || r == '"':
			quote, inWord = r, true
		case r == ' ' || r == '\t' || r == '\n':
			if inWord {
				out = append(out, cur.String())
				cur.Reset()
				inWord = false
			}
		default:
			cur.WriteRune(r)
			inWord = true
		}
	}
	if quote != 0 {
		return nil, fmt.Errorf("unterminated %c quote in chartValues", quote)
	}
	if inWord {
		out = append(out, cur.String())
	}
	return out, nil
}

// mergeValues deep-merges over onto base into a new map (Helm's rule:
// maps merge, everything else is replaced).
func mergeValues(base, over map[string]any) map[string]any {
	out := make(map[string]any, len(base))
	for k, v := range base {
		out[k] = v
	}
	for k, v := range over {
		if bm, ok := out[k].(map[string]any); ok {
			if om, ok := v.(map[string]any); ok {
				out[k] = mergeValues(bm, om)
				continue
			}
		}
		out[k] = v
	}
	return out
}

// helmOperatorRelease is the release Arc names for a configuration's
// Helm operator.
func helmOperatorRelease(sp arm.ConfigSpec) string {
	return sp.OperatorInstanceName + "-helm-" + sp.OperatorNamespace
}

// installHelmOperator installs or upgrades the configuration's Helm
// operator release with the Helm SDK, as cluster admin (config-agent's
// rights), and returns the settings its loop runs with.
func (a *Agent) installHelmOperator(ctx context.Context, sp arm.ConfigSpec) (helmSettings, error) {
	name := helmOperatorRelease(sp)
	version := sp.HelmChartVersion
	if version == "" {
		version = DefaultHelmOperatorChartVersion
	}
	wrap := func(err error) error {
		return fmt.Errorf("failed to install chart from path [helm-operator] for release [%s]: err [%v]", name, err)
	}
	vals, hs, err := helmOperatorValues(sp, a.iv.ChartsSync)
	if err != nil {
		return hs, wrap(err)
	}
	ch := helmOperatorChart(version)
	cfg, err := a.helmConfig(a.adminREST(), sp.OperatorNamespace)
	if err != nil {
		return hs, wrap(err)
	}
	cur, err := cfg.Releases.Last(name)
	switch {
	case errors.Is(err, driver.ErrReleaseNotFound):
		in := action.NewInstall(cfg)
		in.ReleaseName, in.Namespace = name, sp.OperatorNamespace
		_, err = in.RunWithContext(ctx, ch, vals)
	case err != nil:
	case cur.Chart.Metadata.Version == version && sameJSON(cur.Config, vals) && cur.Info.Status.String() == "deployed":
		return hs, nil // unchanged: reconfiguring fluxd leaves it alone
	default:
		up := action.NewUpgrade(cfg)
		up.Namespace, up.MaxHistory = sp.OperatorNamespace, 10
		_, err = up.RunWithContext(ctx, name, ch, vals)
	}
	if err != nil {
		return hs, wrap(err)
	}
	return hs, nil
}

// uninstallHelmOperator removes the Helm operator release; the CRD and
// the releases it made stay, as with `helm uninstall`.
func (a *Agent) uninstallHelmOperator(ns, instance string) {
	name := instance + "-helm-" + ns
	cfg, err := a.helmConfig(a.adminREST(), ns)
	if err != nil {
		a.log.Warn("uninstall helm operator", "release", name, "err", err)
		return
	}
	if _, err := cfg.Releases.Last(name); err != nil {
		return // never installed
	}
	un := action.NewUninstall(cfg)
	if _, err := un.Run(name); err != nil && !errors.Is(err, driver.ErrReleaseNotFound) {
		a.log.Warn("uninstall helm operator", "release", name, "err", err)
	}
}

// adminREST is the agent's own (cluster-admin) client config.
func (a *Agent) adminREST() *rest.Config {
	cfg := rest.CopyConfig(a.opts.Kube)
	cfg.QPS, cfg.Burst = 1000, 2000
	return cfg
}

// helmConfig is a Helm action configuration acting with cfg's identity
// and storing releases (Secrets) in namespace ns.
func (a *Agent) helmConfig(cfg *rest.Config, ns string) (*action.Configuration, error) {
	// Discovery answers the same for every identity, so all getters share
	// the agent's cache (and Helm's resets after CRD installs reach it).
	g := &restGetter{cfg: cfg, ns: ns, disco: a.disco, mapper: a.mapper}
	ac := new(action.Configuration)
	logf := func(format string, v ...any) { a.log.Debug("helm: " + fmt.Sprintf(format, v...)) }
	if err := ac.Init(g, ns, "secret", logf); err != nil {
		return nil, fmt.Errorf("helm: %w", err)
	}
	return ac, nil
}

// restGetter gives the Helm SDK a fixed rest.Config and namespace instead
// of a kubeconfig file.
type restGetter struct {
	cfg    *rest.Config
	ns     string
	disco  discovery.CachedDiscoveryInterface
	mapper apimeta.ResettableRESTMapper
}

func (g *restGetter) ToRESTConfig() (*rest.Config, error) { return rest.CopyConfig(g.cfg), nil }
func (g *restGetter) ToDiscoveryClient() (discovery.CachedDiscoveryInterface, error) {
	return g.disco, nil
}
func (g *restGetter) ToRESTMapper() (apimeta.RESTMapper, error) { return g.mapper, nil }
func (g *restGetter) ToRawKubeConfigLoader() clientcmd.ClientConfig {
	return clientcmd.NewDefaultClientConfig(*clientcmdapi.NewConfig(), &clientcmd.ConfigOverrides{Context: clientcmdapi.Context{Namespace: g.ns}})
}

// sameJSON compares two values as JSON documents: Helm stores values as
// JSON, so numbers come back as float64.
func sameJSON(a, b any) bool {
	ja, err1 := json.Marshal(a)
	jb, err2 := json.Marshal(b)
	return err1 == nil && err2 == nil && string(ja) == string(jb)
}
