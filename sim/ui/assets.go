package ui

import (
	"embed"
	"fmt"
	"net/http"
)

// assets are the page, its script and its style, built into the binary
// so that the view works with no network.
//
//go:embed assets/index.html assets/app.js assets/style.css
var assets embed.FS

func assetBytes(name string) ([]byte, error) {
	b, err := assets.ReadFile("assets/" + name)
	if err != nil {
		return nil, fmt.Errorf("ui: asset %s: %w", name, err)
	}
	return b, nil
}

// asset serves one embedded file.
func asset(name, contentType string) http.HandlerFunc {
	return func(w http.ResponseWriter, _ *http.Request) {
		b, err := assetBytes(name)
		if err != nil {
			writeError(w, http.StatusInternalServerError, "InternalError", err.Error())
			return
		}
		w.Header().Set("Content-Type", contentType)
		w.Header().Set("Cache-Control", "no-cache")
		_, _ = w.Write(b)
	}
}

// page serves the live page.
func (s *Server) page(w http.ResponseWriter, r *http.Request) {
	asset("index.html", "text/html; charset=utf-8")(w, r)
}
