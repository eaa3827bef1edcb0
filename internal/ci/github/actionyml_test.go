package github_test

import (
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"go.yaml.in/yaml/v3"

	cigithub "github.com/zof-ai/zof-ci/internal/ci/github"
	rgithub "github.com/zof-ai/zof-ci/internal/reporters/github"
)

// keys returns a mapping node's keys in file order.
func keys(t *testing.T, n *yaml.Node) []string {
	t.Helper()
	if n == nil || n.Kind != yaml.MappingNode {
		t.Fatalf("not a mapping: %v", n)
	}
	var out []string
	for i := 0; i < len(n.Content); i += 2 {
		out = append(out, n.Content[i].Value)
	}
	return out
}

func child(n *yaml.Node, key string) *yaml.Node {
	if n.Kind == yaml.DocumentNode {
		n = n.Content[0]
	}
	for i := 0; i+1 < len(n.Content); i += 2 {
		if n.Content[i].Value == key {
			return n.Content[i+1]
		}
	}
	return nil
}

// releaseImage is where the release workflow publishes the image action.yml runs.
const releaseImage = "ghcr.io/zof-ai/zof-ci"

// TestActionYAML holds action.yml to ci.md: the inputs and outputs exactly,
// a container action built from the Dockerfile whose entrypoint is zof action.
func TestActionYAML(t *testing.T) {
	root := filepath.Join("..", "..", "..")
	b, err := os.ReadFile(filepath.Join(root, "action.yml"))
	if err != nil {
		t.Fatal(err)
	}
	var doc yaml.Node
	if err := yaml.Unmarshal(b, &doc); err != nil {
		t.Fatal(err)
	}
	if d := cmp.Diff(cigithub.InputNames, keys(t, child(&doc, "inputs"))); d != "" {
		t.Errorf("inputs (-ci.md +action.yml):\n%s", d)
	}
	if d := cmp.Diff(rgithub.OutputNames, keys(t, child(&doc, "outputs"))); d != "" {
		t.Errorf("outputs (-ci.md +action.yml):\n%s", d)
	}
	defaults := map[string]string{"github-token": "${{ github.token }}", "checks": "auto", "summary": "true", "supersede": "false", "coverage": "true"}
	for name, want := range defaults {
		if got := child(child(child(&doc, "inputs"), name), "default"); got == nil || got.Value != want {
			t.Errorf("input %s default %v, want %q", name, got, want)
		}
	}
	runs := child(&doc, "runs")
	// The action pulls the published image (built from the Dockerfile by the release
	// workflow) instead of building the Dockerfile on every job.
	if child(runs, "using").Value != "docker" || child(runs, "image").Value != "docker://"+releaseImage+":v1" {
		t.Errorf("runs: want using docker, image docker://%s:v1", releaseImage)
	}
	wf, err := os.ReadFile(filepath.Join(root, ".github", "workflows", "release.yml"))
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{releaseImage + ":${TAG}", releaseImage + ":${major}", "file: Dockerfile"} {
		if !strings.Contains(string(wf), want) {
			t.Errorf("release workflow lacks %q: it must publish the image action.yml references", want)
		}
	}
	df, err := os.ReadFile(filepath.Join(root, "Dockerfile"))
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{`scripts/build.sh /out/zof`, `ENTRYPOINT ["/usr/local/bin/zof", "action"]`,
		"RUN image-rootfs.sh / /rootfs", "COPY --from=rootfs /rootfs/ /", "COPY --from=build /out/zof /usr/local/bin/zof", "ENV PATH=/usr/local/bin:/bin"} {
		if !strings.Contains(string(df), want) {
			t.Errorf("Dockerfile lacks %q", want)
		}
	}
	// The final stage is FROM scratch (docs/ci.md "The container"), and the packages the
	// rootfs stage installs are those scripts/image-tree.sh downloads to measure and test
	// the image without Docker: no git among them.
	froms := regexp.MustCompile(`(?m)^FROM (\S+)`).FindAllStringSubmatch(string(df), -1)
	if len(froms) == 0 || froms[len(froms)-1][1] != "scratch" {
		t.Errorf("the Dockerfile's final stage is %v, want FROM scratch", froms)
	}
	installed := regexp.MustCompile(`apt-get install -y --no-install-recommends ([a-z0-9 .+-]+)`).FindStringSubmatch(string(df))
	tree, err := os.ReadFile(filepath.Join(root, "scripts", "image-tree.sh"))
	if err != nil {
		t.Fatal(err)
	}
	downloaded := regexp.MustCompile(`(?m)^packages="([a-z0-9 .+-]+)"$`).FindStringSubmatch(string(tree))
	if installed == nil || downloaded == nil || strings.Join(strings.Fields(installed[1]), " ") != strings.Join(strings.Fields(downloaded[1]), " ") {
		t.Errorf("the Dockerfile installs %q, scripts/image-tree.sh downloads %q: they must be the same packages", installed, downloaded)
	}
	if installed != nil && slices.Contains(strings.Fields(installed[1]), "git") {
		t.Error("the image installs git: it has none by design")
	}
	sh, err := os.ReadFile(filepath.Join(root, "scripts", "build.sh"))
	if err != nil {
		t.Fatal(err)
	}
	if !regexp.MustCompile(`CGO_ENABLED=0 go build -trimpath -ldflags "-s -w -X github.com/zof-ai/zof-ci/internal/cli.version=\$\{VERSION\}"`).Match(sh) {
		t.Error("scripts/build.sh does not run the documented build command")
	}
}
