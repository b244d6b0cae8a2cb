package cli

import (
	"context"

	"github.com/spf13/cobra"

	"github.com/gitopsim/gitopsim/sim/cluster"
)

// kindImageUsage is the --kind-image help line.
const kindImageUsage = "node `image` of a kind cluster gitopsim creates (with --cluster kind); default: the one kind pins (" +
	cluster.DefaultKindImage + "), pulled from Docker Hub. make kind-image builds " + cluster.LocalKindImage +
	" offline from Debian packages and the Go module proxy"

// KindImageFlag adds --kind-image to cmd, bound to dst. Its help says
// whether the image `make kind-image` builds is present here: that is
// asked of Docker only when help is shown, never on a normal run.
func KindImageFlag(cmd *cobra.Command, dst *string) {
	cmd.Flags().StringVar(dst, "kind-image", "", kindImageUsage)
	help := cmd.HelpFunc()
	cmd.SetHelpFunc(func(c *cobra.Command, args []string) {
		if c == cmd {
			if fl := c.Flags().Lookup("kind-image"); fl != nil {
				if cluster.LocalKindImagePresent(context.Background()) {
					fl.Usage = kindImageUsage + "; it is present here: --kind-image " + cluster.LocalKindImage
				} else {
					fl.Usage = kindImageUsage + "; it is not built here yet"
				}
			}
		}
		help(c, args)
	})
}
