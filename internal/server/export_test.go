package server

import "net/http"

// Routes lists the router's table as "METHOD /path" patterns.
func Routes() []string {
	var s Server
	var out []string
	for _, rt := range s.routes() {
		out = append(out, rt.pattern())
	}
	return out
}

// Pattern is the registered pattern the mux serves r with ("" for none).
func (s *Server) Pattern(r *http.Request) string {
	_, p := s.mux.Handler(r)
	return p
}
