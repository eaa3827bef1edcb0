package server

import _ "embed"

// OpenAPI is the OpenAPI 3 description of the API (openapi.yaml); a test
// keeps it equal to the router, both ways.
//
//go:embed openapi.yaml
var OpenAPI []byte
