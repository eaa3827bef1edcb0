// Package step executes http and run steps and starts services.
package step

import (
	"net/url"
	"time"

	"github.com/zof-ai/zof-ci/api"
	"github.com/zof-ai/zof-ci/internal/secret"
)

// Input is what a step needs from its run, case and variant.
type Input struct {
	BaseURL  string            // environment URL
	Headers  map[string]string // environment headers
	Vars     map[string]string // variant vars, ${vars.NAME}
	Captures map[string]string // earlier steps' captures, ${capture.NAME}
	Dir      string            // working directory for run steps
	Env      []string          // base environment for commands
	Mask     *secret.Masker
	// AllowURL, when set, must accept every URL an http step reaches, the
	// first request and each redirect (zof serve: the tenant's allowed_targets,
	// so an allowed target cannot redirect a step elsewhere).
	AllowURL func(*url.URL) error
}

// Output is the result of one step.
type Output struct {
	Status   api.StepStatus // passed | failed | cancelled
	Failure  *api.Failure
	Output   string            // the step's log, masked, tail-truncated
	Captures map[string]string // new captures
	Duration time.Duration
}
