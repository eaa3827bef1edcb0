package api

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strings"
	"testing"
)

func validSummary() CoverageSummary {
	return CoverageSummary{
		CoverageCounts: CoverageCounts{Files: 6, Covered: 1, Global: 1, Ignored: 1, Uncovered: 3},
		Modules: []ModuleCoverage{
			{Module: "(root)", CoverageCounts: CoverageCounts{Files: 2, Global: 1, Uncovered: 1}, UncoveredFiles: []string{"zof.yaml"}},
			{Module: "docs", CoverageCounts: CoverageCounts{Files: 1, Ignored: 1}},
			{Module: "services", CoverageCounts: CoverageCounts{Files: 3, Covered: 1, Uncovered: 2}, UncoveredFiles: []string{"services/a.go", "services/b.go"}},
		},
	}
}

func TestCoverageSummaryValidate(t *testing.T) {
	tests := []struct {
		name   string
		change func(s *CoverageSummary)
		want   string // "" : valid
	}{
		{"valid", func(*CoverageSummary) {}, ""},
		{"no modules, no files", func(s *CoverageSummary) { *s = CoverageSummary{} }, ""},
		{"omitted modules make the sum smaller", func(s *CoverageSummary) { s.Modules = s.Modules[:2]; s.ModulesOmitted = 1 }, ""},
		{"a module missing without modules_omitted", func(s *CoverageSummary) { s.Modules = s.Modules[:2] }, "do not add up to the totals"},
		{"modules over the totals", func(s *CoverageSummary) { s.Modules[2].Files, s.Modules[2].Covered = 4, 2 }, "do not add up"},
		{"totals do not add up", func(s *CoverageSummary) { s.Files = 7 }, "the totals: covered 1 + global 1 + ignored 1 + uncovered 3 must equal files 7"},
		{"negative", func(s *CoverageSummary) { s.Modules[1].Ignored, s.Modules[1].Files = -1, -1 }, `module "docs": counts must not be negative`},
		{"negative omitted", func(s *CoverageSummary) { s.ModulesOmitted = -1 }, "must not be negative"},
		{"huge counts cannot overflow", func(s *CoverageSummary) {
			s.CoverageCounts = CoverageCounts{Files: 1, Covered: 1 << 62, Global: 1 << 62, Ignored: 1 << 62, Uncovered: 1 << 62}
		}, "must equal files 1"},
		{"unsorted modules", func(s *CoverageSummary) { s.Modules[0].Module = "zzz" }, "sorted by name"},
		{"a module twice", func(s *CoverageSummary) { s.Modules[1].Module = "(root)" }, "sorted by name, each once"},
		{"empty name", func(s *CoverageSummary) { s.Modules[0].Module = "" }, "modules[0].module: empty"},
		{"long name", func(s *CoverageSummary) { s.Modules[0].Module = "(" + strings.Repeat("a", MaxCoverageNameBytes) }, "at most 128"},
		{"control character", func(s *CoverageSummary) { s.Modules[2].UncoveredFiles[0] = "services/a\n.go" }, "control character"},
		{"invalid UTF-8", func(s *CoverageSummary) { s.Modules[2].UncoveredFiles[1] = "services/\xff" }, "not valid UTF-8"},
		{"long path", func(s *CoverageSummary) {
			s.Modules[2].UncoveredFiles[1] = "services/" + strings.Repeat("b", MaxCoveragePathBytes)
		}, "at most 512"},
		{"more files listed than uncovered", func(s *CoverageSummary) {
			s.Modules[0].UncoveredFiles = []string{"a", "b"}
		}, "lists 2 uncovered files"},
		{"more files listed than the bound", func(s *CoverageSummary) {
			m := &s.Modules[2]
			m.Files, m.Uncovered, s.Files, s.Uncovered = 100, 99, 103, 100
			m.UncoveredFiles = nil
			for i := range MaxCoverageUncoveredFiles + 1 {
				m.UncoveredFiles = append(m.UncoveredFiles, fmt.Sprintf("services/f%d", i))
			}
		}, "at most 5"},
		{"unsorted files", func(s *CoverageSummary) { s.Modules[2].UncoveredFiles[0] = "services/c.go" }, "must be sorted"},
		{"too many modules", func(s *CoverageSummary) {
			*s = CoverageSummary{}
			for i := range MaxCoverageModules + 1 {
				s.Modules = append(s.Modules, ModuleCoverage{Module: fmt.Sprintf("m%03d", i)})
			}
		}, "101 modules: at most 100"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := validSummary()
			tt.change(&s)
			err := s.Validate()
			switch {
			case tt.want == "" && err != nil:
				t.Fatalf("Validate: %v", err)
			case tt.want != "" && err == nil:
				t.Fatalf("Validate accepted it, want an error with %q", tt.want)
			case tt.want != "" && !strings.Contains(err.Error(), tt.want):
				t.Fatalf("Validate: %v, want %q in it", err, tt.want)
			}
		})
	}
}

// The server computes the percentages: what a client sends is replaced.
func TestCoverageSummaryValidateSetsPercent(t *testing.T) {
	s := validSummary()
	s.CoveredPercent = 99
	s.Modules[1].CoveredPercent = -5
	if err := s.Validate(); err != nil {
		t.Fatal(err)
	}
	if s.CoveredPercent != 20 || s.Modules[0].CoveredPercent != 0 || s.Modules[1].CoveredPercent != 100 || s.Modules[2].CoveredPercent != 33.3 {
		t.Fatalf("percentages %v %v %v %v, want 20 0 100 33.3", s.CoveredPercent, s.Modules[0].CoveredPercent, s.Modules[1].CoveredPercent, s.Modules[2].CoveredPercent)
	}
}

// The largest summary Validate accepts encodes under MaxCoverageJSONBytes.
func TestCoverageSummaryLargestFits(t *testing.T) {
	var s CoverageSummary
	for i := range MaxCoverageModules {
		m := ModuleCoverage{Module: fmt.Sprintf("%03d", i) + strings.Repeat("m", MaxCoverageNameBytes-3),
			CoverageCounts: CoverageCounts{Files: 1 << 40, Uncovered: 1 << 40}}
		for j := range MaxCoverageUncoveredFiles {
			m.UncoveredFiles = append(m.UncoveredFiles, fmt.Sprintf("%d", j)+strings.Repeat("\u00e9", (MaxCoveragePathBytes-1)/2))
		}
		s.Modules = append(s.Modules, m)
		s.Files += m.Files
		s.Uncovered += m.Uncovered
	}
	s.ModulesOmitted = 1 << 40
	if err := s.Validate(); err != nil {
		t.Fatal(err)
	}
	b, err := json.Marshal(s)
	if err != nil {
		t.Fatal(err)
	}
	if len(b) > MaxCoverageJSONBytes {
		t.Fatalf("the largest valid summary is %d bytes of JSON, over MaxCoverageJSONBytes (%d)", len(b), MaxCoverageJSONBytes)
	}
	t.Logf("largest valid summary: %d bytes of JSON", len(b))
}

// FuzzCoverageSummary: whatever JSON decodes, Validate never panics, and a
// summary it accepts has counts that add up, bounded lists and percentages
// in [0, 100], and still validates after a round trip.
func FuzzCoverageSummary(f *testing.F) {
	good, _ := json.Marshal(validSummary())
	f.Add(good)
	f.Add([]byte(`{"files":1,"uncovered":1,"modules":[{"module":"a","files":1,"uncovered":1,"uncovered_files":["a/b"]}]}`))
	f.Add([]byte(`{"files":-1,"modules":null}`))
	f.Add([]byte(`{"modules":[{"module":"\u0000"}]}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		var s CoverageSummary
		if json.Unmarshal(data, &s) != nil {
			return
		}
		if s.Validate() != nil {
			return
		}
		if len(s.Modules) > MaxCoverageModules || s.Covered+s.Global+s.Ignored+s.Uncovered != s.Files {
			t.Fatalf("accepted an unbounded or inconsistent summary: %+v", s)
		}
		for _, m := range s.Modules {
			if len(m.UncoveredFiles) > MaxCoverageUncoveredFiles || m.CoveredPercent < 0 || m.CoveredPercent > 100 {
				t.Fatalf("accepted module %+v", m)
			}
		}
		if s.CoveredPercent < 0 || s.CoveredPercent > 100 {
			t.Fatalf("percent %v", s.CoveredPercent)
		}
		b, err := json.Marshal(s)
		if err != nil {
			t.Fatal(err)
		}
		var again CoverageSummary
		dec := json.NewDecoder(bytes.NewReader(b))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&again); err != nil {
			t.Fatal(err)
		}
		if err := again.Validate(); err != nil {
			t.Fatalf("a valid summary no longer validates after a round trip: %v", err)
		}
	})
}
