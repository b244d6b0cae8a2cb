package agent

import (
	"sync"
	_ "unsafe" // for go:linkname

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
)

// cobra keeps every flag completion function ever registered in a map of
// its own, keyed by flag, for the life of the process
// (completions.go, RegisterFlagCompletionFunc); nothing removes an entry.
// kubectl registers one each time it builds an apply command
// (cmdutil.AddSubresourceFlags), which a kubectl process does once. The
// agent builds one per apply, so every apply's flags stayed reachable,
// and through them the operator, its agent and the whole simulator that
// started it: the soak measured about 8 MiB kept per gitopsim restart and
// more per sync. forgetCompletions removes a command's entries once it
// has run.
//
// The map and its lock are cobra's unexported variables (pinned in
// go.mod); a cobra that renames them fails to link, and
// TestKubectlForgetsCompletions fails if an apply leaves an entry.
//
//go:linkname cobraCompletions github.com/spf13/cobra.flagCompletionFunctions
var cobraCompletions map[*pflag.Flag]cobra.CompletionFunc

//go:linkname cobraCompletionsMu github.com/spf13/cobra.flagCompletionMutex
var cobraCompletionsMu *sync.RWMutex

// forgetCompletions drops the completion functions of cmd's flags and of
// its subcommands' flags.
func forgetCompletions(cmd *cobra.Command) {
	cobraCompletionsMu.Lock()
	defer cobraCompletionsMu.Unlock()
	var forget func(c *cobra.Command)
	forget = func(c *cobra.Command) {
		for _, fs := range []*pflag.FlagSet{c.Flags(), c.PersistentFlags()} {
			fs.VisitAll(func(f *pflag.Flag) { delete(cobraCompletions, f) })
		}
		for _, sub := range c.Commands() {
			forget(sub)
		}
	}
	forget(cmd)
}

// completionsKept is how many completion functions cobra holds, for tests.
func completionsKept() int {
	cobraCompletionsMu.RLock()
	defer cobraCompletionsMu.RUnlock()
	return len(cobraCompletions)
}
