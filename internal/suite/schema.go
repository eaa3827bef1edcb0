package suite

import _ "embed"

// Schema is the JSON Schema (draft 2020-12) of the suite file, for editors
// (e.g. the YAML language server's `# yaml-language-server: $schema=...`).
// It accepts the same fields as the decoder; the decoder checks more
// (references, cycles, globs, regexps, ${VAR}s).
//
//go:embed schema.json
var Schema []byte
