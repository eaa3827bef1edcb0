package gitlab

import (
	"bytes"
	"errors"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"testing"

	"go.yaml.in/yaml/v3"
)

// TestComponentTemplate checks templates/zof.yml is a CI/CD component
// (spec:inputs, then ---, then the job), uses only inputs it declares, and
// keeps the JUnit report whatever the job's result.
func TestComponentTemplate(t *testing.T) {
	b, err := os.ReadFile(filepath.Join("..", "..", "..", "templates", "zof.yml"))
	if err != nil {
		t.Fatal(err)
	}
	dec := yaml.NewDecoder(bytes.NewReader(b))
	var header struct {
		Spec struct {
			Inputs map[string]struct {
				Default     *string `yaml:"default"`
				Description string  `yaml:"description"`
			} `yaml:"inputs"`
		} `yaml:"spec"`
	}
	if err := dec.Decode(&header); err != nil {
		t.Fatal(err)
	}
	var jobs map[string]struct {
		Image struct {
			Name       string   `yaml:"name"`
			Entrypoint []string `yaml:"entrypoint"`
		} `yaml:"image"`
		Variables map[string]string `yaml:"variables"`
		Script    []string          `yaml:"script"`
		Artifacts struct {
			When    string `yaml:"when"`
			Reports struct {
				JUnit string `yaml:"junit"`
			} `yaml:"reports"`
		} `yaml:"artifacts"`
	}
	if err := dec.Decode(&jobs); err != nil {
		t.Fatalf("the job document: %v", err)
	}
	var extra any
	if err := dec.Decode(&extra); !errors.Is(err, io.EOF) {
		t.Errorf("want exactly two documents, got another: %v", err)
	}
	if len(header.Spec.Inputs) == 0 {
		t.Fatal("no spec:inputs")
	}
	for name, in := range header.Spec.Inputs {
		if in.Default == nil || in.Description == "" {
			t.Errorf("input %s needs a default and a description", name)
		}
	}
	for _, m := range regexp.MustCompile(`\$\[\[\s*inputs\.([a-z-]+)\s*\]\]`).FindAllSubmatch(b, -1) {
		if _, ok := header.Spec.Inputs[string(m[1])]; !ok {
			t.Errorf("the job uses undeclared input %s", m[1])
		}
	}
	job, ok := jobs["$[[ inputs.job-name ]]"]
	if !ok || len(jobs) != 1 {
		t.Fatalf("jobs %v", jobs)
	}
	if job.Artifacts.When != "always" || job.Artifacts.Reports.JUnit != "$[[ inputs.junit ]]" {
		t.Errorf("artifacts %+v: the JUnit report must be kept when the job fails", job.Artifacts)
	}
	if len(job.Image.Entrypoint) != 1 || job.Image.Entrypoint[0] != "" {
		t.Errorf("the image's entrypoint (zof action) must be reset: %v", job.Image.Entrypoint)
	}
	// The default image has no git (docs/ci.md "The container"): a full clone would only
	// cost time, and the image's description must not promise git.
	if v, ok := job.Variables["GIT_DEPTH"]; ok {
		t.Errorf("GIT_DEPTH is %q: the default image has no git to use the history", v)
	}
	if d := header.Spec.Inputs["image"].Description; !regexp.MustCompile(`no git`).MatchString(d) {
		t.Errorf("the image input's description %q must say the image has no git", d)
	}
	if len(job.Script) == 0 || !regexp.MustCompile(`exec zof "\$@"`).MatchString(job.Script[0]) {
		t.Errorf("script %q", job.Script)
	}
}

func TestExampleGitLabCI(t *testing.T) {
	b, err := os.ReadFile(filepath.Join("..", "..", "..", "examples", "gitlab", ".gitlab-ci.yml"))
	if err != nil {
		t.Fatal(err)
	}
	var cfg map[string]any
	if err := yaml.Unmarshal(b, &cfg); err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{"include", "stages", "zof-plain", "release"} {
		if _, ok := cfg[k]; !ok {
			t.Errorf("example lacks %s", k)
		}
	}
}
