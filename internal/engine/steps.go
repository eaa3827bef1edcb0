package engine

import (
	"context"
	"net/url"
	"time"

	"github.com/zof-ai/zof-ci/api"
	"github.com/zof-ai/zof-ci/internal/secret"
)

// StepRunner executes one step; *step.Executor satisfies it (package step
// names these types step.Input and step.Output). It must return soon after
// ctx ends (a deadline means timed out, other ends cancelled).
type StepRunner interface {
	Run(ctx context.Context, s api.Step, in StepInput) StepOutput
}

// StepInput is what a step needs from its run, case and variant.
type StepInput struct {
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

// StepOutput is the result of one step.
type StepOutput struct {
	Status   api.StepStatus // passed | failed | cancelled
	Failure  *api.Failure
	Output   string            // the step's log, masked, tail-truncated
	Captures map[string]string // new captures
	Duration time.Duration
	// Evidence is what a failed step leaves for a person to look at (the
	// engine keeps it as the run's artifacts, ArtifactStore); nil for a step
	// that did not fail, so passing steps cost nothing.
	Evidence []Evidence
}

// Evidence is one piece of a failed step's evidence: text, masked by the
// step runner, at most the limit of its kind (Truncated when cut).
type Evidence struct {
	Kind        api.ArtifactKind
	ContentType string
	Content     []byte
	Truncated   bool
}

// ServiceStarter starts an environment's serve command and waits until it is
// ready. The runner adapts step.StartService to it.
type ServiceStarter interface {
	Start(ctx context.Context, s api.Serve, baseURL string) (Service, error)
}

// Service is a started serve command.
type Service interface {
	// Stop stops the service's whole process group.
	Stop(ctx context.Context) error
}
