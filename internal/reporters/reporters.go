// Package reporters is the registry of report writers (console, junit, json),
// all fed the same report.Result; the shared types live in reporters/report.
package reporters

import (
	"fmt"
	"sort"
	"strings"
	"sync"

	"github.com/zof-ai/zof-ci/internal/reporters/console"
	"github.com/zof-ai/zof-ci/internal/reporters/jsonreport"
	"github.com/zof-ai/zof-ci/internal/reporters/junit"
	"github.com/zof-ai/zof-ci/internal/reporters/report"
)

// The shared types, so callers need only this package.
type (
	// Result is what every reporter is fed.
	Result = report.Result
	// Reporter writes one report.
	Reporter = report.Reporter
	// Live reporters also see every event as it happens.
	Live = report.Live
	// Starter reporters are also told when the run is submitted (Start), before
	// its first event; callers check for it with a type assertion.
	Starter = report.Starter
	// Options configure a reporter.
	Options = report.Options
	// Factory builds a reporter.
	Factory = report.Factory
)

// Registry maps reporter names to factories. It is safe for concurrent use.
type Registry struct {
	mu sync.RWMutex
	f  map[string]Factory
}

// NewRegistry returns an empty registry.
func NewRegistry() *Registry { return &Registry{f: map[string]Factory{}} }

// Register adds or replaces the factory for name.
func (r *Registry) Register(name string, f Factory) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.f == nil {
		r.f = map[string]Factory{}
	}
	r.f[name] = f
}

// Names lists the registered names, sorted.
func (r *Registry) Names() []string {
	r.mu.RLock()
	defer r.mu.RUnlock()
	names := make([]string, 0, len(r.f))
	for n := range r.f {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

// New builds the reporter registered as name.
func (r *Registry) New(name string, o Options) (Reporter, error) {
	r.mu.RLock()
	f, ok := r.f[name]
	r.mu.RUnlock()
	if !ok {
		return nil, fmt.Errorf("unknown reporter %q: known reporters are %s", name, strings.Join(r.Names(), ", "))
	}
	rep, err := f(o)
	if err != nil {
		return nil, fmt.Errorf("reporter %s: %w", name, err)
	}
	return rep, nil
}

// Default returns a registry with console, junit and json.
func Default() *Registry {
	r := NewRegistry()
	r.Register(console.Name, console.New)
	r.Register(junit.Name, junit.New)
	r.Register(jsonreport.Name, jsonreport.New)
	return r
}

// Terminal decides the console's mode from whether stdout is a terminal and
// the environment (lookup is os.LookupEnv in main): the redrawing TTY view only
// on a terminal with none of NO_COLOR, CI or TERM=dumb; colours wherever the
// TTY view is used; GitHub Actions groups when GITHUB_ACTIONS=true.
func Terminal(isTerminal bool, lookup func(string) (string, bool)) (tty, color, githubActions bool) {
	set := func(k string) bool { v, ok := lookup(k); return ok && v != "" }
	term, _ := lookup("TERM")
	tty = isTerminal && !set("NO_COLOR") && !set("CI") && term != "dumb"
	gha, _ := lookup("GITHUB_ACTIONS")
	return tty, tty, gha == "true"
}
