package webhook

import (
	"github.com/zof-ai/zof-ci/internal/trigger"
)

// job is what processing needs of a delivery, stored as the trigger's
// Detail so a restarted server can process it again.
type job struct {
	Provider string `json:"provider"`
	// Event is pull_request, push, merge_group (GitHub) or merge_request, push (GitLab).
	Event  string `json:"event"`
	Action string `json:"action,omitempty"`
	// Repo is the repository's path as the payload names it.
	Repo string `json:"repo"`
	// ProjectID is GitLab's numeric project id (0: use Repo).
	ProjectID int64 `json:"project_id,omitempty"`
	// PR is the pull request number or merge request iid.
	PR      int    `json:"pr,omitempty"`
	BaseSHA string `json:"base_sha,omitempty"`
	HeadSHA string `json:"head_sha"`
	// Ref is the branch (a pull request's head branch, a push's branch).
	Ref          string `json:"ref,omitempty"`
	ChangedFiles int    `json:"changed_files,omitempty"`
	Actor        string `json:"actor,omitempty"`
	// InstallationID is the GitHub App installation the delivery came
	// through (the payload's installation.id; 0: none).
	InstallationID int64 `json:"installation_id,omitempty"`
	// CompareBase is what a GitHub push or merge group is compared with for
	// scope changed (cigithub.Event.CompareRange); NoCompare says why there
	// is nothing to compare with when it is empty.
	CompareBase string `json:"compare_base,omitempty"`
	NoCompare   string `json:"no_compare,omitempty"`
	// FailOn is the suite's gate.fail_on, kept when the run is created so
	// the report can be judged after a restart.
	FailOn []string `json:"fail_on,omitempty"`
}

// describe copies what GET /v1/triggers shows of the job onto rec.
func (j *job) describe(rec *trigger.Record) {
	rec.Event = j.Event
	if j.Action != "" {
		rec.Event += "." + j.Action
	}
	rec.Repo, rec.Ref, rec.SHA, rec.PR = j.Repo, j.Ref, j.HeadSHA, j.PR
}

// idempotencyKey is the run's key: one delivery, one run, however often it
// is processed.
func idempotencyKey(provider, delivery string) string {
	return "webhook:" + provider + ":" + delivery
}
