package engine_test

import (
	"context"
	"fmt"
	"testing"

	"github.com/zof-ai/zof-ci/api"
	"github.com/zof-ai/zof-ci/internal/engine"
	"github.com/zof-ai/zof-ci/internal/engine/memstore"
	"github.com/zof-ai/zof-ci/internal/step"
)

type noopSteps struct{}

func (noopSteps) Run(context.Context, api.Step, step.Input) step.Output {
	return step.Output{Status: api.StepPassed}
}

// BenchmarkCreateAndComplete: create a run of 10 one-step members and wait
// for its verdict, on memstore with a step runner that does nothing. It
// measures the engine's own overhead per run (scheduling, events, store).
func BenchmarkCreateAndComplete(b *testing.B) {
	e, err := engine.New(engine.Config{Store: memstore.New(), Steps: noopSteps{}})
	if err != nil {
		b.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error)
	go func() { done <- e.Run(ctx) }()
	defer func() { cancel(); <-done }()
	var cases []api.Case
	for i := range 10 {
		cases = append(cases, tcase(fmt.Sprintf("c%d", i), "s"))
	}
	req := runReq("bench", cases...)
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		r, _, err := e.Create(ctx, tenant, req, engine.CreateOptions{})
		if err != nil {
			b.Fatal(err)
		}
		got, err := e.Wait(ctx, tenant, r.ID)
		if err != nil || got.Status != api.StatusPassed {
			b.Fatalf("run %s: %v %v", r.ID, got.Status, err)
		}
	}
}
