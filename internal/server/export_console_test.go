package server

// SourceFilter is sourceFilter, for the fuzz test.
var SourceFilter = sourceFilter
