package suite

// fields lists the keys each mapping of the file accepts. The JSON Schema
// (schema.json) has a $defs entry of the same name with the same properties;
// TestSchemaMatchesDecoder keeps the two in step.
var fields = map[string][]string{
	"suite":        {"version", "project", "environments", "defaults", "selection", "cases", "sets", "gate"},
	"environment":  {"url", "headers", "exclusive", "serve"},
	"serve":        {"command", "dir", "env", "ready", "timeout"},
	"defaults":     {"environment", "timeout", "retries"},
	"selection":    {"global", "ignore", "unmapped", "max_changed_files", "on_unknown_diff", "modules"},
	"case":         {"id", "name", "tags", "covers", "always", "timeout", "retries", "variants", "steps", "quarantine"},
	"quarantine":   {"owner", "reason", "until"},
	"variant":      {"name", "vars"},
	"step":         {"name", "http", "run", "timeout", "expect", "capture"},
	"http":         {"method", "path", "url", "headers", "query", "json", "body", "form"},
	"run":          {"command", "env", "dir", "exit_code"},
	"expect":       {"status", "headers", "body_contains", "body_matches", "json", "max_duration"},
	"json_assert":  {"equals", "exists", "contains", "matches"},
	"set":          {"cases", "sets", "tags", "order"},
	"gate":         {"fail_on", "on_empty"},
	"secret_value": {"value", "secret"},
}

// ctxOrder is the order in which "is a field of X" hints look for a home
// for a misplaced key: the most likely places first.
var ctxOrder = []string{"suite", "case", "step", "http", "expect", "run", "environment", "serve", "selection", "defaults", "gate", "set", "variant", "json_assert", "secret_value", "quarantine"}

// ctxName is how messages name each kind of mapping.
var ctxName = map[string]string{
	"suite":        "the suite",
	"environment":  "an environment",
	"serve":        "serve",
	"defaults":     "defaults",
	"selection":    "selection",
	"case":         "a case",
	"variant":      "a variant",
	"step":         "a step",
	"http":         "an http request",
	"run":          "run",
	"expect":       "expect",
	"json_assert":  "a json assertion",
	"set":          "a set",
	"gate":         "gate",
	"secret_value": "a {value, secret} entry",
	"quarantine":   "a quarantine",
}
