package api

import (
	"errors"
	"fmt"
	"time"
	"unicode"
	"unicode/utf8"
)

// Bounds of a CoverageSummary (docs/coverage.md, "On the server"). The CLI
// trims its summary to them; the server refuses a summary beyond them (400).
// Together they keep the largest valid summary under MaxCoverageJSONBytes,
// far below the server's default max_body, whatever the repository's size.
const (
	// MaxCoverageModules is how many modules a summary lists; the rest are
	// counted in ModulesOmitted (their files stay in the totals).
	MaxCoverageModules = 100
	// MaxCoverageUncoveredFiles is how many uncovered files a module lists,
	// the first by path: a hint of where to look, not the list (zof coverage
	// prints every one).
	MaxCoverageUncoveredFiles = 5
	// MaxCoverageNameBytes bounds a module's name.
	MaxCoverageNameBytes = 128
	// MaxCoveragePathBytes bounds a listed file's path; a longer path is not
	// listed (it is still counted).
	MaxCoveragePathBytes = 512
	// MaxCoverageJSONBytes is what the largest valid summary encodes to at
	// most (api's tests check it).
	MaxCoverageJSONBytes = 512 << 10
)

// CoverageCounts are a repository's tracked files by class, as zof coverage
// classifies them (docs/coverage.md): each file is exactly one of covered,
// global, ignored or uncovered.
type CoverageCounts struct {
	Files     int `json:"files"`
	Covered   int `json:"covered"`
	Global    int `json:"global"`
	Ignored   int `json:"ignored"`
	Uncovered int `json:"uncovered"`
	// CoveredPercent is covered ÷ (files − ignored) in percent, one decimal;
	// 100 when no file counts. The server computes it from the counts (what
	// a client sends is replaced).
	CoveredPercent float64 `json:"covered_percent"`
}

// Percent is CoveredPercent computed from the counts: covered ÷ (files −
// ignored), rounded half up to one decimal; 100 when no file counts.
func (c CoverageCounts) Percent() float64 {
	counted := c.Files - c.Ignored
	if counted <= 0 {
		return 100
	}
	return float64(int64(float64(c.Covered)*1000/float64(counted)+0.5)) / 10
}

// ModuleCoverage is one module's counts and the first of its uncovered files.
type ModuleCoverage struct {
	Module string `json:"module"`
	CoverageCounts
	// UncoveredFiles are the module's first uncovered files by path, at most
	// MaxCoverageUncoveredFiles.
	UncoveredFiles []string `json:"uncovered_files,omitempty"`
}

// CoverageSummary is the coverage map of the checkout a run was submitted
// from, summed up per module (RunRequest.Coverage): what the console's home
// page shows. It never carries the whole file list.
type CoverageSummary struct {
	CoverageCounts
	// Modules are sorted by name, at most MaxCoverageModules.
	Modules []ModuleCoverage `json:"modules"`
	// ModulesOmitted counts the modules after the first MaxCoverageModules.
	ModulesOmitted int `json:"modules_omitted,omitempty"`
}

// ProjectCoverage is a project's latest coverage summary and where it came
// from: the answer of GET /v1/coverage.
type ProjectCoverage struct {
	Project string `json:"project"`
	// RunID is the run whose request carried the summary; Commit and Ref
	// are its source's.
	RunID  string `json:"run_id"`
	Commit string `json:"commit,omitempty"`
	Ref    string `json:"ref,omitempty"`
	// ReceivedAt is when the server stored it.
	ReceivedAt time.Time       `json:"received_at"`
	Summary    CoverageSummary `json:"summary"`
}

// Validate checks the summary's bounds and that its counts add up, and sets
// every CoveredPercent from the counts. The error says what is wrong.
func (s *CoverageSummary) Validate() error {
	if err := s.CoverageCounts.check("the totals"); err != nil {
		return err
	}
	if len(s.Modules) > MaxCoverageModules {
		return fmt.Errorf("%d modules: at most %d are listed; count the rest in modules_omitted", len(s.Modules), MaxCoverageModules)
	}
	if s.ModulesOmitted < 0 {
		return fmt.Errorf("modules_omitted %d: must not be negative", s.ModulesOmitted)
	}
	var sum CoverageCounts
	for i := range s.Modules {
		m := &s.Modules[i]
		if err := CheckCoverageText(m.Module, MaxCoverageNameBytes); err != nil {
			return fmt.Errorf("modules[%d].module: %w", i, err)
		}
		if i > 0 && s.Modules[i-1].Module >= m.Module {
			return fmt.Errorf("modules[%d].module %q: modules must be sorted by name, each once", i, m.Module)
		}
		if err := m.CoverageCounts.check(fmt.Sprintf("module %q", m.Module)); err != nil {
			return err
		}
		if n := len(m.UncoveredFiles); n > min(MaxCoverageUncoveredFiles, m.Uncovered) {
			return fmt.Errorf("module %q lists %d uncovered files: at most %d, and no more than it counts (%d)", m.Module, n, MaxCoverageUncoveredFiles, m.Uncovered)
		}
		for j, f := range m.UncoveredFiles {
			if err := CheckCoverageText(f, MaxCoveragePathBytes); err != nil {
				return fmt.Errorf("module %q uncovered_files[%d]: %w", m.Module, j, err)
			}
			if j > 0 && m.UncoveredFiles[j-1] >= f {
				return fmt.Errorf("module %q uncovered_files[%d] %q: the files must be sorted, each once", m.Module, j, f)
			}
		}
		sum.Files += m.Files
		sum.Covered += m.Covered
		sum.Global += m.Global
		sum.Ignored += m.Ignored
		sum.Uncovered += m.Uncovered
	}
	over := sum.Files > s.Files || sum.Covered > s.Covered || sum.Global > s.Global || sum.Ignored > s.Ignored || sum.Uncovered > s.Uncovered
	if over || (s.ModulesOmitted == 0 && sum != s.CoverageCounts.withoutPercent()) {
		return fmt.Errorf("the modules' counts (%d files: %d covered, %d global, %d ignored, %d uncovered) do not add up to the totals (%d: %d, %d, %d, %d)",
			sum.Files, sum.Covered, sum.Global, sum.Ignored, sum.Uncovered, s.Files, s.Covered, s.Global, s.Ignored, s.Uncovered)
	}
	s.CoveredPercent = s.Percent()
	for i := range s.Modules {
		s.Modules[i].CoveredPercent = s.Modules[i].Percent()
	}
	return nil
}

func (c CoverageCounts) withoutPercent() CoverageCounts {
	c.CoveredPercent = 0
	return c
}

func (c CoverageCounts) check(what string) error {
	if c.Files < 0 || c.Covered < 0 || c.Global < 0 || c.Ignored < 0 || c.Uncovered < 0 {
		return fmt.Errorf("%s: counts must not be negative", what)
	}
	// Each is at most Files, so the sum below cannot overflow.
	if c.Covered > c.Files || c.Global > c.Files || c.Ignored > c.Files || c.Uncovered > c.Files ||
		c.Covered+c.Global+c.Ignored+c.Uncovered != c.Files {
		return fmt.Errorf("%s: covered %d + global %d + ignored %d + uncovered %d must equal files %d", what, c.Covered, c.Global, c.Ignored, c.Uncovered, c.Files)
	}
	return nil
}

// checkText: non-empty, valid UTF-8, no control characters, at most max bytes.
func CheckCoverageText(s string, max int) error {
	switch {
	case s == "":
		return errors.New("empty")
	case len(s) > max:
		return fmt.Errorf("%d bytes: at most %d", len(s), max)
	case !utf8.ValidString(s):
		return errors.New("not valid UTF-8")
	}
	for _, r := range s {
		if unicode.IsControl(r) {
			return fmt.Errorf("%q has a control character", s)
		}
	}
	return nil
}
