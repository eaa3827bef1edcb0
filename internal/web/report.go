package web

import (
	"bytes"
	"embed"
	"fmt"
	"html/template"
	"io"
	"time"

	"github.com/zof-ai/zof-ci/api"
)

//go:embed templates/*.html
var templateFS embed.FS

//go:embed static/app.css
var appCSS string

// templates are parsed once; every page and the report share run.html.
var templates = template.Must(template.New("").ParseFS(templateFS, "templates/*.html"))

// WriteReport writes the self-contained HTML report of a run: the run page's
// content with the stylesheet inline, no script and no network fetch, so it
// opens from file:// and as a CI artifact. now dates the report and the
// durations of an unfinished run.
func WriteReport(w io.Writer, run *api.Run, now time.Time) error {
	return writeReport(w, run, now, nil)
}

// writeReport is WriteReport with the view adjusted by with (nil: as is).
func writeReport(w io.Writer, run *api.Run, now time.Time, with func(*RunView)) error {
	var buf bytes.Buffer
	v := NewRunView(run, now)
	if with != nil {
		with(v)
	}
	data := struct {
		Run     *RunView
		CSS     template.CSS
		Written string
	}{v, template.CSS(appCSS), now.UTC().Format("2006-01-02 15:04:05 UTC")}
	if err := templates.ExecuteTemplate(&buf, "report.html", data); err != nil {
		return fmt.Errorf("render the HTML report: %w", err)
	}
	_, err := w.Write(buf.Bytes())
	return err
}
