package cluster

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"

	"k8s.io/client-go/tools/clientcmd"
	kinddefaults "sigs.k8s.io/kind/pkg/apis/config/defaults"
	kindcluster "sigs.k8s.io/kind/pkg/cluster"
	kindexec "sigs.k8s.io/kind/pkg/exec"
)

const kindReadyTimeout = 5 * time.Minute

// LocalKindImage is the kind node image `make kind-image` builds offline
// (tools/kindnode), tagged with the Kubernetes version of the envtest
// control plane.
const LocalKindImage = "gitopsim/kind-node:" + KubernetesVersion

// DefaultKindImage is the node image kind itself pins, pulled from Docker
// Hub when no --kind-image is given.
const DefaultKindImage = kinddefaults.Image

// LocalKindImagePresent says whether Docker has LocalKindImage. It answers
// false when Docker does not answer within a few seconds.
func LocalKindImagePresent(ctx context.Context) bool {
	ctx, cancel := context.WithTimeout(ctx, 3*time.Second)
	defer cancel()
	return exec.CommandContext(ctx, "docker", "image", "inspect", "--format", "{{.Id}}", LocalKindImage).Run() == nil
}

// kindImageHint says what to do when kind could not pull its node image.
func kindImageHint(ctx context.Context, asked string) string {
	if asked != LocalKindImage && LocalKindImagePresent(ctx) {
		return fmt.Sprintf("%s, built here by `make kind-image`, is present: pass --kind-image %s", LocalKindImage, LocalKindImage)
	}
	if asked == LocalKindImage {
		return fmt.Sprintf("%s is not in Docker: build it offline with `make kind-image` (about 10 minutes the first time)", LocalKindImage)
	}
	return fmt.Sprintf("build a node image offline with `make kind-image` (about 10 minutes the first time) and pass --kind-image %s", LocalKindImage)
}

// kindBackend runs a kind cluster through sigs.k8s.io/kind's library.
type kindBackend struct {
	opts     Options
	log      *slog.Logger
	name     string
	provider *kindcluster.Provider

	adminAccess

	mu      sync.Mutex
	created bool // we made the cluster, so Stop deletes it
}

func newKind(opts Options) (*kindBackend, error) {
	name := opts.KindClusterName
	if name == "" {
		name = "gitopsim"
	}
	return &kindBackend{
		opts:     opts,
		log:      opts.Logger.With("component", "cluster", "backend", Kind),
		name:     name,
		provider: kindcluster.NewProvider(kindcluster.ProviderWithDocker()),
	}, nil
}

func (b *kindBackend) Name() string { return Kind }

// Available asks Docker, through kind, whether an engine answers, and turns
// the failure into one line.
func (b *kindBackend) Available() error {
	if _, err := exec.LookPath("docker"); err != nil {
		return errors.New("kind backend needs Docker, and no docker command is on PATH; use --cluster envtest (no Docker needed)")
	}
	_, err := b.provider.List()
	if err == nil {
		return nil
	}
	reason := err.Error()
	if re := kindexec.RunErrorForError(err); re != nil {
		if line := firstLine(string(re.Output)); line != "" {
			reason = line
		}
	}
	return fmt.Errorf("kind backend needs a running Docker engine: %s; use --cluster envtest (no Docker needed)", reason)
}

func (b *kindBackend) Start(ctx context.Context) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	if err := b.Available(); err != nil {
		return err
	}
	path := filepath.Join(b.opts.Workdir, "kubeconfig")
	existing, err := b.provider.List()
	if err != nil {
		return fmt.Errorf("kind: list clusters: %w", err)
	}
	if slices.Contains(existing, b.name) {
		b.log.Info("reusing kind cluster", "name", b.name)
		if err := b.provider.ExportKubeConfig(b.name, path, false); err != nil {
			return fmt.Errorf("kind: export kubeconfig of %s: %w", b.name, err)
		}
	} else {
		b.log.Info("creating kind cluster (a minute or more the first time)", "name", b.name, "image", cmp.Or(b.opts.KindNodeImage, DefaultKindImage))
		opts := []kindcluster.CreateOption{
			kindcluster.CreateWithKubeconfigPath(path),
			kindcluster.CreateWithWaitForReady(kindReadyTimeout),
			kindcluster.CreateWithDisplayUsage(false),
			kindcluster.CreateWithDisplaySalutation(false),
		}
		if b.opts.KindNodeImage != "" {
			opts = append(opts, kindcluster.CreateWithNodeImage(b.opts.KindNodeImage))
		}
		if err := runWithContext(ctx, func() error { return b.provider.Create(b.name, opts...) }); err != nil {
			// kind removes a half-created cluster itself unless told to retain it.
			if strings.Contains(err.Error(), "failed to pull image") {
				image := cmp.Or(b.opts.KindNodeImage, DefaultKindImage)
				return fmt.Errorf("kind: create cluster %s: node image %s is not in Docker and could not be pulled (no registry reachable?); %s: %w",
					b.name, image, kindImageHint(ctx, b.opts.KindNodeImage), err)
			}
			return fmt.Errorf("kind: create cluster %s: %w", b.name, err)
		}
		b.created = true
	}
	cfg, err := clientcmd.BuildConfigFromFlags("", path)
	if err != nil {
		return fmt.Errorf("kind: load kubeconfig: %w", err)
	}
	cfg.QPS, cfg.Burst = 1000, 2000
	if err := waitForDefaultNamespace(ctx, cfg); err != nil {
		return err
	}
	b.setAdmin(cfg, path)
	return nil
}

func (b *kindBackend) Stop(ctx context.Context) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	path := b.Kubeconfig()
	b.setAdmin(nil, "")
	if !b.created {
		return nil
	}
	b.created = false
	if err := b.provider.Delete(b.name, path); err != nil {
		return fmt.Errorf("kind: delete cluster %s: %w", b.name, err)
	}
	return nil
}

func (b *kindBackend) NewUser(ctx context.Context, name string, groups []string) (*User, error) {
	admin := b.AdminConfig()
	if admin == nil {
		return nil, errors.New("kind: NewUser before Start")
	}
	return csrUser(ctx, admin, name, groups)
}

func firstLine(s string) string {
	for _, l := range strings.Split(s, "\n") {
		if l = strings.TrimSpace(l); l != "" {
			return l
		}
	}
	return ""
}
