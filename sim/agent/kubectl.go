package agent

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path"
	"path/filepath"
	"strings"
	"sync"

	openapi_v2 "github.com/google/gnostic-models/openapiv2"
	"github.com/spf13/cobra"
	"google.golang.org/protobuf/proto"
	apimeta "k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/cli-runtime/pkg/genericiooptions"
	"k8s.io/client-go/discovery"
	openapiclient "k8s.io/client-go/openapi"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/restmapper"
	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"
	"k8s.io/kubectl/pkg/cmd/apply"
	kdelete "k8s.io/kubectl/pkg/cmd/delete"
	cmdutil "k8s.io/kubectl/pkg/cmd/util"
	"k8s.io/kubectl/pkg/util/openapi"
	"k8s.io/kubectl/pkg/validation"
)

// fluxd applies and deletes by running kubectl (pkg/cluster/kubernetes/
// sync.go, Kubectl.doCommand): "kubectl apply -f -" with the manifests on
// stdin, and the error it reports is "running kubectl: <exit status>,
// stderr: <stderr>". The simulated fluxd runs kubectl's own commands in
// process (k8s.io/kubectl, the code of the kubectl binary), as the
// operator's ServiceAccount, so what is applied, how (client-side apply
// with its last-applied annotation) and what an error says are kubectl's.

// kubectl runs kubectl commands as one identity. Its factory caches
// discovery and the OpenAPI documents between runs, as a kubectl binary
// with a cache directory would.
type kubectl struct {
	factory fluxKubectlFactory
	getter  *kubectlGetter
	oapi    *openAPISource
	mu      sync.Mutex // one command at a time: a factory is not meant for more
}

// kubectlGetter gives kubectl its connection: the ServiceAccount's REST
// config, a discovery cache shared by the agent, and the namespace of the
// fluxd image's kubeconfig (docker/kubeconfig: "default").
type kubectlGetter struct {
	cfg   *rest.Config
	disco discovery.CachedDiscoveryInterface
	// run is the current command's view of the cache, and mapper its
	// RESTMapper; both are new for every command, as in a new process.
	run    *runDiscovery
	mapper apimeta.RESTMapper
}

func (g *kubectlGetter) ToRESTConfig() (*rest.Config, error) { return rest.CopyConfig(g.cfg), nil }
func (g *kubectlGetter) ToDiscoveryClient() (discovery.CachedDiscoveryInterface, error) {
	return g.run, nil
}
func (g *kubectlGetter) ToRESTMapper() (apimeta.RESTMapper, error) { return g.mapper, nil }

// newRun starts a command's view of discovery and reports whether the
// last command refetched it.
func (g *kubectlGetter) newRun() bool {
	refetched := g.run != nil && g.run.fresh
	g.run = &runDiscovery{CachedDiscoveryInterface: g.disco}
	g.mapper = restmapper.NewShortcutExpander(restmapper.NewDeferredDiscoveryRESTMapper(g.run), g.run, func(string) {})
	return refetched
}

// endRun drops the command's RESTMapper, which holds every resource the
// API server serves (a few hundred KiB); the next command makes its own.
func (g *kubectlGetter) endRun() { g.mapper = nil }

// runDiscovery is the discovery cache as one kubectl process sees its
// disk cache: not fresh until this process refetched it. A kind the
// cache does not know then makes kubectl's RESTMapper refetch once
// (restmapper.DeferredDiscoveryRESTMapper: on no match, Reset unless
// Fresh), which is how a CRD applied by one kubectl run is served to the
// next, as fluxd's one-by-one retry relies on.
type runDiscovery struct {
	discovery.CachedDiscoveryInterface
	fresh bool
}

func (r *runDiscovery) Fresh() bool { return r.fresh }

func (r *runDiscovery) Invalidate() {
	r.CachedDiscoveryInterface.Invalidate()
	r.fresh = true
}
func (g *kubectlGetter) ToRawKubeConfigLoader() clientcmd.ClientConfig {
	// Only the context's namespace is read from it; the connection is
	// ToRESTConfig's. A cluster entry makes it usable.
	cfg := clientcmdapi.Config{
		Clusters:       map[string]*clientcmdapi.Cluster{"cluster": {Server: g.cfg.Host}},
		Contexts:       map[string]*clientcmdapi.Context{"default": {Cluster: "cluster", Namespace: "default"}},
		CurrentContext: "default",
	}
	return clientcmd.NewDefaultClientConfig(cfg, &clientcmd.ConfigOverrides{})
}

func newKubectl(cfg *rest.Config, disco discovery.CachedDiscoveryInterface, oapi *openAPISource) *kubectl {
	g := &kubectlGetter{cfg: cfg, disco: disco}
	g.newRun()
	k := &kubectl{getter: g, oapi: oapi}
	k.factory = k.newFactory()
	return k
}

func (k *kubectl) newFactory() fluxKubectlFactory {
	return fluxKubectlFactory{Factory: cmdutil.NewFactory(k.getter), schema: &factorySchema{src: k.oapi}}
}

// fresh starts a command. When the last one found kinds it did not know,
// the factory, which keeps the OpenAPI schema it validates with, starts
// over too, so that new CRDs' schemas are seen.
func (k *kubectl) fresh() {
	// A schema that could not be fetched (the API server down at the
	// time) is not kept either: kubectl's factory would answer every later
	// command with the same error, where fluxd's next kubectl process
	// fetches again (found by the soak: an API server restart during a
	// sync failed that operator's syncs for good).
	if k.getter.newRun() || k.factory.schema.failed() {
		k.factory = k.newFactory()
	}
}

// fluxKubectlFactory makes kubectl validate as the kubectl of the Flux
// image does (v1.21.14, docker/kubectl.version in fluxcd/flux v1.25.4):
// on the client, against the API server's OpenAPI schema, before anything
// is sent. Later kubectls leave it to the server (strict field
// validation), which refuses the same objects in other words; with this,
// a misspelt field reads "error validating data: ValidationError(...)"
// as on a real cluster. Commands run with --validate=warn, so that the
// server, like a server asked by kubectl 1.21, only warns.
type fluxKubectlFactory struct {
	cmdutil.Factory
	schema *factorySchema
}

// errNoOpenAPIV3 makes kubectl apply build its strategic merge patches
// from OpenAPI v2, as kubectl 1.21 (fluxd's) does; kubectl 1.27+ would
// fetch and parse the group's OpenAPI v3 document for every object it
// patches (apply.go, ToOptions: "Will fall back to OpenAPI V2").
var errNoOpenAPIV3 = errors.New("kubectl 1.21 patches with OpenAPI v2")

func (f fluxKubectlFactory) OpenAPIV3Client() (openapiclient.Client, error) {
	return nil, errNoOpenAPIV3
}

func (f fluxKubectlFactory) Validator(directive string) (validation.Schema, error) {
	if directive == metav1.FieldValidationIgnore {
		return validation.NullSchema{}, nil
	}
	return validation.ConjunctiveSchema{validation.NewSchemaValidation(f), validation.NoDoubleKeySchema{}}, nil
}

// OpenAPISchema is the OpenAPI v2 schema kubectl validates and builds
// strategic merge patches with: fetched once per factory, as kubectl's
// own factory does (cmdutil's CachedOpenAPIParser), but parsed once per
// distinct document for every factory of the agents that share a
// ServerCache.
func (f fluxKubectlFactory) OpenAPISchema() (openapi.Resources, error) {
	if f.schema == nil {
		return f.Factory.OpenAPISchema()
	}
	f.schema.once.Do(func() {
		if f.schema.src != nil {
			if res, ok := f.schema.src.fetch(); ok {
				f.schema.res = res
				return
			}
		}
		// Anything but a plain answer: kubectl's own fetch, so that
		// errors read as they would.
		f.schema.res, f.schema.err = f.Factory.OpenAPISchema()
		f.schema.bad = f.schema.err != nil
	})
	return f.schema.res, f.schema.err
}

// factorySchema is one kubectl factory's OpenAPI schema, fetched at its
// first use and kept for the factory's life.
type factorySchema struct {
	src  *openAPISource
	once sync.Once
	res  openapi.Resources
	err  error
	// bad is set when the fetch failed; read by the next command, on the
	// same goroutine as the fetch (kubectl.mu).
	bad bool
}

// failed reports whether the schema could not be fetched.
func (s *factorySchema) failed() bool { return s != nil && s.bad }

type cachedOpenAPI struct {
	etag string
	sum  [32]byte // the document's SHA-256, its key in ServerCache.docs
	res  openapi.Resources
}

// openAPISource fetches /openapi/v2 of one API server, as the agent's
// admin identity (whose discovery client kubectl's own fetch uses), into
// a cache.
type openAPISource struct {
	cache  *ServerCache
	url    string
	client *http.Client
}

// mimeOpenAPIV2Proto is what client-go's discovery asks /openapi/v2 for.
const mimeOpenAPIV2Proto = "application/com.github.proto-openapi.spec.v2@v1.0+protobuf"

func newOpenAPISource(cache *ServerCache, cfg *rest.Config) (*openAPISource, error) {
	base, _, err := rest.DefaultServerUrlFor(cfg)
	if err != nil {
		return nil, err
	}
	client, err := rest.HTTPClientFor(cfg)
	if err != nil {
		return nil, err
	}
	u := *base
	u.Path = path.Join(u.Path, "/openapi/v2")
	return &openAPISource{cache: cache, url: u.String(), client: client}, nil
}

// fetch asks for the document with the cached ETag and returns the
// parsed document the answer stands for; false means the answer was not
// 200 or 304 (or did not parse), and the caller falls back to kubectl's
// own fetch.
func (s *openAPISource) fetch() (openapi.Resources, bool) {
	s.cache.mu.Lock()
	cached, have := s.cache.openAPI[s.url]
	s.cache.mu.Unlock()
	req, err := http.NewRequestWithContext(context.Background(), http.MethodGet, s.url, nil)
	if err != nil {
		return nil, false
	}
	req.Header.Set("Accept", mimeOpenAPIV2Proto)
	if have && cached.etag != "" {
		req.Header.Set("If-None-Match", cached.etag)
	}
	resp, err := s.client.Do(req)
	if err != nil {
		return nil, false
	}
	defer resp.Body.Close()
	switch {
	case resp.StatusCode == http.StatusNotModified && have:
		return cached.res, true
	case resp.StatusCode != http.StatusOK:
		return nil, false
	}
	data, err := io.ReadAll(resp.Body)
	if err != nil {
		return nil, false
	}
	sum := sha256.Sum256(data)
	res, ok := s.cache.parsedDoc(sum)
	if !ok {
		doc := &openapi_v2.Document{}
		if err := proto.Unmarshal(data, doc); err != nil {
			return nil, false
		}
		parsed, err := openapi.NewOpenAPIData(doc)
		if err != nil {
			return nil, false
		}
		res = &memoResources{Resources: parsed, consumes: map[consumesKey][]string{}}
	}
	if etag := resp.Header.Get("ETag"); etag != "" {
		res = s.cache.setOpenAPI(s.url, etag, sum, res)
	}
	return res, true
}

// kubectlExit is how a kubectl command ends with an error: kubectl's
// CheckErr formats the error as the binary would print it, then calls
// the fatal handler, which gitopsim turns into a panic of this value.
type kubectlExit struct {
	msg  string
	code int
}

var fatalOnce sync.Once

// run executes "kubectl <args> -f -" with stdin and returns its stdout
// and, on failure, fluxd's error for it.
//
// kubectl reads "-f -" from the process's own standard input
// (cli-runtime, FileVisitor), which a library cannot hand it; the
// manifests go through a file, and its path is named STDIN again in what
// kubectl says, as it would be.
func (k *kubectl) run(stdin []byte, args ...string) (stdout string, err error) {
	dir, err := os.MkdirTemp("", "gitopsim-kubectl-")
	if err != nil {
		return "", err
	}
	defer os.RemoveAll(dir)
	file := filepath.Join(dir, "STDIN")
	if err := os.WriteFile(file, stdin, 0o600); err != nil {
		return "", err
	}
	args = append(args, "-f", file)
	fatalOnce.Do(func() {
		// kubectl's commands end with os.Exit through this handler, which
		// is a package variable of kubectl: set once, it only panics, so
		// every command of every operator can share it.
		cmdutil.BehaviorOnFatal(func(msg string, code int) { panic(kubectlExit{msg, code}) })
	})
	k.mu.Lock()
	defer k.mu.Unlock()
	k.fresh()
	defer k.getter.endRun()
	var out, errOut bytes.Buffer
	streams := genericiooptions.IOStreams{In: bytes.NewReader(nil), Out: &out, ErrOut: &errOut}
	var cmd *cobra.Command
	switch args[0] {
	case "apply":
		cmd = apply.NewCmdApply("kubectl", k.factory, streams)
		args = append(args, "--validate=warn")
	case "delete":
		cmd = kdelete.NewCmdDelete(k.factory, streams)
	default:
		return "", fmt.Errorf("kubectl %s is not simulated", args[0])
	}
	defer forgetCompletions(cmd)
	cmd.SetArgs(args[1:])
	cmd.SetIn(streams.In)
	cmd.SetOut(io.Discard)
	cmd.SetErr(&errOut)
	cmd.SilenceUsage, cmd.SilenceErrors = true, true
	code := 0
	func() {
		defer func() {
			if r := recover(); r != nil {
				ex, ok := r.(kubectlExit)
				if !ok {
					panic(r)
				}
				if ex.msg != "" {
					errOut.WriteString(ex.msg)
					if !strings.HasSuffix(ex.msg, "\n") {
						errOut.WriteString("\n")
					}
				}
				code = ex.code
			}
		}()
		if err := cmd.Execute(); err != nil {
			// Flag errors: cobra returns them; kubectl's main prints
			// them and exits 1.
			fmt.Fprintf(&errOut, "error: %v\n", err)
			code = 1
		}
	}()
	if code != 0 {
		msg := strings.ReplaceAll(errOut.String(), file, "STDIN")
		return out.String(), fmt.Errorf("running kubectl: exit status %d, stderr: %s", code, strings.TrimSpace(msg))
	}
	return out.String(), nil
}

// memoResources remembers GetConsumes' answers. kubectl apply asks it for
// every object it patches (Patcher.getPatchTypeFromOpenAPI), and kubectl's
// document answers by walking every path of the schema and decoding each
// one's group-version-kind extension from YAML; the document never
// changes, so neither does the answer.
type memoResources struct {
	openapi.Resources
	mu       sync.Mutex
	consumes map[consumesKey][]string
}

type consumesKey struct {
	gvk       schema.GroupVersionKind
	operation string
}

func (m *memoResources) GetConsumes(gvk schema.GroupVersionKind, operation string) []string {
	k := consumesKey{gvk, operation}
	m.mu.Lock()
	got, ok := m.consumes[k]
	m.mu.Unlock()
	if ok {
		return got
	}
	got = m.Resources.GetConsumes(gvk, operation)
	m.mu.Lock()
	m.consumes[k] = got
	m.mu.Unlock()
	return got
}
