package api

import (
	"net/url"
	"path/filepath"
	"regexp"
	"testing"
)

var artifactNameRE = regexp.MustCompile(`^[0-9]+-[A-Za-z0-9._-]*-a-?[0-9]+-s-?[0-9]+-[a-z]+\.txt$`)

// FuzzArtifactName: whatever the member id, an artifact's name is one safe
// file name and URL path segment, bounded, and two members never share one.
func FuzzArtifactName(f *testing.F) {
	for _, s := range []string{"checkout/eur", "../../etc/passwd", "<script>", "..", "a b\x00c", "ü🙂", ""} {
		f.Add(s, 0, 1, 2)
	}
	f.Fuzz(func(t *testing.T, member string, index, attempt, step int) {
		if index < 0 || index > 1<<20 {
			return
		}
		name := ArtifactName(index, member, attempt, step, ArtifactResponse)
		switch {
		case !artifactNameRE.MatchString(name):
			t.Fatalf("ArtifactName(%q) = %q: not of the documented shape", member, name)
		case filepath.Base(name) != name || name == "." || name == "..":
			t.Fatalf("ArtifactName(%q) = %q: not one file name", member, name)
		case url.PathEscape(name) != name:
			t.Fatalf("ArtifactName(%q) = %q: needs escaping in a URL", member, name)
		case len(name) > MaxArtifactSlug+64:
			t.Fatalf("ArtifactName(%q) = %q: %d bytes", member, name, len(name))
		}
		if other := ArtifactName(index+1, member, attempt, step, ArtifactResponse); other == name {
			t.Fatalf("two members share the name %q", name)
		}
	})
}

func TestArtifactPathEscapes(t *testing.T) {
	if got, want := ArtifactPath("run/1", "a b.txt"), "/v1/runs/run%2F1/artifacts/a%20b.txt"; got != want {
		t.Errorf("ArtifactPath = %q, want %q", got, want)
	}
}
