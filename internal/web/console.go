package web

import (
	"bytes"
	"context"
	"crypto/sha256"
	"embed"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/zof-ai/zof-ci/api"
	"github.com/zof-ai/zof-ci/internal/engine"
	"github.com/zof-ai/zof-ci/internal/server/config"
)

//go:embed static
var staticFS embed.FS

// Runs is what the console reads: the engine's tenant-scoped queries.
type Runs interface {
	Get(ctx context.Context, tenant, id string) (*api.Run, error)
	List(ctx context.Context, tenant string, f engine.ListFilter) ([]*api.Run, string, error)
}

var _ Runs = (*engine.Engine)(nil)

// Actions are the console's mutations. The server implements them with the
// same checks and audit lines as the API's cancel and rerun; reason is the
// person's own words, possibly empty (the run records who cancelled it).
type Actions interface {
	CancelRun(ctx context.Context, p config.Principal, id, reason string) (*api.Run, error)
	RerunRun(ctx context.Context, p config.Principal, id string) (*api.Run, error)
	// DeleteRun deletes a terminal run (admins only; the server checks).
	DeleteRun(ctx context.Context, p config.Principal, id string) error
}

// Auth finds who a token or a session's token hash belongs to.
type Auth interface {
	Authenticate(token string) (config.Principal, bool)
	AuthenticateSum(sum [sha256.Size]byte) (config.Principal, bool)
}

var _ Auth = (*config.Config)(nil)

// Waits fills in the wait reasons of a run read for a person (the
// server's, from the engine and the fleet): Run.Wait and Member.Wait.
type Waits interface {
	AddWaits(run *api.Run)
}

// Options configure the console. Runs, Actions and Auth are required.
type Options struct {
	Runs    Runs
	Actions Actions
	Auth    Auth
	// History, when set, gives each member of the run page the strip of
	// its case's last outcomes.
	History History
	// Schedules and Stuck, when set, add the next schedule ticks and the
	// stuck runs to the home page.
	Schedules Schedules
	Stuck     Stuck
	// Fleet, when set, lists the tenant's agents on /agents; nil: the page
	// says agents are not configured.
	Fleet Fleet
	// Waits, when set, says which limit holds a waiting run and its
	// members on the run page (docs/agents.md, Why a run waits).
	Waits Waits
	// Coverage, when set, shows each project's latest coverage by module
	// on the home page (docs/coverage.md).
	Coverage Coverage
	// SessionKey signs session cookies and form tokens; empty: a random key,
	// so sessions end when the process does.
	SessionKey []byte
	// Secure marks cookies Secure (public_url is https).
	Secure bool
	Now    func() time.Time
	Logger *slog.Logger
}

// Console serves the web console's pages.
type Console struct {
	o   Options
	s   *sessions
	mux *http.ServeMux
}

// PageSize is how many runs a page of the list shows; MembersPageSize how
// many members the run page shows at once (a 2,000-member run stays usable).
const (
	PageSize        = 50
	MembersPageSize = 200
)

// New builds the console.
func New(o Options) (*Console, error) {
	if o.Runs == nil || o.Actions == nil || o.Auth == nil {
		return nil, errors.New("web: Options.Runs, Actions and Auth are required")
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	s, err := newSessions(o.SessionKey, o.Now)
	if err != nil {
		return nil, fmt.Errorf("web: session key: %w", err)
	}
	c := &Console{o: o, s: s, mux: http.NewServeMux()}
	static, _ := fs.Sub(staticFS, "static")
	c.mux.Handle("GET /assets/", http.StripPrefix("/assets/", http.FileServerFS(static)))
	c.mux.HandleFunc("GET /login", c.loginPage)
	c.mux.HandleFunc("POST /login", c.login)
	c.mux.HandleFunc("POST /logout", c.logout)
	c.mux.HandleFunc("GET /{$}", c.page(c.home))
	c.mux.HandleFunc("GET /runs", c.page(c.runs))
	c.mux.HandleFunc("GET /agents", c.page(c.agents))
	c.mux.HandleFunc("GET /runs/{id}", c.page(c.run))
	c.mux.HandleFunc("GET /runs/{id}/cancel", c.page(c.confirmCancel))
	c.mux.HandleFunc("POST /runs/{id}/cancel", c.page(c.cancel))
	c.mux.HandleFunc("POST /runs/{id}/rerun", c.page(c.rerun))
	c.mux.HandleFunc("GET /runs/{id}/delete", c.page(c.confirmDelete))
	c.mux.HandleFunc("POST /runs/{id}/delete", c.page(c.delete))
	return c, nil
}

// Paths the console serves; the server mounts them beside /v1.
var Paths = []string{"/{$}", "/login", "/logout", "/runs", "/runs/", "/agents", "/assets/"}

// ServeHTTP serves the console with its security headers.
func (c *Console) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	h := w.Header()
	// No inline or foreign script; styles are ours (the outcome bar's widths
	// are style attributes). Forms post only here; no framing.
	h.Set("Content-Security-Policy", "default-src 'none'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; connect-src 'self'; form-action 'self'; base-uri 'none'; frame-ancestors 'none'")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Referrer-Policy", "same-origin")
	h.Set("Cache-Control", "no-store")
	c.mux.ServeHTTP(w, r)
}

// Principal is who a request is from: a Bearer token (scripts), else the
// session cookie (a browser). The server uses it for the event stream the
// run page follows.
func (c *Console) Principal(r *http.Request) (config.Principal, bool) {
	if h := r.Header.Get("Authorization"); h != "" {
		scheme, token, ok := strings.Cut(strings.TrimSpace(h), " ")
		if !ok || !strings.EqualFold(scheme, "Bearer") {
			return config.Principal{}, false
		}
		return c.o.Auth.Authenticate(strings.TrimSpace(token))
	}
	ck, err := r.Cookie(SessionCookie)
	if err != nil {
		return config.Principal{}, false
	}
	sum, err := c.s.check(ck.Value)
	if err != nil {
		return config.Principal{}, false
	}
	return c.o.Auth.AuthenticateSum(sum)
}

// pageData is what every page template gets.
type pageData struct {
	Title     string
	Principal config.Principal
	CanWrite  bool
	CanDelete bool // an admin: the run page offers Delete on finished runs
	CSRF      string
	Nav       string
	Body      any
}

type pageFunc func(w http.ResponseWriter, r *http.Request, d *pageData) (tmpl string, status int)

// page authenticates, checks CSRF on POST, renders the page's template inside
// the layout, and answers errors as pages.
func (c *Console) page(fn pageFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		p, ok := c.Principal(r)
		if !ok {
			if r.Header.Get("Authorization") != "" || r.Method != http.MethodGet {
				w.Header().Set("WWW-Authenticate", `Bearer realm="zof"`)
				c.render(w, http.StatusUnauthorized, "error.html", &pageData{Title: "Log in", Body: "Your session ended or the token is not known: log in again."})
				return
			}
			http.Redirect(w, r, "/login?next="+url.QueryEscape(r.URL.RequestURI()), http.StatusSeeOther)
			return
		}
		d := &pageData{Principal: p, CanWrite: p.Role >= config.RoleRunner, CanDelete: p.Role >= config.RoleAdmin}
		if ck, err := r.Cookie(SessionCookie); err == nil {
			d.CSRF = c.s.csrf(ck.Value)
		}
		if r.Method == http.MethodPost {
			if r.Header.Get("Authorization") == "" && !c.s.checkCSRF(r) {
				c.render(w, http.StatusForbidden, "error.html", &pageData{Title: "Refused", Principal: p, Body: "The form is out of date or did not come from this console (CSRF check): reload the page and try again."})
				return
			}
			if !d.CanWrite {
				c.render(w, http.StatusForbidden, "error.html", &pageData{Title: "Refused", Principal: p, Body: fmt.Sprintf("%s is a %s token: it may read runs but not change them.", p.Name, p.Role)})
				return
			}
		}
		tmpl, status := fn(w, r, d)
		if tmpl != "" {
			c.render(w, status, tmpl, d)
		}
	}
}

func (c *Console) render(w http.ResponseWriter, status int, tmpl string, d *pageData) {
	var buf bytes.Buffer
	if err := templates.ExecuteTemplate(&buf, tmpl, d); err != nil {
		c.o.Logger.Error("console: render", "template", tmpl, "err", err)
		http.Error(w, "the page could not be rendered; it is logged", http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.WriteHeader(status)
	_, _ = w.Write(buf.Bytes())
}

func (c *Console) loginPage(w http.ResponseWriter, r *http.Request) {
	c.render(w, http.StatusOK, "login.html", &pageData{Title: "Log in", Body: loginBody{Next: safeNext(r.URL.Query().Get("next"))}})
}

type loginBody struct {
	Next, Error string
}

func (c *Console) login(w http.ResponseWriter, r *http.Request) {
	token := strings.TrimSpace(r.PostFormValue("token"))
	next := safeNext(r.PostFormValue("next"))
	if _, ok := c.o.Auth.Authenticate(token); !ok {
		c.render(w, http.StatusUnauthorized, "login.html", &pageData{Title: "Log in", Body: loginBody{Next: next, Error: "That token is not known to this server. Paste a token from server.yaml's tenants (zof reads the same one from ZOF_TOKEN)."}})
		return
	}
	http.SetCookie(w, &http.Cookie{Name: SessionCookie, Value: c.s.issue(token), Path: "/", HttpOnly: true, Secure: c.o.Secure, SameSite: http.SameSiteStrictMode, MaxAge: int(SessionTTL.Seconds())})
	http.Redirect(w, r, next, http.StatusSeeOther)
}

func (c *Console) logout(w http.ResponseWriter, r *http.Request) {
	http.SetCookie(w, &http.Cookie{Name: SessionCookie, Value: "", Path: "/", HttpOnly: true, Secure: c.o.Secure, SameSite: http.SameSiteStrictMode, MaxAge: -1})
	http.Redirect(w, r, "/login", http.StatusSeeOther)
}

// safeNext keeps a post-login redirect on this site.
func safeNext(next string) string {
	if next == "" || !strings.HasPrefix(next, "/") || strings.HasPrefix(next, "//") || strings.HasPrefix(next, "/\\") {
		return "/runs"
	}
	return next
}

func (c *Console) notFound(d *pageData, id string) (string, int) {
	d.Title, d.Body = "Not found", fmt.Sprintf("No run %q in tenant %s. It may belong to another tenant, or the id is mistyped.", id, d.Principal.Tenant)
	return "error.html", http.StatusNotFound
}

func (c *Console) failed(d *pageData, what string, err error) (string, int) {
	c.o.Logger.Error("console: "+what, "err", err)
	d.Title, d.Body = "Error", fmt.Sprintf("Could not %s: %v. Retry; if it persists, check the server's log.", what, err)
	return "error.html", http.StatusServiceUnavailable
}

func (c *Console) run(w http.ResponseWriter, r *http.Request, d *pageData) (string, int) {
	id := r.PathValue("id")
	run, err := c.o.Runs.Get(r.Context(), d.Principal.Tenant, id)
	if errors.Is(err, engine.ErrNotFound) {
		return c.notFound(d, id)
	}
	if err != nil {
		return c.failed(d, "read run "+id, err)
	}
	if c.o.Waits != nil {
		c.o.Waits.AddWaits(run)
	}
	v := NewRunView(run, c.o.Now())
	c.consoleEvidence(r.Context(), d.Principal.Tenant, v)
	q := r.URL.Query()
	filter := q.Get("members")
	if filter != FilterFailed && filter != FilterFlaky {
		filter = ""
	}
	page, _ := strconv.Atoi(q.Get("page"))
	v.Page(filter, page, MembersPageSize)
	d.Title, d.Nav, d.Body = run.Project+" · "+v.Tag.Label, "runs", v
	if q.Get("part") == "live" {
		// What the page's script swaps in while the run is live: the
		// counts, Results and the Timeline (the members' overlays follow
		// the event stream itself).
		return "run-live-part", http.StatusOK
	}
	if c.o.History != nil {
		st, err := strips(r.Context(), c.o.History, run, v.Members, c.o.Now())
		if err != nil {
			c.o.Logger.Warn("console: reading test history for the run page", "run", id, "err", err)
		}
		v.Strips = st
	}
	return "run-page.html", http.StatusOK
}

func (c *Console) confirmCancel(w http.ResponseWriter, r *http.Request, d *pageData) (string, int) {
	return c.confirm(r, d, "Cancel", "cancel.html")
}

// confirm is the page that asks before an action on a run: the run's
// summary under "<verb> run <id>?", rendered with page.
func (c *Console) confirm(r *http.Request, d *pageData, verb, page string) (string, int) {
	id := r.PathValue("id")
	run, err := c.o.Runs.Get(r.Context(), d.Principal.Tenant, id)
	if errors.Is(err, engine.ErrNotFound) {
		return c.notFound(d, id)
	}
	if err != nil {
		return c.failed(d, "read run "+id, err)
	}
	d.Title, d.Nav, d.Body = verb+" run "+id+"?", "runs", NewRunView(run, c.o.Now())
	return page, http.StatusOK
}

func (c *Console) cancel(w http.ResponseWriter, r *http.Request, d *pageData) (string, int) {
	id := r.PathValue("id")
	reason := strings.TrimSpace(r.PostFormValue("reason"))
	_, err := c.o.Actions.CancelRun(r.Context(), d.Principal, id, reason)
	if errors.Is(err, engine.ErrNotFound) {
		return c.notFound(d, id)
	}
	if err != nil {
		d.Title, d.Body = "Not cancelled", fmt.Sprintf("Run %s was not cancelled: %v", id, err)
		return "error.html", http.StatusConflict
	}
	http.Redirect(w, r, "/runs/"+url.PathEscape(id), http.StatusSeeOther)
	return "", 0
}

func (c *Console) rerun(w http.ResponseWriter, r *http.Request, d *pageData) (string, int) {
	id := r.PathValue("id")
	run, err := c.o.Actions.RerunRun(r.Context(), d.Principal, id)
	if errors.Is(err, engine.ErrNotFound) {
		return c.notFound(d, id)
	}
	if err != nil {
		d.Title, d.Body = "Not rerun", fmt.Sprintf("Run %s was not rerun: %v", id, err)
		return "error.html", http.StatusConflict
	}
	http.Redirect(w, r, "/runs/"+url.PathEscape(run.ID), http.StatusSeeOther)
	return "", 0
}

func (c *Console) confirmDelete(w http.ResponseWriter, r *http.Request, d *pageData) (string, int) {
	return c.confirm(r, d, "Delete", "delete.html")
}

func (c *Console) delete(w http.ResponseWriter, r *http.Request, d *pageData) (string, int) {
	id := r.PathValue("id")
	if !d.CanDelete {
		d.Title, d.Body = "Refused", fmt.Sprintf("%s is a %s token: only an admin may delete runs.", d.Principal.Name, d.Principal.Role)
		return "error.html", http.StatusForbidden
	}
	err := c.o.Actions.DeleteRun(r.Context(), d.Principal, id)
	if errors.Is(err, engine.ErrNotFound) {
		return c.notFound(d, id)
	}
	if err != nil {
		d.Title, d.Body = "Not deleted", fmt.Sprintf("Run %s was not deleted: %v", id, err)
		return "error.html", http.StatusConflict
	}
	http.Redirect(w, r, "/runs?deleted="+url.QueryEscape(id), http.StatusSeeOther)
	return "", 0
}
