package webhook

import (
	"strings"
	"testing"
)

// FuzzDecodeGitHub: no payload panics the decoder, and an accepted one has
// what processing needs.
func FuzzDecodeGitHub(f *testing.F) {
	sha := strings.Repeat("a", 40)
	f.Add("pull_request", []byte(`{"action":"synchronize","number":7,"pull_request":{"number":7,"head":{"sha":"`+sha+`","ref":"f","repo":{"full_name":"a/b"}},"base":{"sha":"`+sha+`","ref":"main","repo":{"full_name":"a/b"}}},"repository":{"full_name":"a/b"},"sender":{"login":"x"}}`))
	f.Add("push", []byte(`{"ref":"refs/heads/main","before":"`+sha+`","after":"`+sha+`","repository":{"full_name":"a/b"}}`))
	f.Add("merge_group", []byte(`{"action":"checks_requested","merge_group":{"head_sha":"`+sha+`","base_sha":"`+sha+`","head_ref":"refs/heads/gh-readonly-queue/main/pr-1"},"repository":{"full_name":"a/b"}}`))
	f.Add("push", []byte(`{"ref":"refs/heads/f","before":"0000000000000000000000000000000000000000","after":"`+sha+`","created":true,"repository":{"full_name":"a/b","default_branch":"main"},"installation":{"id":7}}`))
	f.Add("push", []byte(`{"ref":"refs/heads/main","before":"0000000000000000000000000000000000000000","after":"`+sha+`","created":true,"repository":{"full_name":"a/b","default_branch":"main"}}`))
	f.Add("pull_request", []byte(`{"action":"opened","pull_request":null}`))
	f.Add("ping", []byte(`{}`))
	f.Add("push", []byte(`[`))
	f.Fuzz(func(t *testing.T, event string, body []byte) {
		j, reason, err := decodeGitHub(event, body)
		if err != nil || reason != "" {
			if j != nil {
				t.Fatalf("a job with an error or a reason: %+v %q %v", j, reason, err)
			}
			return
		}
		if j == nil || !validSHA(j.HeadSHA) || !strings.Contains(j.Repo, "/") || (j.Event == "push" && j.Ref == "") {
			t.Fatalf("accepted an incomplete job: %+v", j)
		}
		if j.Event == "pull_request" && j.PR <= 0 {
			t.Fatalf("a pull request without a number: %+v", j)
		}
		if j.Event != "pull_request" && (j.CompareBase == "") == (j.NoCompare == "") {
			t.Fatalf("a %s job must say what it compares with, or why nothing: %+v", j.Event, j)
		}
		if j.InstallationID < 0 {
			t.Fatalf("a negative installation: %+v", j)
		}
	})
}

// FuzzDecodeGitLab: likewise for GitLab payloads.
func FuzzDecodeGitLab(f *testing.F) {
	sha := strings.Repeat("b", 40)
	f.Add("Merge Request Hook", []byte(`{"object_kind":"merge_request","project":{"id":1,"path_with_namespace":"g/p"},"object_attributes":{"iid":3,"action":"open","source_branch":"f","last_commit":{"id":"`+sha+`"}}}`))
	f.Add("Merge Request Hook", []byte(`{"object_kind":"merge_request","project":{"id":1,"path_with_namespace":"g/p"},"object_attributes":{"iid":3,"action":"update","oldrev":"`+sha+`","last_commit":{"id":"`+sha+`"}}}`))
	f.Add("Push Hook", []byte(`{"object_kind":"push","ref":"refs/heads/main","before":"`+sha+`","after":"`+sha+`","project":{"path_with_namespace":"g/p"}}`))
	f.Add("Push Hook", []byte(`{"object_kind":"push","project":null}`))
	f.Add("Note Hook", []byte(`{}`))
	f.Fuzz(func(t *testing.T, event string, body []byte) {
		j, reason, err := decodeGitLab(event, body)
		if err != nil || reason != "" {
			if j != nil {
				t.Fatalf("a job with an error or a reason: %+v %q %v", j, reason, err)
			}
			return
		}
		if j == nil || !validSHA(j.HeadSHA) || j.Repo == "" || (j.Event == "push" && j.Ref == "") {
			t.Fatalf("accepted an incomplete job: %+v", j)
		}
		if j.Event == "merge_request" && j.PR <= 0 {
			t.Fatalf("a merge request without an iid: %+v", j)
		}
	})
}
