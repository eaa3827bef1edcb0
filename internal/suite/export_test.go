package suite

// Fields exposes the decoder's field table to the schema test.
func Fields() map[string][]string { return fields }
