package ci

import (
	"testing"

	"github.com/google/go-cmp/cmp"
)

func lookup(env map[string]string) func(string) (string, bool) {
	return func(k string) (string, bool) { v, ok := env[k]; return v, ok }
}

func TestDetect(t *testing.T) {
	tests := []struct {
		name string
		env  map[string]string
		want Context
	}{
		{"laptop", map[string]string{"HOME": "/home/dev"}, Context{Provider: Local}},
		{"laptop with shard", map[string]string{"ZOF_SHARD": "2"}, Context{Provider: Local, Shard: "2"}},
		{"generic CI", map[string]string{"CI": "true", "BUILD_ID": "9"}, Context{Provider: Generic}},
		{"CI=false is local", map[string]string{"CI": "false"}, Context{Provider: Local}},
		{
			"github pull request",
			map[string]string{
				"CI": "true", "GITHUB_ACTIONS": "true", "GITHUB_REPOSITORY": "acme/shop", "GITHUB_SHA": "abc123",
				"GITHUB_REF": "refs/pull/42/merge", "GITHUB_RUN_ID": "987", "GITHUB_RUN_ATTEMPT": "2",
				"GITHUB_JOB": "gate", "GITHUB_ACTOR": "octo", "GITHUB_SERVER_URL": "https://github.com/", "ZOF_SHARD": "1/3",
			},
			Context{Provider: GitHub, Repo: "acme/shop", SHA: "abc123", Ref: "refs/pull/42/merge", PR: 42, RunID: "987",
				Attempt: 2, Job: "gate", Shard: "1/3", Actor: "octo", URL: "https://github.com/acme/shop/actions/runs/987/attempts/2"},
		},
		{
			"github push, no server url",
			map[string]string{"GITHUB_ACTIONS": "true", "GITHUB_REPOSITORY": "acme/shop", "GITHUB_REF": "refs/heads/main", "GITHUB_RUN_ID": "5", "GITHUB_RUN_ATTEMPT": "x"},
			Context{Provider: GitHub, Repo: "acme/shop", Ref: "refs/heads/main", RunID: "5"},
		},
		{
			"gitlab merge request",
			map[string]string{
				"CI": "true", "GITLAB_CI": "true", "CI_PROJECT_PATH": "grp/sub/shop", "CI_COMMIT_SHA": "def456",
				"CI_COMMIT_REF_NAME": "feature/x", "CI_MERGE_REQUEST_IID": "17", "CI_PIPELINE_ID": "321",
				"CI_JOB_NAME": "gate", "CI_JOB_ID": "555", "GITLAB_USER_LOGIN": "dev", "CI_JOB_URL": "https://gitlab.example.com/grp/sub/shop/-/jobs/555",
			},
			Context{Provider: GitLab, Repo: "grp/sub/shop", SHA: "def456", Ref: "feature/x", PR: 17, RunID: "321",
				Job: "gate", JobID: "555", Actor: "dev", URL: "https://gitlab.example.com/grp/sub/shop/-/jobs/555"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := Detect(lookup(tt.env))
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("Detect (-want +got):\n%s", diff)
			}
		})
	}
}

func TestIdentityAndBranch(t *testing.T) {
	tests := []struct {
		c        Context
		identity bool
		branch   string
	}{
		{Context{Provider: Local, Ref: "main"}, false, "main"},
		{Context{Provider: Generic}, false, ""},
		{Context{Provider: GitHub}, false, ""},
		{Context{Provider: GitHub, RunID: "1", Ref: "refs/heads/release/1.2"}, true, "release/1.2"},
		{Context{Provider: GitHub, RunID: "1", Ref: "refs/tags/v1"}, true, ""},
		{Context{Provider: GitHub, RunID: "1", Ref: "refs/pull/3/merge"}, true, ""},
		{Context{Provider: GitLab, RunID: "1", Ref: "feature/x"}, true, "feature/x"},
	}
	for _, tt := range tests {
		if got := tt.c.HasIdentity(); got != tt.identity {
			t.Errorf("%+v.HasIdentity() = %v, want %v", tt.c, got, tt.identity)
		}
		if got := tt.c.Branch(); got != tt.branch {
			t.Errorf("%+v.Branch() = %q, want %q", tt.c, got, tt.branch)
		}
	}
}
