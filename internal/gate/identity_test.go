package gate

import (
	"regexp"
	"testing"

	"github.com/zof-ai/zof-ci/internal/ci"
)

func TestIdempotencyKey(t *testing.T) {
	base := KeyInput{
		Project: "shop", Environment: "staging", Cases: []string{"login", "cart"}, SuiteDigest: "d1", SHA: "abc",
		CI: ci.Context{Provider: ci.GitHub, Repo: "acme/shop", RunID: "99", Attempt: 1, Job: "gate", Shard: "1/2"},
	}
	key := IdempotencyKey(base)
	if !regexp.MustCompile(`^[0-9a-f]{64}$`).MatchString(key) {
		t.Fatalf("key %q is not hex SHA-256", key)
	}
	// Pinned: the encoding is part of the contract (a retried step run by a newer zof
	// must still attach). Change it only with a new version line.
	if want := "f6d906d35d97b7e3254a8e6b814611ccba26a2b8f667bb8ff97bdc8813eb30b3"; key != want {
		t.Errorf("key %s, pinned %s: the encoding changed", key, want)
	}
	same := base
	same.Cases = []string{"cart", "login"}
	same.CI.Actor, same.CI.URL, same.CI.Ref, same.CI.PR = "someone", "https://x", "refs/heads/x", 7 // not identity
	if got := IdempotencyKey(same); got != key {
		t.Errorf("case order or non-identity fields changed the key")
	}
	changes := map[string]func(*KeyInput){
		"project":     func(k *KeyInput) { k.Project = "shop2" },
		"environment": func(k *KeyInput) { k.Environment = "prod" },
		"cases":       func(k *KeyInput) { k.Cases = []string{"login"} },
		"case split":  func(k *KeyInput) { k.Cases = []string{"login,cart"} },
		"digest":      func(k *KeyInput) { k.SuiteDigest = "d2" },
		"sha":         func(k *KeyInput) { k.SHA = "abd" },
		"provider":    func(k *KeyInput) { k.CI.Provider = ci.GitLab },
		"repo":        func(k *KeyInput) { k.CI.Repo = "acme/shop2" },
		"run id":      func(k *KeyInput) { k.CI.RunID = "100" },
		"attempt":     func(k *KeyInput) { k.CI.Attempt = 2 },
		"job":         func(k *KeyInput) { k.CI.Job = "gate2" },
		"job id":      func(k *KeyInput) { k.CI.JobID = "5" },
		"shard":       func(k *KeyInput) { k.CI.Shard = "2/2" },
		"shifted":     func(k *KeyInput) { k.Project, k.Environment = "shop\"", "staging" },
	}
	seen := map[string]string{key: "base"}
	for name, change := range changes {
		in := base
		in.CI = base.CI
		in.Cases = append([]string(nil), base.Cases...)
		change(&in)
		got := IdempotencyKey(in)
		if other, dup := seen[got]; dup {
			t.Errorf("changing %s gives the same key as %s", name, other)
		}
		seen[got] = name
	}
	if a, b := RandomKey(), RandomKey(); a == b || len(a) != 64 {
		t.Errorf("RandomKey gave %q then %q, want two different 64-character keys", a, b)
	}
}

func TestConcurrencyGroup(t *testing.T) {
	tests := []struct {
		pr     int
		branch string
		want   string
	}{
		{7, "feature/x", "shop/staging/pr-7"},
		{0, "main", "shop/staging/main"},
		{0, "", ""},
	}
	for _, tt := range tests {
		if got := ConcurrencyGroup("shop", "staging", tt.pr, tt.branch); got != tt.want {
			t.Errorf("ConcurrencyGroup(%d, %q) = %q, want %q", tt.pr, tt.branch, got, tt.want)
		}
	}
}
