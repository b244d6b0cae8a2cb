// Package validate is the `gitopsim validate` command: check scenario files
// without running them.
package validate

import (
	"fmt"

	"github.com/spf13/cobra"

	"github.com/gitopsim/gitopsim/cmd/gitopsim/app/cli"
	"github.com/gitopsim/gitopsim/sim/scenario"
)

// NewCommand returns the validate command.
func NewCommand(s *cli.Streams) *cobra.Command {
	return &cobra.Command{
		Use:   "validate FILE|DIR...",
		Short: "Check scenario files without running them",
		Long: `Decode scenario files strictly and check them: unknown fields, wrong types, bad
durations, unknown clusters, repos, keys and step names are reported with file, line,
column and field path. Nothing starts; the exit code is 0 only if every file is valid.`,
		Example: `  gitopsim validate scenarios/
  gitopsim validate my-scenario.yaml`,
		Args: cobra.MinimumNArgs(1),
		RunE: func(_ *cobra.Command, args []string) error {
			files, err := scenario.Files(args)
			if err != nil {
				return err
			}
			bad := 0
			for _, f := range files {
				sc, err := scenario.Load(f)
				if err != nil {
					bad++
					fmt.Fprintln(s.Err, err)
					continue
				}
				fmt.Fprintf(s.Out, "ok   %s (%s, %d steps)\n", f, sc.Metadata.Name, len(sc.Spec.Steps))
			}
			if bad > 0 {
				return fmt.Errorf("%d of %d scenario files are invalid", bad, len(files))
			}
			return nil
		},
	}
}
