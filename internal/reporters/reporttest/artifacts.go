package reporttest

import (
	"path"

	"github.com/zof-ai/zof-ci/api"
	"github.com/zof-ai/zof-ci/internal/reporters/report"
)

// ServerURL is the server of the runs WithArtifacts links to.
const ServerURL = "https://zof.example.com"

// WithArtifacts gives res (Failures) the artifacts its failed steps leave:
// checkout/eur's step 2 (an http step: request and response) and
// contract-tests' step 1 (a run step: output). dir, when not "", is where
// `--artifacts DIR` wrote them; server, when true, adds each download URL.
func WithArtifacts(res *report.Result, dir string, server bool) *report.Result {
	out := *res
	out.Artifacts = nil
	for _, a := range []api.Artifact{
		{Member: "checkout/eur", Step: 2, Attempt: 1, Kind: api.ArtifactRequest, Size: 120},
		{Member: "checkout/eur", Step: 2, Attempt: 1, Kind: api.ArtifactResponse, Size: 410, Truncated: true},
		{Member: "contract-tests", Step: 1, Attempt: 1, Kind: api.ArtifactOutput, Size: 2048},
	} {
		index := 0
		for i := range res.Run.Members {
			if res.Run.Members[i].ID == a.Member {
				index = i
			}
		}
		a.Name = api.ArtifactName(index, a.Member, a.Attempt, a.Step, a.Kind)
		a.ContentType = "text/plain; charset=utf-8"
		ra := report.Artifact{Artifact: a}
		if dir != "" {
			ra.Path = path.Join(dir, a.Name)
		}
		if server {
			ra.URL = ServerURL + api.ArtifactPath(res.Run.ID, a.Name)
		}
		out.Artifacts = append(out.Artifacts, ra)
	}
	return &out
}
