package suite

// Fields exposes the decoder's field table to the schema test.
func Fields() map[string][]string { return fields }

// SetStream turns streamed parsing of the cases on or off (stream.go) and
// returns the function that restores it.
func SetStream(on bool) func() {
	old := streamCases
	streamCases = on
	return func() { streamCases = old }
}

// Streamed reports whether Parse reads the cases of src one at a time,
// without falling back to the whole-file parse.
func Streamed(src []byte, opts Options) bool {
	d := &decoder{file: "f.yaml", src: src, lookup: opts.Lookup, streaming: true}
	root := d.parseYAML(src)
	if root == nil || d.size.stream == nil {
		return false
	}
	d.decodeSuite(root, opts)
	return d.size.finish() && d.size.stream.end()
}
