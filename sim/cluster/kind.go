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

func (b *kindBackend) Start(ctx context.Context) (err error) {
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
		if b.opts.KindNodeImage != "" {
			b.log.Warn("the kind cluster exists, so the node image asked for is not used; delete the cluster (kind delete cluster --name NAME) to make one from it",
				"name", b.name, "image", b.opts.KindNodeImage)
		}
		if err := b.provider.ExportKubeConfig(b.name, path, false); err != nil {
			return fmt.Errorf("kind: export kubeconfig of %s: %w", b.name, err)
		}
	} else {
		if err := b.create(ctx, path); err != nil {
			return err
		}
		// From here a failure deletes the cluster this Start made: nobody
		// else would, and the next start would reuse a broken one.
		defer func() {
			if err != nil {
				b.deleteAfterFailure(path)
			}
		}()
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

// create makes the cluster. kind's Create cannot be interrupted: when ctx
// ends first, create waits for it (saying so) and deletes what it made.
func (b *kindBackend) create(ctx context.Context, path string) error {
	image := cmp.Or(b.opts.KindNodeImage, DefaultKindImage)
	b.log.Info("creating kind cluster (a minute or more the first time)", "name", b.name, "image", image)
	opts := []kindcluster.CreateOption{
		kindcluster.CreateWithKubeconfigPath(path),
		kindcluster.CreateWithWaitForReady(kindReadyTimeout),
		kindcluster.CreateWithDisplayUsage(false),
		kindcluster.CreateWithDisplaySalutation(false),
	}
	if b.opts.KindNodeImage != "" {
		opts = append(opts, kindcluster.CreateWithNodeImage(b.opts.KindNodeImage))
	}
	done := make(chan error, 1)
	go func() { done <- b.provider.Create(b.name, opts...) }()
	var err error
	select {
	case err = <-done:
	case <-ctx.Done():
		b.log.Info("interrupted: waiting for kind to finish creating the cluster, then deleting it", "name", b.name)
		if err = <-done; err == nil {
			b.created = true
			b.deleteAfterFailure(path)
			return ctx.Err()
		}
	}
	if err != nil {
		// kind removes a half-created cluster itself unless told to retain it.
		if strings.Contains(err.Error(), "failed to pull image") {
			return fmt.Errorf("kind: create cluster %s: node image %s is not in Docker and could not be pulled (no registry reachable?); %s: %w",
				b.name, image, kindImageHint(ctx, b.opts.KindNodeImage), err)
		}
		return fmt.Errorf("kind: create cluster %s: %w", b.name, err)
	}
	b.created = true
	return nil
}

// deleteCreated deletes the cluster if this backend created it; mu held.
func (b *kindBackend) deleteCreated(path string) error {
	if !b.created {
		return nil
	}
	b.created = false
	if err := b.provider.Delete(b.name, path); err != nil {
		return fmt.Errorf("kind: delete cluster %s: %w", b.name, err)
	}
	return nil
}

// deleteAfterFailure is deleteCreated on a failed start, whose own error
// is the one returned.
func (b *kindBackend) deleteAfterFailure(path string) {
	if err := b.deleteCreated(path); err != nil {
		b.log.Error("delete the kind cluster this start created", "err", err)
	}
}

// Created says whether Start created the cluster (and Stop deletes it), as
// opposed to reusing one that existed.
func (b *kindBackend) Created() bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.created
}

func (b *kindBackend) Stop(ctx context.Context) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	path := b.Kubeconfig()
	b.setAdmin(nil, "")
	return b.deleteCreated(path)
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
