package report

import "github.com/zof-ai/zof-ci/api"

// Artifact is one piece of the evidence kept for a failed step
// (docs/api.md, Artifacts) and where a reader finds it.
type Artifact struct {
	api.Artifact
	// URL downloads it from the server that ran the run (the API's address,
	// which a browser logged in to the console opens); "" for an embedded run.
	URL string
	// Path is the file `--artifacts DIR` wrote it to, as DIR was given
	// (relative or absolute); "" when it was not written.
	Path string
}

// ArtifactsOf returns the artifacts of member, in the order kept.
func ArtifactsOf(arts []Artifact, member string) []Artifact {
	var out []Artifact
	for _, a := range arts {
		if a.Member == member {
			out = append(out, a)
		}
	}
	return out
}
