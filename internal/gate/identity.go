package gate

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"slices"
	"strconv"
	"strings"

	"github.com/zof-ai/zof-ci/internal/ci"
)

// KeyInput is what identifies one gate of one CI job (docs/cli.md "Run identity"): the same inputs mean the same run.
type KeyInput struct {
	Project     string
	Environment string
	// Cases are the selected case ids (order does not matter).
	Cases []string
	// SuiteDigest is the suite file's content digest (suite.Suite.Digest).
	SuiteDigest string
	SHA         string
	CI          ci.Context
}

// IdempotencyKey is the hex SHA-256 of a canonical encoding of the key input: one
// "name=quoted value" line per field in a fixed order, under a version line, so no two
// different inputs can encode alike. A retried step or a redelivered trigger gets the same
// key; a new attempt of the CI run (GitHub's run attempt, GitLab's new job id) a new one.
func IdempotencyKey(in KeyInput) string {
	cases := slices.Clone(in.Cases)
	slices.Sort(cases)
	quoted := make([]string, len(cases))
	for i, c := range cases {
		quoted[i] = strconv.Quote(c)
	}
	var b strings.Builder
	b.WriteString("zof-idempotency-key/v1\n")
	field := func(name, value string) {
		b.WriteString(name + "=" + strconv.Quote(value) + "\n")
	}
	field("project", in.Project)
	field("environment", in.Environment)
	b.WriteString("cases=[" + strings.Join(quoted, ",") + "]\n")
	field("suite_digest", in.SuiteDigest)
	field("sha", in.SHA)
	field("ci.provider", string(in.CI.Provider))
	field("ci.repo", in.CI.Repo)
	field("ci.run_id", in.CI.RunID)
	field("ci.attempt", strconv.Itoa(in.CI.Attempt))
	field("ci.job", in.CI.Job)
	field("ci.job_id", in.CI.JobID)
	field("ci.shard", in.CI.Shard)
	sum := sha256.Sum256([]byte(b.String()))
	return hex.EncodeToString(sum[:])
}

// RandomKey is the key of a run without a CI identity (a developer's laptop, an unknown
// CI): a derived key would attach today's `zof run` to yesterday's run of the same commit,
// so every invocation gets a fresh one. Retries inside one invocation still reuse it.
func RandomKey() string {
	var b [32]byte
	_, _ = rand.Read(b[:]) // crypto/rand.Read never fails (Go 1.24+)
	return hex.EncodeToString(b[:])
}

// ConcurrencyGroup is project/environment/pr-N, or project/environment/BRANCH without a
// pull request; "" when neither is known (then --supersede has nothing to act on).
func ConcurrencyGroup(project, environment string, pr int, branch string) string {
	switch {
	case pr > 0:
		return project + "/" + environment + "/pr-" + strconv.Itoa(pr)
	case branch != "":
		return project + "/" + environment + "/" + branch
	}
	return ""
}
