// Command kubectl is kubectl v1.21.14, the version the fluxcd/flux:1.25.4
// image ships (docker/kubectl.version in fluxcd/flux v1.25.4) and runs for
// every sync. The e2e divergence suite applies each fixture with it and
// compares the result with what gitopsim's operator applied. The body is
// that of kubernetes v1.21's cmd/kubectl; the command itself lives in the
// k8s.io/kubectl module.
package main

import (
	"os"

	"k8s.io/component-base/logs"
	"k8s.io/kubectl/pkg/cmd"
)

func main() {
	command := cmd.NewDefaultKubectlCommand()
	logs.InitLogs()
	defer logs.FlushLogs()
	if err := command.Execute(); err != nil {
		os.Exit(1)
	}
}
