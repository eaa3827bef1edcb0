package cli

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"path/filepath"

	"github.com/zof-ai/zof-ci/internal/cli/iostreams"
	"github.com/zof-ai/zof-ci/internal/coverage"
	"github.com/zof-ai/zof-ci/internal/engine/memstore"
	"github.com/zof-ai/zof-ci/internal/engine/pgstore"
	"github.com/zof-ai/zof-ci/internal/engine/sqlitestore"
	"github.com/zof-ai/zof-ci/internal/exitcode"
	"github.com/zof-ai/zof-ci/internal/server"
	"github.com/zof-ai/zof-ci/internal/suite"
	"github.com/zof-ai/zof-ci/internal/web"
)

// coverageStore keeps each project's latest coverage summary for zof
// serve: the API stores and serves it, the console's home page lists it.
type coverageStore interface {
	server.CoverageStore
	web.Coverage
}

var (
	_ coverageStore = (*sqlitestore.Store)(nil)
	_ coverageStore = (*pgstore.Store)(nil)
	_ coverageStore = (*memstore.Store)(nil)
)

// coverageOptions are zof coverage's.
type coverageOptions struct {
	IO          *iostreams.IOStreams
	Env         Env
	Suite       string
	Environment string
	Output      string
}

func newCmdCoverage(f *Factory, runF func(context.Context, *coverageOptions) error) *command {
	o := &coverageOptions{IO: f.IO, Env: f.Env}
	c := &command{
		name:  "coverage",
		short: "map every tracked file onto the suite's covers: covered, global, ignored or uncovered",
		long: "Reads the file list from git (git ls-files) in the checkout that holds the suite file and\n" +
			"classifies each file as --scope changed would: global, ignored, covered by some case, or\n" +
			"uncovered (a change to it falls back to selection.unmapped). Files are grouped by\n" +
			"selection.modules, else by top-level directory. --output json prints the report (version 1,\n" +
			"see docs/coverage.md). Exits 0; 64 outside a git checkout or for an invalid suite.",
		example: "zof coverage --suite zof.yaml --output json",
	}
	c.flags = func(fs *flag.FlagSet) {
		fs.StringVar(&o.Suite, "suite", "zof.yaml", "suite file (env ZOF_SUITE)")
		fs.StringVar(&o.Environment, "env", "", "environment whose ${VAR}s the suite expands (env ZOF_ENV; default: defaults.environment)")
		fs.StringVar(&o.Output, "output", "text", "text | json")
	}
	c.run = func(ctx context.Context, fs *flag.FlagSet, pos []string) error {
		if err := noArgs(c, pos, ""); err != nil {
			return err
		}
		set := setFlags(fs)
		fromEnv(set, "suite", f.Env, "ZOF_SUITE", &o.Suite)
		fromEnv(set, "env", f.Env, "ZOF_ENV", &o.Environment)
		if err := checkOutput(o.Output); err != nil {
			return err
		}
		if runF != nil {
			return runF(ctx, o)
		}
		return coverageRun(ctx, o)
	}
	return c
}

func coverageRun(ctx context.Context, o *coverageOptions) error {
	s, err := suite.Load(o.Suite, suite.Options{Lookup: o.Env.Lookup, Environment: o.Environment})
	if err != nil {
		return err
	}
	r, err := coverage.Of(ctx, s, filepath.Dir(o.Suite), o.Env.List())
	if errors.Is(err, coverage.ErrNotCheckout) {
		return exitcode.Wrap(exitcode.Usage, err)
	}
	if err != nil {
		return err
	}
	if o.Output == "json" {
		err = coverage.WriteJSON(o.IO.Out, r)
	} else {
		err = coverage.WriteText(o.IO.Out, r)
	}
	if err != nil {
		return fmt.Errorf("writing the coverage report: %w", err)
	}
	return nil
}
