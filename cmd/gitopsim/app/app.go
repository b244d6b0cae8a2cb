// Package app is the gitopsim command line: a root command with global
// flags and one sub-package per verb.
package app

import (
	"errors"
	"fmt"
	"io"

	"github.com/spf13/cobra"

	"github.com/gitopsim/gitopsim/cmd/gitopsim/app/cli"
	"github.com/gitopsim/gitopsim/cmd/gitopsim/app/run"
	"github.com/gitopsim/gitopsim/cmd/gitopsim/app/up"
	"github.com/gitopsim/gitopsim/cmd/gitopsim/app/validate"
	"github.com/gitopsim/gitopsim/cmd/gitopsim/app/version"
)

// Main runs gitopsim with args and returns the process exit code. Errors
// are printed once, on stderr, without a usage dump.
func Main(args []string, stdout, stderr io.Writer) int {
	streams := &cli.Streams{Out: stdout, Err: stderr}
	root := newRoot(streams)
	root.SetArgs(args)
	if err := root.Execute(); err != nil {
		fmt.Fprintf(stderr, "gitopsim: %v\n", err)
		var usage *cli.UsageError
		if errors.As(err, &usage) {
			fmt.Fprintf(stderr, "Run '%s --help' for usage.\n", usage.Command)
			return 2
		}
		return 1
	}
	return 0
}

func newRoot(s *cli.Streams) *cobra.Command {
	root := &cobra.Command{
		Use:   "gitopsim",
		Short: "Azure Arc GitOps (Flux v1 configurations) on one machine, no cloud account",
		Long: `gitopsim reproduces Azure Arc-enabled Kubernetes GitOps locally: an ARM provider
the Azure SDK talks to, a Git server, a real Kubernetes API and the Arc agent.

Start the stack with 'gitopsim up'; clients find it through <workdir>/endpoints.json.`,
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.SetOut(s.Out)
	root.SetErr(s.Err)
	root.PersistentFlags().CountVarP(&s.Verbosity, "verbose", "v", "more output on stderr (-v debug)")
	root.PersistentFlags().BoolVarP(&s.Quiet, "quiet", "q", false, "only warnings and errors on stderr")
	root.SetFlagErrorFunc(func(c *cobra.Command, err error) error {
		return &cli.UsageError{Command: c.CommandPath(), Err: err}
	})
	root.AddCommand(up.NewCommand(s), run.NewCommand(s), validate.NewCommand(s), version.NewCommand(s))
	return root
}
