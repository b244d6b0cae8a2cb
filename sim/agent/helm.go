package agent

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"helm.sh/helm/v3/pkg/action"
	"helm.sh/helm/v3/pkg/chart"
	"helm.sh/helm/v3/pkg/chartutil"
	"helm.sh/helm/v3/pkg/engine"
	"helm.sh/helm/v3/pkg/storage/driver"
	"helm.sh/helm/v3/pkg/strvals"
	apimeta "k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/util/validation"
	"k8s.io/client-go/discovery"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"
	"sigs.k8s.io/yaml"

	"github.com/gitopsim/gitopsim/sim/arm"
)

// The Helm operator gitopsim simulates is helm-operator 1.4.x: its
// behaviour is read from fluxcd/helm-operator at tag v1.4.4, and the 1.4.0
// to 1.4.4 releases differ only in their dependencies. The chart versions
// it installs are the upstream ones of that line; as upstream, a chart's
// appVersion and image tag equal its version.

// HelmOperatorImageRepository is the image repository of the Helm operator
// Deployment (never run: the operator runs inside gitopsim); its tag is the
// chart version.
const HelmOperatorImageRepository = "docker.io/fluxcd/helm-operator"

// DefaultHelmOperatorChartVersion is the helm-operator chart version when
// helmOperatorProperties gives none: the az CLI k8s-configuration
// extension's default for --helm-operator-chart-version (its older
// releases defaulted to 1.2.0, a chart Kubernetes 1.22 and later cannot
// install).
const DefaultHelmOperatorChartVersion = "1.4.0"

// HelmOperatorChartVersions are the helm-operator chart versions gitopsim
// simulates.
var HelmOperatorChartVersions = []string{"1.4.0", "1.4.1", "1.4.2", "1.4.3", "1.4.4"}

// helmOperatorOlderCharts are the upstream chart versions before 1.4.0
// (tags chart-0.1.0 to chart-1.3.0). They ship their CRD as
// apiextensions.k8s.io/v1beta1.
var helmOperatorOlderCharts = []string{"0.1.0", "0.1.1", "0.2.0", "0.2.1", "0.3.0", "0.4.0", "0.5.0", "0.6.0", "0.7.0", "1.0.0", "1.0.1", "1.0.2", "1.1.0", "1.2.0", "1.3.0"}

// helmOperatorHelpers is the chart's templates/_helpers.tpl, the parts the
// simulated templates use.
const helmOperatorHelpers = `{{- define "helm-operator.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- define "helm-operator.fullname" -}}
{{- if .Values.fullnameOverride -}}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- $name := default .Chart.Name .Values.nameOverride -}}
{{- if contains $name .Release.Name -}}
{{- .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name $name | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}
{{- end -}}
{{- define "helm-operator.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- define "helm-operator.serviceAccountName" -}}
{{- if .Values.serviceAccount.create -}}
    {{ default (include "helm-operator.fullname" .) .Values.serviceAccount.name }}
{{- else -}}
    {{ default "default" .Values.serviceAccount.name }}
{{- end -}}
{{- end -}}
{{- define "helm-operator.clusterRoleName" -}}
{{- if .Values.clusterRole.create -}}
    {{ default (include "helm-operator.fullname" .) .Values.clusterRole.name }}
{{- else -}}
    {{ default "default" .Values.clusterRole.name }}
{{- end -}}
{{- end -}}
`

// helmOperatorServiceAccount is templates/serviceaccount.yaml.
const helmOperatorServiceAccount = `{{- if .Values.serviceAccount.create -}}
apiVersion: v1
kind: ServiceAccount
metadata:
  name: {{ template "helm-operator.serviceAccountName" . }}
  namespace: {{ .Release.Namespace }}
  labels:
    app: {{ template "helm-operator.name" . }}
    chart: {{ template "helm-operator.chart" . }}
    release: {{ .Release.Name }}
    heritage: {{ .Release.Service }}
{{- end -}}
`

// helmOperatorRBAC is templates/rbac.yaml and templates/rbac-role.yaml:
// the operator's own identity, cluster-wide unless clusterRole.create is
// false.
const helmOperatorRBAC = `{{- if and .Values.rbac.create (eq .Values.clusterRole.create true) -}}
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRole
metadata:
  name: {{ template "helm-operator.clusterRoleName" . }}
  labels:
    app: {{ template "helm-operator.name" . }}
    chart: {{ template "helm-operator.chart" . }}
    release: {{ .Release.Name }}
    heritage: {{ .Release.Service }}
rules:
  - apiGroups: ['*']
    resources: ['*']
    verbs: ['*']
  - nonResourceURLs: ['*']
    verbs: ['*']
---
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRoleBinding
metadata:
  name: {{ template "helm-operator.clusterRoleName" . }}
  labels:
    app: {{ template "helm-operator.name" . }}
    chart: {{ template "helm-operator.chart" . }}
    release: {{ .Release.Name }}
    heritage: {{ .Release.Service }}
roleRef:
  apiGroup: rbac.authorization.k8s.io
  kind: ClusterRole
  name: {{ template "helm-operator.clusterRoleName" . }}
subjects:
  - name: {{ template "helm-operator.serviceAccountName" . }}
    namespace: {{ .Release.Namespace | quote }}
    kind: ServiceAccount
{{- end -}}
{{- if and .Values.rbac.create (eq .Values.clusterRole.create false) -}}
apiVersion: rbac.authorization.k8s.io/v1
kind: Role
metadata:
  name: {{ template "helm-operator.fullname" . }}
  namespace: {{ .Release.Namespace }}
  labels:
    app: {{ template "helm-operator.name" . }}
    chart: {{ template "helm-operator.chart" . }}
    release: {{ .Release.Name }}
    heritage: {{ .Release.Service }}
rules:
  - apiGroups: ['*']
    resources: ['*']
    verbs: ['*']
---
apiVersion: rbac.authorization.k8s.io/v1
kind: RoleBinding
metadata:
  name: {{ template "helm-operator.fullname" . }}
  namespace: {{ .Release.Namespace }}
  labels:
    app: {{ template "helm-operator.name" . }}
    chart: {{ template "helm-operator.chart" . }}
    release: {{ .Release.Name }}
    heritage: {{ .Release.Service }}
roleRef:
  apiGroup: rbac.authorization.k8s.io
  kind: Role
  name: {{ template "helm-operator.fullname" . }}
subjects:
  - name: {{ template "helm-operator.serviceAccountName" . }}
    namespace: {{ .Release.Namespace | quote }}
    kind: ServiceAccount
{{- end -}}
`

// helmOperatorDeployment is templates/deployment.yaml with the arguments
// the upstream template renders. Zero replicas, as for fluxd: the
// operator runs inside gitopsim, and a real one must not race it.
const helmOperatorDeployment = `apiVersion: apps/v1
kind: Deployment
metadata:
  name: {{ template "helm-operator.fullname" . }}
  namespace: {{ .Release.Namespace }}
  labels:
    app: {{ template "helm-operator.name" . }}
    chart: {{ template "helm-operator.chart" . }}
    release: {{ .Release.Name }}
    heritage: {{ .Release.Service }}
  annotations:
    gitopsim.dev/simulated: "true"
spec:
  replicas: 0
  selector:
    matchLabels:
      app: {{ template "helm-operator.name" . }}
      release: {{ .Release.Name }}
  strategy:
    type: Recreate
  template:
    metadata:
      labels:
        app: {{ template "helm-operator.name" . }}
        release: {{ .Release.Name }}
    spec:
      serviceAccountName: {{ template "helm-operator.serviceAccountName" . }}
      containers:
      - name: flux-helm-operator
        image: "{{ .Values.image.repository }}:{{ .Values.image.tag }}"
        imagePullPolicy: {{ .Values.image.pullPolicy }}
        ports:
        - name: http
          containerPort: 3030
        args:
        {{- if .Values.helm.versions }}
        - --enabled-helm-versions={{ .Values.helm.versions }}
        {{- end }}
        {{- if .Values.logFormat }}
        - --log-format={{ .Values.logFormat }}
        {{- end }}
        - --git-timeout={{ .Values.git.timeout }}
        - --git-poll-interval={{ .Values.git.pollInterval }}
        {{- if .Values.git.defaultRef }}
        - --git-default-ref={{ .Values.git.defaultRef }}
        {{- end }}
        - --charts-sync-interval={{ .Values.chartsSyncInterval }}
        {{- if .Values.statusUpdateInterval }}
        - --status-update-interval={{ .Values.statusUpdateInterval }}
        {{- end }}
        - --update-chart-deps={{ .Values.updateChartDeps }}
        - --log-release-diffs={{ .Values.logReleaseDiffs }}
        {{- if .Values.workers }}
        - --workers={{ .Values.workers }}
        {{- end }}
        {{- if not .Values.clusterRole.create }}
        - --allow-namespace={{ .Release.Namespace }}
        {{- else if .Values.allowNamespace }}
        - --allow-namespace={{ .Values.allowNamespace }}
        {{- end }}
        - --tiller-namespace={{ .Values.tillerNamespace }}
        - --convert-release-storage={{ .Values.convert.releaseStorage }}
`

// helmOperatorChart builds the helm-operator chart at version v as
// upstream packs it: the HelmRelease CRD in crds/ (Helm installs it once
// and never deletes it), the operator's ServiceAccount and RBAC, and its
// Deployment. It fails for a version upstream never released.
func helmOperatorChart(v string) (*chart.Chart, error) {
	crd := helmReleaseCRD
	kube := ">=1.16.0-0"
	switch {
	case slices.Contains(HelmOperatorChartVersions, v):
	case slices.Contains(helmOperatorOlderCharts, v):
		crd, kube = helmReleaseCRDv1beta1, ">=1.11.0-0"
	default:
		return nil, fmt.Errorf("chart \"helm-operator\" version %q not found (helm-operator charts: %s, %s)", v,
			strings.Join(helmOperatorOlderCharts, ", "), strings.Join(HelmOperatorChartVersions, ", "))
	}
	return &chart.Chart{
		Metadata: &chart.Metadata{
			APIVersion: chart.APIVersionV1, Name: "helm-operator", Version: v, AppVersion: v, KubeVersion: kube,
			Description: "Flux Helm Operator is a CRD controller for declarative helming (simulated by gitopsim)",
			Home:        "https://fluxcd.io", Sources: []string{"https://github.com/fluxcd/helm-operator"},
		},
		Templates: []*chart.File{
			{Name: "templates/_helpers.tpl", Data: []byte(helmOperatorHelpers)},
			{Name: "templates/deployment.yaml", Data: []byte(helmOperatorDeployment)},
			{Name: "templates/rbac.yaml", Data: []byte(helmOperatorRBAC)},
			{Name: "templates/serviceaccount.yaml", Data: []byte(helmOperatorServiceAccount)},
		},
		Files:  []*chart.File{{Name: "crds/helmrelease.yaml", Data: []byte(crd)}},
		Values: helmOperatorDefaults(v),
	}, nil
}

// helmOperatorDefaults are the chart's values.yaml, the keys its
// simulated templates read.
func helmOperatorDefaults(v string) map[string]any {
	return map[string]any{
		"nameOverride": "", "fullnameOverride": "",
		"image":                map[string]any{"repository": HelmOperatorImageRepository, "tag": v, "pullPolicy": "IfNotPresent"},
		"createCRD":            false,
		"allowNamespace":       nil,
		"updateChartDeps":      true,
		"logFormat":            "fmt",
		"logReleaseDiffs":      false,
		"chartsSyncInterval":   "3m",
		"statusUpdateInterval": "30s",
		"workers":              int64(4),
		"helm":                 map[string]any{"versions": "v2,v3"},
		"tillerNamespace":      "kube-system",
		"convert":              map[string]any{"releaseStorage": "secrets", "tillerOutCluster": false},
		"git":                  map[string]any{"pollInterval": "5m", "timeout": "20s", "defaultRef": ""},
		"rbac":                 map[string]any{"create": true, "pspEnabled": false},
		"serviceAccount":       map[string]any{"create": true, "annotations": map[string]any{}, "name": nil},
		"clusterRole":          map[string]any{"create": true, "name": nil},
	}
}

// helmSettings are the operator's command line as its Deployment carries
// it after chartValues are applied: the simulated operator runs with
// exactly those flags, as the identity the chart made for it.
type helmSettings struct {
	chartsSync     time.Duration
	statusUpdate   time.Duration
	gitPoll        time.Duration
	gitTimeout     time.Duration
	gitDefaultRef  string
	updateDeps     bool
	versions       []string
	allowNamespace string
	serviceAccount string
}

// helmOperatorValues turns chartValues (Helm --set flags) into the values
// the operator release is installed with, over the agent's profile, and
// reads the operator's flags and identity from the chart rendered with
// them, as the Deployment would start it.
func helmOperatorValues(sp arm.ConfigSpec, iv Intervals) (map[string]any, helmSettings, error) {
	// Arc-side values: the profile's intervals (realistic keeps the
	// chart's), and a namespace-scoped configuration's operator watches
	// only its namespace.
	vals := map[string]any{
		"chartsSyncInterval":   iv.ChartsSync.String(),
		"statusUpdateInterval": min(30*time.Second, iv.ChartsSync).String(),
		"git":                  map[string]any{"pollInterval": iv.GitPoll.String()},
	}
	if strings.EqualFold(sp.OperatorScope, "namespace") {
		vals["allowNamespace"] = sp.OperatorNamespace
	}
	if err := parseSetFlags(sp.HelmChartValues, vals); err != nil {
		return nil, helmSettings{}, err
	}
	version := sp.HelmChartVersion
	if version == "" {
		version = DefaultHelmOperatorChartVersion
	}
	ch, err := helmOperatorChart(version)
	if err != nil {
		return nil, helmSettings{}, err
	}
	hs, err := renderHelmSettings(ch, vals, helmOperatorRelease(sp), sp.OperatorNamespace)
	return vals, hs, err
}

// renderHelmSettings renders the operator chart offline and parses the
// Deployment's arguments the way helm-operator's main (pflag) reads them.
func renderHelmSettings(ch *chart.Chart, vals map[string]any, name, ns string) (helmSettings, error) {
	var hs helmSettings
	rv, err := chartutil.ToRenderValues(ch, vals, chartutil.ReleaseOptions{Name: name, Namespace: ns, IsInstall: true, Revision: 1}, chartutil.DefaultCapabilities)
	if err != nil {
		return hs, err
	}
	out, err := engine.Render(ch, rv)
	if err != nil {
		return hs, err
	}
	var dep struct {
		Spec struct {
			Template struct {
				Spec struct {
					ServiceAccountName string `json:"serviceAccountName"`
					Containers         []struct {
						Args []string `json:"args"`
					} `json:"containers"`
				} `json:"spec"`
			} `json:"template"`
		} `json:"spec"`
	}
	if err := yaml.Unmarshal([]byte(out[ch.Name()+"/templates/deployment.yaml"]), &dep); err != nil || len(dep.Spec.Template.Spec.Containers) == 0 {
		return hs, fmt.Errorf("helm-operator Deployment does not render: %v", err)
	}
	hs.serviceAccount = dep.Spec.Template.Spec.ServiceAccountName
	// helm-operator's flag defaults (cmd/helm-operator/main.go).
	flags := map[string]string{
		"enabled-helm-versions": "v2,v3", "charts-sync-interval": "3m", "status-update-interval": "10s",
		"git-poll-interval": "5m", "git-timeout": "20s", "git-default-ref": "master", "update-chart-deps": "true", "allow-namespace": "",
	}
	for _, a := range dep.Spec.Template.Spec.Containers[0].Args {
		k, v, _ := strings.Cut(strings.TrimPrefix(a, "--"), "=")
		if _, ok := flags[k]; ok {
			flags[k] = v
		}
	}
	for _, f := range []struct {
		name string
		dst  *time.Duration
	}{{"charts-sync-interval", &hs.chartsSync}, {"status-update-interval", &hs.statusUpdate}, {"git-poll-interval", &hs.gitPoll}, {"git-timeout", &hs.gitTimeout}} {
		d, err := time.ParseDuration(flags[f.name])
		if err != nil {
			return hs, fmt.Errorf("helm-operator: invalid argument %q for \"--%s\" flag: %v", flags[f.name], f.name, err)
		}
		if d <= 0 {
			return hs, fmt.Errorf("helm-operator: --%s=%s: gitopsim needs a positive duration", f.name, flags[f.name])
		}
		*f.dst = d
	}
	hs.updateDeps, err = strconv.ParseBool(flags["update-chart-deps"])
	if err != nil {
		return hs, fmt.Errorf("helm-operator: invalid argument %q for \"--update-chart-deps\" flag: %v", flags["update-chart-deps"], err)
	}
	hs.gitDefaultRef, hs.allowNamespace = flags["git-default-ref"], flags["allow-namespace"]
	// main.go adds a client per enabled version it knows, in order; the
	// first one is the default for HelmReleases without helmVersion.
	for _, v := range strings.Split(flags["enabled-helm-versions"], ",") {
		if v = strings.TrimSpace(v); (v == helmV2 || v == helmV3) && !slices.Contains(hs.versions, v) {
			hs.versions = append(hs.versions, v)
		}
	}
	if len(hs.versions) == 0 {
		return hs, fmt.Errorf("helm-operator: --enabled-helm-versions=%s names no supported Helm version (v2, v3)", flags["enabled-helm-versions"])
	}
	return hs, nil
}

// Helm versions helm-operator knows.
const (
	helmV2 = "v2"
	helmV3 = "v3"
)

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
	vals, hs, err := helmOperatorValues(sp, a.iv)
	if err != nil {
		return hs, wrap(err)
	}
	ch, err := helmOperatorChart(version)
	if err != nil {
		return hs, wrap(err)
	}
	if !slices.Contains(HelmOperatorChartVersions, version) && a.servesV1beta1CRDs() {
		// Charts before 1.4.0 install on this cluster, but their operator
		// (helm-operator 1.3 and older) is not the one gitopsim simulates.
		return hs, wrap(fmt.Errorf("gitopsim simulates helm-operator charts %s, not %s", strings.Join(HelmOperatorChartVersions, ", "), version))
	}
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

// servesV1beta1CRDs reports whether the cluster still serves
// apiextensions.k8s.io/v1beta1 (Kubernetes before 1.22). Where it does
// not, a chart before 1.4.0 fails in Helm with Helm's own message, as it
// does on a real cluster.
func (a *Agent) servesV1beta1CRDs() bool {
	_, err := a.kube.Discovery().ServerResourcesForGroupVersion("apiextensions.k8s.io/v1beta1")
	return err == nil
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

// mayHaveHelmRelease reports whether Helm's storage may hold a release of
// that name in ns; false means Helm's Storage.Last would answer that there
// is none, so uninstallHelmOperator would do nothing. It lists what Helm's
// Secrets driver lists (Secrets labelled name=<release>, owner=helm; an
// invalid label value fails Helm's query, hence Last, too), as the same
// identity. Errors answer true, leaving the answer to Helm.
//
// installOperator asks right after it wrote the deploy-key Secret, not
// where the removal happens: the API server answers a LIST from its watch
// cache once the cache has caught up with etcd's latest revision, which
// after a write to another resource (the operator's Deployment) waits for
// etcd's next progress notification, up to 100 ms; after a write to
// Secrets it does not wait. Between the two points the agent writes only
// the GitConfig and the Deployment, and on a virtual clock nothing else
// runs, so the answer is the one Helm would give at the removal.
func (a *Agent) mayHaveHelmRelease(ctx context.Context, ns, name string) bool {
	if errs := validation.IsValidLabelValue(name); len(errs) != 0 {
		return false
	}
	sel := labels.Set{"name": name, "owner": "helm"}.AsSelector().String()
	list, err := a.kube.CoreV1().Secrets(ns).List(ctx, metav1.ListOptions{LabelSelector: sel})
	return err != nil || len(list.Items) > 0
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
