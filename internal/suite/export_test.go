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
	_, how, _ := parseOnce("f.yaml", src, opts, true)
	return how == streamed
}
