package server

import (
	"mime"
	"net/http"
	"strconv"
	"strings"

	"github.com/zof-ai/zof-ci/api"
	"github.com/zof-ai/zof-ci/internal/engine"
	"github.com/zof-ai/zof-ci/internal/server/config"
)

// artifactRoutes are the endpoints of a run's artifacts (docs/api.md,
// Artifacts): a viewer may read them, and another tenant's run is 404.
func (s *Server) artifactRoutes() []route {
	return []route{
		{method: "GET", path: "/v1/runs/{id}/artifacts", role: config.RoleViewer, h: s.listArtifacts},
		{method: "GET", path: "/v1/runs/{id}/artifacts/{name}", role: config.RoleViewer, h: s.getArtifact},
	}
}

// servedTypes are the content types an artifact is served with as stored;
// any other is served as application/octet-stream. Artifacts hold what a
// tested service sent, which is untrusted: nothing a browser would render
// as a page or run (text/html, SVG, XML, JavaScript) is ever served as such.
var servedTypes = map[string]bool{"text/plain": true, "application/json": true}

// artifactType is the Content-Type an artifact is served with.
func artifactType(stored string) string {
	mt, params, err := mime.ParseMediaType(stored)
	if err != nil || !servedTypes[mt] {
		return "application/octet-stream"
	}
	if strings.HasPrefix(mt, "text/") {
		cs := params["charset"]
		if cs == "" {
			cs = "utf-8"
		}
		return mime.FormatMediaType(mt, map[string]string{"charset": cs})
	}
	return mt
}

// listArtifacts is GET /v1/runs/{id}/artifacts.
func (s *Server) listArtifacts(w http.ResponseWriter, r *http.Request, p config.Principal) {
	list, err := s.eng.Artifacts(r.Context(), p.Tenant, r.PathValue("id"))
	if err != nil {
		s.engineError(w, err)
		return
	}
	writeJSON(w, http.StatusOK, api.ArtifactList{Artifacts: list})
}

// getArtifact is GET /v1/runs/{id}/artifacts/{name}: the content as a
// download (Content-Disposition: attachment), never sniffed, in a sandbox
// should a browser display it anyway.
func (s *Server) getArtifact(w http.ResponseWriter, r *http.Request, p config.Principal) {
	id, name := r.PathValue("id"), r.PathValue("name")
	a, err := s.eng.Artifact(r.Context(), p.Tenant, id, name)
	if anf, ok := errorsAs[*engine.ArtifactNotFoundError](err); ok {
		writeProblem(w, http.StatusNotFound, probNotFound, "Artifact not found", anf.Error())
		return
	}
	if err != nil {
		s.engineError(w, err)
		return
	}
	h := w.Header()
	h.Set("Content-Type", artifactType(a.ContentType))
	h.Set("Content-Length", strconv.Itoa(len(a.Content)))
	h.Set("Content-Disposition", mime.FormatMediaType("attachment", map[string]string{"filename": a.Name}))
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Content-Security-Policy", "default-src 'none'; sandbox")
	h.Set("Cache-Control", "private, no-cache")
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write(a.Content)
}
