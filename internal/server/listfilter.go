package server

import (
	"fmt"
	"net/url"
	"slices"
	"strconv"

	"github.com/zof-ai/zof-ci/internal/engine"
)

// Triggers are the values of a run's source.trigger (api.Source).
var Triggers = []string{"ci", "api", "webhook", "schedule"}

// sourceFilter reads GET /v1/runs's branch, pr, trigger and flaky into f.
func sourceFilter(q url.Values, f *engine.ListFilter) error {
	f.Branch = q.Get("branch")
	if v := q.Get("pr"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 {
			return fmt.Errorf("pr %q must be a pull request number (1 or more)", v)
		}
		f.PR = n
	}
	if v := q.Get("trigger"); v != "" {
		if !slices.Contains(Triggers, v) {
			return fmt.Errorf("trigger %q is not one of %v", v, Triggers)
		}
		f.Trigger = v
	}
	if v := q.Get("flaky"); v != "" {
		b, err := strconv.ParseBool(v)
		if err != nil {
			return fmt.Errorf("flaky %q must be true or false", v)
		}
		f.Flaky = b
	}
	return nil
}
