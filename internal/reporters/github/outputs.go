package github

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"

	"github.com/sethvargo/go-githubactions"

	"github.com/zof-ai/zof-ci/internal/reporters/report"
	"github.com/zof-ai/zof-ci/internal/secret"
)

// OutputNames are the action's outputs, exactly as action.yml declares them.
var OutputNames = []string{"run-id", "run-url", "status", "exit-code", "selected", "total", "passed", "failed", "skipped", "flaky", "junit", "idempotency-key"}

// OutputsName is the outputs reporter's name, for messages.
const OutputsName = "github-outputs"

// Output is one step output.
type Output struct{ Name, Value string }

// Outputs writes the step's outputs to GITHUB_OUTPUT.
type Outputs struct {
	// Path is GITHUB_OUTPUT.
	Path string
	// JUnit is the JUnit file written ("" when none).
	JUnit string
	Mask  *secret.Masker
}

var _ report.Reporter = (*Outputs)(nil)

// NewOutputs builds the reporter (a report.Factory): o.Path is GITHUB_OUTPUT.
func NewOutputs(o report.Options) (report.Reporter, error) {
	if o.Path == "" {
		return nil, errors.New("GITHUB_OUTPUT is not set: step outputs exist only inside GitHub Actions")
	}
	return &Outputs{Path: o.Path, Mask: o.Mask}, nil
}

// Values are the outputs of a result, every name always present (empty when
// unknown) so `steps.<id>.outputs.<name>` is defined whatever happened.
func Values(res *report.Result, junit string, m *secret.Masker) []Output {
	v := map[string]string{"exit-code": strconv.Itoa(res.Exit.Code), "junit": junit}
	if run := res.Run; run != nil {
		c := report.Tally(run)
		v["run-id"], v["run-url"], v["status"] = run.ID, run.URL, string(run.Status)
		v["idempotency-key"] = run.IdempotencyKey
		v["selected"] = strconv.Itoa(len(run.Selection.Cases))
		v["total"], v["passed"], v["failed"] = strconv.Itoa(c.Total), strconv.Itoa(c.Passed), strconv.Itoa(c.Failed)
		v["skipped"], v["flaky"] = strconv.Itoa(c.Skipped), strconv.Itoa(c.Flaky)
	}
	out := make([]Output, len(OutputNames))
	for i, n := range OutputNames {
		out[i] = Output{Name: n, Value: report.Clean(m, v[n])}
	}
	return out
}

// Report writes Values to GITHUB_OUTPUT.
func (o *Outputs) Report(_ context.Context, res *report.Result) error {
	return WriteOutputs(o.Path, Values(res, o.JUnit, o.Mask))
}

// WriteOutputs appends outputs to the GITHUB_OUTPUT file.
//
// Single-line values go through go-githubactions' SetOutput, which writes
// `name<<_GitHubActionsFileCommandDelimeter_` + value + the same fixed
// delimiter: a value without a line break cannot contain a line equal to the
// delimiter, so it cannot end the value early. A multi-line value could
// (`x\n_GitHubActionsFileCommandDelimeter_\nstatus=passed` would forge a
// second output), so those are written here with a random delimiter that is
// checked not to occur in the value, as actions/toolkit does. go-githubactions
// also panics when the file cannot be opened or written (and opens "" when
// GITHUB_OUTPUT is unset): the path is checked first and a panic becomes an
// error, so a report can never crash the gate.
func WriteOutputs(path string, outs []Output) (err error) {
	if path == "" {
		return errors.New("GITHUB_OUTPUT is not set: step outputs exist only inside GitHub Actions")
	}
	for _, o := range outs {
		if o.Name == "" || strings.ContainsAny(o.Name, "\r\n=<") {
			return fmt.Errorf("output name %q is not allowed", o.Name)
		}
	}
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("write the step outputs to %s: %v", path, r)
		}
	}()
	a := githubactions.New(githubactions.WithGetenv(func(k string) string {
		if k == "GITHUB_OUTPUT" {
			return path
		}
		return ""
	}))
	for _, o := range outs {
		if !strings.ContainsAny(o.Value, "\r\n") {
			a.SetOutput(o.Name, o.Value)
			continue
		}
		if err := writeMultiline(path, o); err != nil {
			return err
		}
	}
	return nil
}

func writeMultiline(path string, o Output) error {
	var delim string
	for {
		var b [16]byte
		if _, err := rand.Read(b[:]); err != nil {
			return fmt.Errorf("make an output delimiter: %w", err)
		}
		delim = "ghadelimiter_" + hex.EncodeToString(b[:])
		if !strings.Contains(o.Value, delim) {
			break
		}
	}
	f, err := os.OpenFile(path, os.O_APPEND|os.O_CREATE|os.O_WRONLY, 0o644)
	if err != nil {
		return fmt.Errorf("open GITHUB_OUTPUT %s: %w", path, err)
	}
	if _, err := fmt.Fprintf(f, "%s<<%s\n%s\n%s\n", o.Name, delim, o.Value, delim); err != nil {
		f.Close()
		return fmt.Errorf("write output %s: %w", o.Name, err)
	}
	return f.Close()
}
