package engine

import (
	"encoding/json"
	"fmt"

	"github.com/zof-ai/zof-ci/api"
)

// DecodeCoverage reads a project's coverage summary as every store keeps it:
// the api.ProjectCoverage as JSON (docs/coverage.md).
func DecodeCoverage(body []byte) (*api.ProjectCoverage, error) {
	var c api.ProjectCoverage
	if err := json.Unmarshal(body, &c); err != nil {
		return nil, fmt.Errorf("reading a stored coverage summary: %w", err)
	}
	return &c, nil
}
