// Package step executes http and run steps and starts services.
package step

import "github.com/zof-ai/zof-ci/internal/engine"

// Input is what a step needs from its run, case and variant. It is the
// engine's StepInput: the engine defines what it hands a step runner, and
// *Executor satisfies engine.StepRunner.
type Input = engine.StepInput

// Output is the result of one step (the engine's StepOutput).
type Output = engine.StepOutput

var _ engine.StepRunner = (*Executor)(nil)
