// Argo CD's application controller and repo server, the two parts of Argo CD that sync an Application,
// in one binary: ARGOCD_BINARY_NAME chooses, as it does for Argo CD's own multi-call binary. Built by
// kibertas_async.sandbox.argocd instead of Argo CD's cmd/main.go, which links every other component too
// (API server, UI, Dex, notifications, the CLI) and so builds for minutes longer.
package main

import (
	"fmt"
	"os"

	"github.com/spf13/cobra"

	appcontroller "github.com/argoproj/argo-cd/v2/cmd/argocd-application-controller/commands"
	reposerver "github.com/argoproj/argo-cd/v2/cmd/argocd-repo-server/commands"
)

func main() {
	var command *cobra.Command
	switch name := os.Getenv("ARGOCD_BINARY_NAME"); name {
	case "argocd-application-controller":
		command = appcontroller.NewCommand()
	case "argocd-repo-server":
		command = reposerver.NewCommand()
	default:
		fmt.Fprintf(os.Stderr, "ARGOCD_BINARY_NAME must be argocd-application-controller or argocd-repo-server, not %q\n", name)
		os.Exit(2)
	}
	if err := command.Execute(); err != nil {
		os.Exit(1)
	}
}
