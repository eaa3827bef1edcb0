package server

import "net/http"

// AgentForwarder is an optional Fleet capability of zof serve's replicas on
// PostgreSQL (package fleet/home; docs/agents.md, "Several replicas"): the
// agent API of a replica that is not the fleet's home is answered by the
// home. ForwardAgent reports whether it answered the request (forwarded it,
// or 503 while no home answers); false: this replica serves it.
type AgentForwarder interface {
	ForwardAgent(w http.ResponseWriter, r *http.Request) bool
}
