package github

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

func TestReadInputs(t *testing.T) {
	env := map[string]string{
		"INPUT_SUITE":             " examples/checkout/zof.yaml ",
		"INPUT_SCOPE":             "changed",
		"INPUT_ENVIRONMENT":       "staging",
		"INPUT_SERVER":            "https://zof.example.test",
		"INPUT_TOKEN":             "zof_secret",
		"INPUT_GITHUB-TOKEN":      "ghs_abc",
		"INPUT_TIMEOUT":           "45m",
		"INPUT_FAIL-ON":           "failed, blocked\ntimeout",
		"INPUT_JUNIT":             "reports/zof.xml",
		"INPUT_CHECKS":            "FALSE",
		"INPUT_SUMMARY":           "false",
		"INPUT_SUPERSEDE":         "true",
		"INPUT_WORKING-DIRECTORY": "services/checkout",
		"INPUT_COVERAGE":          "false",
	}
	in, err := ReadInputs(func(k string) string { return env[k] })
	if err != nil {
		t.Fatal(err)
	}
	want := &Inputs{
		Suite: "examples/checkout/zof.yaml", Scope: "changed", Environment: "staging", Server: "https://zof.example.test",
		Token: "zof_secret", GitHubToken: "ghs_abc", Timeout: 45 * time.Minute, FailOn: []string{"failed", "blocked", "timeout"},
		JUnit: "reports/zof.xml", Checks: ChecksFalse, Summary: false, Supersede: true, WorkingDirectory: "services/checkout",
		Coverage: false,
	}
	if d := cmp.Diff(want, in); d != "" {
		t.Errorf("inputs (-want +got):\n%s", d)
	}
}

func TestReadInputsDefaultsOutsideActions(t *testing.T) {
	getenv := func(string) string { return "" }
	in, err := ReadInputs(getenv)
	if err != nil {
		t.Fatal(err)
	}
	if d := cmp.Diff(&Inputs{Checks: ChecksAuto, Summary: true, Coverage: true}, in); d != "" {
		t.Errorf("defaults (-want +got):\n%s", d)
	}
	if InActions(getenv) {
		t.Error("not in Actions")
	}
	if !InActions(func(k string) string { return map[string]string{"GITHUB_ACTIONS": "true"}[k] }) {
		t.Error("GITHUB_ACTIONS=true is Actions")
	}
}

func TestReadInputsInvalid(t *testing.T) {
	env := map[string]string{"INPUT_TIMEOUT": "soon", "INPUT_FAIL-ON": "failed,exploded", "INPUT_CHECKS": "maybe", "INPUT_SUMMARY": "yes please", "INPUT_SUPERSEDE": "2", "INPUT_COVERAGE": "off"}
	_, err := ReadInputs(func(k string) string { return env[k] })
	if err == nil {
		t.Fatal("want an error")
	}
	for _, w := range []string{"input timeout", `"exploded"`, "input checks", "input summary", "input supersede", "input coverage"} {
		if !strings.Contains(err.Error(), w) {
			t.Errorf("error %q does not mention %q", err, w)
		}
	}
}

func TestMask(t *testing.T) {
	var b strings.Builder
	if err := Mask(&b, "s3cr%t", "", "  ", "line1\nline2"); err != nil {
		t.Fatal(err)
	}
	want := "::add-mask::s3cr%25t\n::add-mask::line1%0Aline2\n::add-mask::line1\n::add-mask::line2\n"
	if d := cmp.Diff(want, b.String()); d != "" {
		t.Errorf("mask commands (-want +got):\n%s", d)
	}
}

func TestMarkSafeDirectory(t *testing.T) {
	git, err := exec.LookPath("git")
	if err != nil {
		t.Skip("git is not installed")
	}
	home := t.TempDir()
	env := []string{"HOME=" + home, "XDG_CONFIG_HOME=" + filepath.Join(home, ".config"), "GIT_CONFIG_NOSYSTEM=1", "PATH=" + os.Getenv("PATH")}
	dir := "/github/workspace with space;$(touch x)"
	if err := MarkSafeDirectory(context.Background(), git, dir, env); err != nil {
		t.Fatal(err)
	}
	cfg, err := os.ReadFile(filepath.Join(home, ".gitconfig"))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(cfg), "safe") || !strings.Contains(string(cfg), "workspace with space;$(touch x)") {
		t.Errorf(".gitconfig:\n%s", cfg)
	}
	if err := MarkSafeDirectory(context.Background(), git, "", env); err == nil {
		t.Error("empty directory: want an error")
	}
	if err := MarkSafeDirectory(context.Background(), filepath.Join(home, "no-git"), dir, env); err == nil {
		t.Error("missing git: want an error")
	}
}
