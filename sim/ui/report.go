package ui

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"time"

	"github.com/gitopsim/gitopsim/sim/internal/graceful"

	"github.com/gitopsim/gitopsim/sim/internal/atomicfile"
)

// ScenarioInfo is the scenario a report shows.
type ScenarioInfo struct {
	Name   string `json:"name"`
	File   string `json:"file"`
	Result string `json:"result"`
	// Start is the scenario's virtual start; step offsets count from it.
	Start           time.Time `json:"start"`
	VirtualDuration string    `json:"virtualDuration"`
	Failures        []string  `json:"failures,omitempty"`
	// Steps are the transcript's steps, as the transcript has them.
	Steps json.RawMessage `json:"steps"`
}

// report is the data embedded in an HTML report.
type report struct {
	Mode      string    `json:"mode"`
	Generated time.Time `json:"generated"`
	Reports   []State   `json:"reports"`
}

// dataTag is the element of index.html that carries a report's data.
const dataTag = `<script type="application/json" id="gitopsim-data"></script>`

// ReportPage renders states as one self-contained page: the web view's
// page with its script, style and data inline, so that it opens from a
// file with no network.
func ReportPage(states []State, generated time.Time) ([]byte, error) {
	for i := range states {
		states[i].Mode = "report"
		states[i].Clock.Controllable = false
	}
	// json.Marshal escapes <, > and &, so no "</script>" can end the
	// data element early.
	data, err := json.Marshal(report{Mode: "report", Generated: generated.UTC(), Reports: states})
	if err != nil {
		return nil, fmt.Errorf("ui: encode report: %w", err)
	}
	page, err := assetBytes("index.html")
	if err != nil {
		return nil, err
	}
	for _, in := range []struct{ tag, file, open, close string }{
		{`<link rel="stylesheet" href="style.css">`, "style.css", "<style>\n", "\n</style>"},
		{`<script src="app.js"></script>`, "app.js", "<script>\n", "\n</script>"},
	} {
		body, err := assetBytes(in.file)
		if err != nil {
			return nil, err
		}
		if !bytes.Contains(page, []byte(in.tag)) {
			return nil, fmt.Errorf("ui: index.html lacks %s", in.tag)
		}
		page = bytes.Replace(page, []byte(in.tag), []byte(in.open+string(body)+in.close), 1)
	}
	if !bytes.Contains(page, []byte(dataTag)) {
		return nil, fmt.Errorf("ui: index.html lacks %s", dataTag)
	}
	page = bytes.Replace(page, []byte(dataTag), []byte(`<script type="application/json" id="gitopsim-data">`+string(data)+`</script>`), 1)
	return page, nil
}

// WriteReport writes ReportPage to path, making its directory.
func WriteReport(path string, states []State, generated time.Time) error {
	page, err := ReportPage(states, generated)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return fmt.Errorf("ui: report directory: %w", err)
	}
	return atomicfile.WriteFile(path, page, 0o644)
}

// ServeReport serves a report page (ReportPage) on addr until ctx ends:
// the page at "/", and for the API of the live view that was there, a 410
// that says the run is over, so that an open live page says to reload.
func ServeReport(ctx context.Context, addr string, page []byte, log *slog.Logger) error {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	ln, err := (&net.ListenConfig{}).Listen(ctx, "tcp", addr)
	if err != nil {
		return fmt.Errorf("ui: listen on %s: %w", addr, err)
	}
	mux := http.NewServeMux()
	mux.HandleFunc("/{$}", get(func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		w.Header().Set("Cache-Control", "no-cache")
		_, _ = w.Write(page)
	}))
	mux.HandleFunc("/api/", func(w http.ResponseWriter, _ *http.Request) {
		writeError(w, http.StatusGone, "Gone", "the run is over: reload the page for its report")
	})
	srv := &http.Server{Handler: localOnly(mux), ReadHeaderTimeout: 10 * time.Second}
	go func() {
		<-ctx.Done()
		sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), graceful.Grace)
		defer cancel()
		_ = graceful.Shutdown(sctx, srv, graceful.Grace, log)
	}()
	if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
		return fmt.Errorf("ui: report server: %w", err)
	}
	return nil
}
