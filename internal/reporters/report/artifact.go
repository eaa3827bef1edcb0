package report

import (
	"fmt"
	"strconv"
	"strings"

	"github.com/zof-ai/zof-ci/api"
	"github.com/zof-ai/zof-ci/internal/secret"
)

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

// EvidenceLink is one download link of a member's evidence.
type EvidenceLink struct {
	// Label says what it is: "step 2 response", "(attempt 1)" added after a retry.
	Label string
	URL   string
}

// MemberEvidence is a member and the links to its evidence.
type MemberEvidence struct {
	Member *api.Member
	Links  []EvidenceLink
}

// Evidence lists, in member order, the members whose artifacts have a
// download URL (a run on a server) with a link to each: what the step
// summary and the merge request note link to.
func Evidence(run *api.Run, arts []Artifact) []MemberEvidence {
	if run == nil || len(arts) == 0 {
		return nil
	}
	var out []MemberEvidence
	for i := range run.Members {
		m := &run.Members[i]
		var links []EvidenceLink
		for _, a := range ArtifactsOf(arts, m.ID) {
			if a.URL == "" {
				continue
			}
			label := "step " + itoa(a.Step) + " " + string(a.Kind)
			if m.Attempt > 1 || a.Attempt > 1 {
				label += " (attempt " + itoa(a.Attempt) + ")"
			}
			links = append(links, EvidenceLink{Label: label, URL: a.URL})
		}
		if len(links) > 0 {
			out = append(out, MemberEvidence{Member: m, Links: links})
		}
	}
	return out
}

func itoa(n int) string { return strconv.Itoa(n) }

// EvidenceList is how a Markdown report links evidence: its heading, the
// most members it lists, how it escapes a member's name, and how it writes
// one link ("" to leave a URL out).
type EvidenceList struct {
	Heading    string
	MaxMembers int
	Escape     func(string) string
	Link       func(label, url string) string
}

// WriteEvidence writes a Markdown list linking the evidence of each failed
// step when a server ran the run (the GitHub step summary and the GitLab
// note); every text and URL is masked with m. Nothing when no member has any.
func WriteEvidence(b *strings.Builder, m *secret.Masker, res *Result, l EvidenceList) {
	ev := Evidence(res.Run, res.Artifacts)
	if len(ev) == 0 {
		return
	}
	b.WriteString(l.Heading)
	for i, e := range ev {
		if i == l.MaxMembers {
			fmt.Fprintf(b, "\nand %d more (the run lists every artifact)\n", len(ev)-i)
			break
		}
		var links []string
		for _, k := range e.Links {
			if s := l.Link(l.Escape(k.Label), Line(m, k.URL)); s != "" {
				links = append(links, s)
			}
		}
		if len(links) > 0 {
			fmt.Fprintf(b, "- %s: %s\n", l.Escape(Line(m, DisplayName(e.Member))), strings.Join(links, " · "))
		}
	}
	b.WriteString("\n")
}
