package api

import (
	"fmt"
	"net/url"
	"strings"
)

// ArtifactKind says what a piece of evidence of a failed step is.
type ArtifactKind string

// The kinds of evidence a failed step leaves (docs/api.md, Artifacts).
const (
	// ArtifactRequest: an http step's request line and headers, secrets
	// masked (Authorization, Cookie and the like always).
	ArtifactRequest ArtifactKind = "request"
	// ArtifactResponse: an http step's response status line, headers and
	// body (the first bytes of it, up to a limit).
	ArtifactResponse ArtifactKind = "response"
	// ArtifactOutput: a run step's output, stdout and stderr interleaved as
	// the command wrote them (the last bytes of it, up to a limit).
	ArtifactOutput ArtifactKind = "output"
)

// Artifact describes one piece of evidence kept for a failed step: an item
// of GET /v1/runs/{id}/artifacts. Its content is GET
// /v1/runs/{id}/artifacts/{name} (ArtifactPath).
type Artifact struct {
	// Name is unique within the run and safe as a file name and as one URL
	// path segment: "{n}-{member}-a{attempt}-s{step}-{kind}.txt".
	Name    string       `json:"name"`
	Member  string       `json:"member"`
	Step    int          `json:"step"`
	Attempt int          `json:"attempt"`
	Kind    ArtifactKind `json:"kind"`
	// Size is the stored content's length in bytes.
	Size        int64  `json:"size"`
	ContentType string `json:"content_type"`
	// Truncated: the content was cut, by the limit of its kind or by the
	// run's total (the content ends with a line saying which).
	Truncated bool `json:"truncated,omitempty"`
}

// ArtifactList is the answer of GET /v1/runs/{id}/artifacts, in the order
// the artifacts were kept.
type ArtifactList struct {
	Artifacts []Artifact `json:"artifacts"`
}

// ArtifactPath is the API path of an artifact's content.
func ArtifactPath(runID, name string) string {
	return "/v1/runs/" + url.PathEscape(runID) + "/artifacts/" + url.PathEscape(name)
}

// MaxArtifactSlug bounds the member part of an artifact's name, so names
// stay well under the 255 bytes most file systems allow in one name.
const MaxArtifactSlug = 64

// ArtifactName is the name of the evidence of kind of step (from 1) of
// attempt of the member at index (from 0) in the run's members. The index
// makes it unique whatever the member's id; the id is kept, with every byte
// outside [A-Za-z0-9._-] replaced by '_', so a person can tell the files apart.
func ArtifactName(index int, member string, attempt, step int, kind ArtifactKind) string {
	var b strings.Builder
	for i := 0; i < len(member) && b.Len() < MaxArtifactSlug; i++ {
		c := member[i]
		switch {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9', c == '.', c == '_', c == '-':
			b.WriteByte(c)
		default:
			b.WriteByte('_')
		}
	}
	return fmt.Sprintf("%d-%s-a%d-s%d-%s.txt", index+1, b.String(), attempt, step, kind)
}
