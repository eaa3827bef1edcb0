package reporters_test

import (
	"bytes"
	"context"
	"encoding/json"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/zof-ai/zof-ci/api"
	"github.com/zof-ai/zof-ci/internal/gate"
	"github.com/zof-ai/zof-ci/internal/reporters"
	"github.com/zof-ai/zof-ci/internal/reporters/console"
	"github.com/zof-ai/zof-ci/internal/reporters/jsonreport"
	"github.com/zof-ai/zof-ci/internal/reporters/junit"
	"github.com/zof-ai/zof-ci/internal/reporters/reporttest"
	"github.com/zof-ai/zof-ci/internal/secret"
)

// builtin are the reporters every run can write, by their constructors.
var builtin = map[string]reporters.Factory{console.Name: console.New, junit.Name: junit.New, jsonreport.Name: jsonreport.New}

func TestBuiltinReporters(t *testing.T) {
	if diff := cmp.Diff([]string{"console", "json", "junit"}, slices.Sorted(maps.Keys(builtin))); diff != "" {
		t.Errorf("names (-want +got):\n%s", diff)
	}
	rep, err := console.New(reporters.Options{Out: &bytes.Buffer{}})
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := rep.(reporters.Live); !ok {
		t.Error("console is not Live")
	}
	for _, name := range []string{"junit", "json"} {
		rep, err := builtin[name](reporters.Options{Path: filepath.Join(t.TempDir(), "x")})
		if err != nil {
			t.Fatal(err)
		}
		if _, ok := rep.(reporters.Live); ok {
			t.Errorf("%s claims to be Live", name)
		}
	}
}

func TestFileReportersNeedAPath(t *testing.T) {
	for _, name := range []string{"junit", "json"} {
		_, err := builtin[name](reporters.Options{})
		if err == nil || !strings.Contains(err.Error(), "needs a file path") {
			t.Errorf("%s: err = %v, want one asking for a file path", name, err)
		}
	}
}

func TestTerminal(t *testing.T) {
	tests := []struct {
		name           string
		isTerm         bool
		env            map[string]string
		tty, color, gh bool
	}{
		{"terminal", true, map[string]string{"TERM": "xterm-256color"}, true, true, false},
		{"pipe", false, nil, false, false, false},
		{"NO_COLOR", true, map[string]string{"NO_COLOR": "1"}, false, false, false},
		{"CI", true, map[string]string{"CI": "true"}, false, false, false},
		{"dumb", true, map[string]string{"TERM": "dumb"}, false, false, false},
		{"actions", false, map[string]string{"CI": "true", "GITHUB_ACTIONS": "true"}, false, false, true},
		{"empty NO_COLOR is unset", true, map[string]string{"NO_COLOR": ""}, true, true, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			lookup := func(k string) (string, bool) { v, ok := tt.env[k]; return v, ok }
			tty, color, gh := reporters.Terminal(tt.isTerm, lookup)
			if tty != tt.tty || color != tt.color || gh != tt.gh {
				t.Errorf("Terminal = %v %v %v, want %v %v %v", tty, color, gh, tt.tty, tt.color, tt.gh)
			}
		})
	}
}

// TestSecretsNeverReachAReport leaks a secret into every text of a run, as if
// it got past the engine's masking, and checks no reporter writes it.
func TestSecretsNeverReachAReport(t *testing.T) {
	const secretValue = "s3cr3t-Tok3n"
	leak := func(s string) string { return s + " " + secretValue }
	// Split by an escape sequence and by invalid UTF-8: sanitising joins the halves.
	split := "s3cr3t\x1b[0m-Tok3n and s3cr3t-\xffTok3n"

	req := reporttest.Request()
	req.Selection.Widened = &api.Reason{Kind: api.ReasonUnmapped, File: leak("f"), Detail: leak("d")}
	req.Selection.Cases[0].Reasons = append(req.Selection.Cases[0].Reasons, api.Reason{Kind: api.ReasonCovers, File: leak("x"), Pattern: leak("p")})
	req.Selection.Warnings = []string{leak("warning")}
	req.Selection.Unmapped = []string{leak("file")}
	req.Cases[0].Name = leak("name")
	req.Cases[1].Steps[1].Name = leak("create cart")
	b := reporttest.NewBuilder(t, req)
	b.RunStatus(api.StatusRunning, "")
	b.Log("", 0, leak("run log"))
	b.Member("login", api.StatusRunning, 1, "")
	b.Step("login", 1, api.StepFailed, 1, leak("output")+"\n"+split, &api.Failure{Message: leak("message"), Expected: leak("expected"), Actual: leak("actual")})
	b.Member("login", api.StatusRunning, 2, "")
	b.Step("login", 1, api.StepPassed, 1, "", nil).Step("login", 2, api.StepPassed, 1, leak("out"), nil)
	b.Emit(api.Event{Type: api.EventMemberStatus, Member: "login", Status: api.StatusPassed, Flaky: true})
	b.Member("checkout/eur", api.StatusRunning, 1, "")
	b.Log("checkout/eur", 2, leak("log"))
	b.Step("checkout/eur", 2, api.StepFailed, 1, split, &api.Failure{Message: leak("status"), Expected: split, Actual: leak("got")})
	b.Member("checkout/eur", api.StatusFailed, 0, leak("reason"))
	b.Member("checkout/usd", api.StatusRunning, 1, "")
	b.Step("checkout/usd", 1, api.StepCancelled, 1, leak("cancelled output"), nil)
	b.Member("checkout/usd", api.StatusCancelled, 0, leak("cancel reason"))
	b.Member("contract-tests", api.StatusBlocked, 0, leak("blocked"))
	b.RunStatus(api.StatusFailed, leak("run reason"))
	res := b.Result(gate.Failed, leak("gate failed"), leak("notice"))
	res.Run.URL = leak("https://x/")
	res.Run.Labels = map[string]string{"k": leak("v")}

	mask := secret.NewMasker([]string{secretValue})
	dir := t.TempDir()
	outputs := map[string]func() string{}
	for _, mode := range []struct {
		name string
		o    reporters.Options
	}{
		{"console-plain", reporters.Options{}},
		{"console-github", reporters.Options{GitHubActions: true}},
		{"console-tty", reporters.Options{TTY: true, Color: true}},
	} {
		var buf bytes.Buffer
		o := mode.o
		o.Out, o.Mask, o.Now = &buf, mask, reporttest.Now
		rep, err := console.New(o)
		if err != nil {
			t.Fatal(err)
		}
		live := rep.(reporters.Live)
		run := &api.Run{}
		for _, e := range res.Events {
			if err := run.Apply(e); err != nil {
				t.Fatal(err)
			}
			live.Event(run, e)
		}
		if err := rep.Report(context.Background(), res); err != nil {
			t.Fatal(err)
		}
		outputs[mode.name] = buf.String
	}
	for _, name := range []string{"junit", "json"} {
		path := filepath.Join(dir, name+".out")
		rep, err := builtin[name](reporters.Options{Path: path, Mask: mask, Now: reporttest.Now})
		if err != nil {
			t.Fatal(err)
		}
		if err := rep.Report(context.Background(), res); err != nil {
			t.Fatal(err)
		}
		outputs[name] = func() string {
			b, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			return string(b)
		}
	}
	// Decoded, the JSON's strings must not hold the secret either.
	var doc any
	if err := json.Unmarshal([]byte(outputs["json"]()), &doc); err != nil {
		t.Fatal(err)
	}
	var strs []string
	var walk func(v any)
	walk = func(v any) {
		switch v := v.(type) {
		case string:
			strs = append(strs, v)
		case []any:
			for _, x := range v {
				walk(x)
			}
		case map[string]any:
			for k, x := range v {
				strs = append(strs, k)
				walk(x)
			}
		}
	}
	walk(doc)
	outputs["json-decoded"] = func() string { return strings.Join(strs, "\n") }

	for name, out := range outputs {
		got := out()
		if strings.Contains(got, secretValue) {
			i := strings.Index(got, secretValue)
			t.Errorf("%s leaks the secret: …%s…", name, got[max(0, i-80):min(len(got), i+40)])
		}
		if !strings.Contains(got, secret.Mask) {
			t.Errorf("%s shows no mask at all: was the leaked text dropped instead of masked?", name)
		}
	}
}
