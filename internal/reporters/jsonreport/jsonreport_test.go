package jsonreport_test

import (
	"context"
	"encoding/json"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/zof-ai/zof-ci/api"
	"github.com/zof-ai/zof-ci/internal/reporters/jsonreport"
	"github.com/zof-ai/zof-ci/internal/reporters/report"
	"github.com/zof-ai/zof-ci/internal/reporters/reporttest"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata/")

func write(t *testing.T, res *report.Result) []byte {
	t.Helper()
	path := filepath.Join(t.TempDir(), "out", "result.json")
	r, err := jsonreport.New(report.Options{Path: path, Now: reporttest.Now})
	if err != nil {
		t.Fatal(err)
	}
	if err := r.Report(context.Background(), res); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestGolden(t *testing.T) {
	for _, sc := range reporttest.Scenarios(t) {
		t.Run(sc.Name, func(t *testing.T) {
			got := write(t, sc.Result)
			golden := filepath.Join("testdata", sc.Name+".json")
			if *update {
				if err := os.WriteFile(golden, got, 0o644); err != nil {
					t.Fatal(err)
				}
			}
			want, err := os.ReadFile(golden)
			if err != nil {
				t.Fatalf("%v (run with -update to create it)", err)
			}
			if diff := cmp.Diff(string(want), string(got)); diff != "" {
				t.Errorf("%s differs (-want +got; -update rewrites):\n%s", golden, diff)
			}
		})
	}
}

// TestRoundTrip proves the document's run is the api.Run the reporters were fed.
func TestRoundTrip(t *testing.T) {
	for _, sc := range reporttest.Scenarios(t) {
		if sc.Name == "hostile" { // invalid UTF-8 is replaced on the way out, by design
			continue
		}
		t.Run(sc.Name, func(t *testing.T) {
			var doc struct {
				Schema   string        `json:"schema"`
				ExitCode int           `json:"exit_code"`
				Verdict  string        `json:"verdict"`
				Notices  []string      `json:"notices"`
				Counts   report.Counts `json:"counts"`
				Run      *api.Run      `json:"run"`
			}
			if err := json.Unmarshal(write(t, sc.Result), &doc); err != nil {
				t.Fatal(err)
			}
			if doc.Schema != jsonreport.Schema || doc.ExitCode != sc.Result.Exit.Code || doc.Verdict != sc.Result.Verdict {
				t.Errorf("header = %q %d %q, want %q %d %q", doc.Schema, doc.ExitCode, doc.Verdict, jsonreport.Schema, sc.Result.Exit.Code, sc.Result.Verdict)
			}
			if doc.Notices == nil {
				t.Error("notices is null, want an array")
			}
			if diff := cmp.Diff(sc.Result.Run, doc.Run); diff != "" {
				t.Errorf("run differs after a round trip (-fed +decoded):\n%s", diff)
			}
			c := doc.Counts
			if sum := c.Passed + c.Failed + c.Blocked + c.Cancelled + c.Skipped + c.Unfinished; sum != c.Total {
				t.Errorf("counts %+v do not add up to total", c)
			}
		})
	}
}

func TestCounts(t *testing.T) {
	tests := []struct {
		name string
		res  *report.Result
		want report.Counts
	}{
		{"failed", reporttest.Failures(t), report.Counts{Total: 4, Passed: 2, Failed: 2}},
		{"flaky", reporttest.Flaky(t), report.Counts{Total: 4, Passed: 4, Flaky: 1}},
		{"cancelled", reporttest.Cancelled(t), report.Counts{Total: 4, Passed: 2, Cancelled: 1, Skipped: 1}},
		{"timeout", reporttest.Timeout(t), report.Counts{Total: 4, Passed: 1, Skipped: 2, Unfinished: 1}},
		{"blocked", reporttest.Blocked(t), report.Counts{Total: 4, Blocked: 4}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var doc struct {
				Counts report.Counts `json:"counts"`
			}
			if err := json.Unmarshal(write(t, tt.res), &doc); err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tt.want, doc.Counts); diff != "" {
				t.Errorf("counts (-want +got):\n%s", diff)
			}
		})
	}
}

func TestNeedsPath(t *testing.T) {
	if _, err := jsonreport.New(report.Options{}); err == nil || !strings.Contains(err.Error(), "--json") {
		t.Errorf("New without a path: err = %v, want a hint naming --json", err)
	}
}
