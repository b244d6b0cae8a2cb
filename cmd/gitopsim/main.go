// Command gitopsim simulates Azure Arc-enabled Kubernetes GitOps on one
// machine. See the README for what it starts and how to use it.
package main

import (
	"os"

	"github.com/gitopsim/gitopsim/cmd/gitopsim/app"
)

func main() {
	os.Exit(app.Main(os.Args[1:], os.Stdout, os.Stderr))
}
