// Package version is the `gitopsim version` command.
package version

import (
	"fmt"
	"runtime"
	"runtime/debug"

	"github.com/spf13/cobra"

	"github.com/gitopsim/gitopsim/cmd/gitopsim/app/cli"
	"github.com/gitopsim/gitopsim/sim/cluster"
)

// Version is set at build time with
// -ldflags "-X github.com/gitopsim/gitopsim/cmd/gitopsim/app/version.Version=...".
var Version = "dev"

// NewCommand returns the version command.
func NewCommand(s *cli.Streams) *cobra.Command {
	return &cobra.Command{
		Use:   "version",
		Short: "Print gitopsim's version and the versions it targets",
		Args:  cobra.NoArgs,
		RunE: func(*cobra.Command, []string) error {
			fmt.Fprintf(s.Out, "gitopsim %s%s\n", Version, revision())
			fmt.Fprintf(s.Out, "  go          %s %s/%s\n", runtime.Version(), runtime.GOOS, runtime.GOARCH)
			fmt.Fprintf(s.Out, "  kubernetes  %s (envtest control plane from `make tools`)\n", cluster.KubernetesVersion)
			return nil
		},
	}
}

func revision() string {
	info, ok := debug.ReadBuildInfo()
	if !ok {
		return ""
	}
	for _, kv := range info.Settings {
		if kv.Key == "vcs.revision" && len(kv.Value) >= 12 {
			return " (" + kv.Value[:12] + ")"
		}
	}
	return ""
}
