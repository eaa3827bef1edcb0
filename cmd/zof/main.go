// Command zof is the Zof CI command: select, run, follow and gate test suites.
package main

import (
	"os"

	"github.com/zof-ai/zof-ci/internal/cli"
)

func main() {
	os.Exit(cli.Main(os.Args[1:], os.Stdin, os.Stdout, os.Stderr, os.Environ()))
}
