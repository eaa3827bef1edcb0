package suite_test

import (
	"bytes"
	"errors"
	"os"
	"strings"
	"testing"

	"github.com/zof-ai/zof-ci/internal/suite"
)

func FuzzLoad(f *testing.F) {
	for _, name := range []string{"testdata/spec.yaml", "testdata/full.yaml", "testdata/broken.yaml", "testdata/bomb.yaml"} {
		b, err := os.ReadFile(name)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Add([]byte(""))
	f.Add([]byte("version: 1\ncases:\n\t- id: x\n"))
	f.Add([]byte("\x7fELF\x02\x01\x01\x00\x00\xff\xfe"))
	f.Add([]byte("version: 1\ncases: &a [*a]\n"))
	f.Add([]byte("version: 1\ncases:\n  - id: a\n    steps: [{run: \"${A:-${B}} $${vars.x} ${vars.\"}]\n"))
	f.Add([]byte("version: 1\nx-a: &a {id: a, steps: [{http: {path: /, json: {a: [1, 2.5, .inf, ~, true]}}}]}\ncases: [*a, {<<: *a, id: b}]\n"))
	env := lookup(map[string]string{"A": "1", "STAGING_URL": "http://s", "STAGING_TOKEN": "t"})
	f.Fuzz(func(t *testing.T, src []byte) {
		s, err := suite.Parse("f.yaml", bytes.NewReader(src), suite.Options{Lookup: env})
		if err != nil {
			var se *suite.Error
			if !errors.As(err, &se) || se.Errors() == 0 {
				t.Fatalf("error %T without error-severity problems: %v", err, err)
			}
			for _, p := range se.Problems {
				if !strings.HasPrefix(p.String(), "f.yaml") || p.Message == "" {
					t.Fatalf("badly rendered problem: %q", p.String())
				}
			}
			return
		}
		if s == nil {
			t.Fatal("nil suite without error")
		}
		for _, env := range append([]string{""}, s.EnvironmentNames()...) {
			req, err := s.Request(env, s.CaseIDs())
			if err == nil && len(req.Cases) != len(s.Cases) {
				t.Fatalf("request has %d cases, suite %d", len(req.Cases), len(s.Cases))
			}
		}
	})
}
