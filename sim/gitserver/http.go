package gitserver

import (
	"compress/gzip"
	"fmt"
	"io"
	"net/http"
	"net/http/cgi"
	"os"
	"strings"
)

// serveHTTP is the smart-HTTP front: GET <repo>/info/refs?service=...,
// POST <repo>/git-upload-pack and <repo>/git-receive-pack.
func (s *Server) serveHTTP(w http.ResponseWriter, r *http.Request) {
	if s.isDown() {
		httpError(w, http.StatusServiceUnavailable, "the git server is down (injected fault)")
		return
	}
	path := r.URL.Path
	var service, op string
	switch {
	case strings.HasSuffix(path, "/info/refs"):
		op, service = "refs", r.URL.Query().Get("service")
		path = strings.TrimSuffix(path, "/info/refs")
		if service != UploadPack && service != ReceivePack {
			httpError(w, http.StatusForbidden, "only the smart HTTP protocol is served: use a git client that sends ?service=")
			return
		}
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			httpError(w, http.StatusMethodNotAllowed, "use GET")
			return
		}
	case strings.HasSuffix(path, "/"+UploadPack), strings.HasSuffix(path, "/"+ReceivePack):
		i := strings.LastIndexByte(path, '/')
		op, service, path = "rpc", path[i+1:], path[:i]
		if r.Method != http.MethodPost {
			httpError(w, http.StatusMethodNotAllowed, "use POST")
			return
		}
		if ct := r.Header.Get("Content-Type"); ct != "application/x-"+service+"-request" {
			httpError(w, http.StatusUnsupportedMediaType, fmt.Sprintf("content type %q: want application/x-%s-request", ct, service))
			return
		}
	default:
		httpError(w, http.StatusNotFound, "not a git smart HTTP path")
		return
	}
	name, err := CleanRepoName(path)
	if err != nil {
		httpError(w, http.StatusNotFound, err.Error())
		return
	}
	var id *identity
	if u, p, ok := r.BasicAuth(); ok {
		if id, err = s.identityForToken(u, p); err != nil {
			w.Header().Set("WWW-Authenticate", `Basic realm="gitopsim"`)
			httpError(w, http.StatusUnauthorized, err.Error())
			return
		}
	}
	write := service == ReceivePack
	repo, err := s.repoFor(name, id, write)
	if err != nil {
		if id == nil {
			// Ask for credentials, as forges do, rather than say 404.
			w.Header().Set("WWW-Authenticate", `Basic realm="gitopsim"`)
			httpError(w, http.StatusUnauthorized, err.Error())
			return
		}
		status := http.StatusForbidden
		if strings.Contains(err.Error(), "not found") {
			status = http.StatusNotFound
		}
		httpError(w, status, err.Error())
		return
	}
	if err := s.fault(r.Context(), name); err != nil {
		httpError(w, http.StatusServiceUnavailable, err.Error())
		return
	}
	if s.opts.Backend == Reference {
		s.execHTTP(w, r, repo, service, id)
		return
	}
	w.Header().Set("Cache-Control", "no-cache")
	r0 := request{proto: "https", service: service, repo: name, who: id.String()}
	out := clientWriter{w}
	version := protocolVersion(r.Header.Get("Git-Protocol"))
	v2 := version == 2 && service == UploadPack
	if op == "refs" {
		w.Header().Set("Content-Type", "application/x-"+service+"-advertisement")
		pw := pktWriter{out}
		var err error
		if v2 {
			// No service line in v2 (http-backend.c, get_info_refs).
			err = advertiseV2(out)
		} else {
			err = pw.linef("# service=%s\n", service)
			if err == nil {
				err = pw.flush()
			}
			if err == nil {
				_, err = advertise(out, repo, service, version == 1)
			}
		}
		if err != nil {
			s.finish(r0, err)
		}
		return
	}
	body := io.Reader(r.Body)
	if r.Header.Get("Content-Encoding") == "gzip" {
		gz, err := gzip.NewReader(r.Body)
		if err != nil {
			httpError(w, http.StatusBadRequest, "bad gzip body: "+err.Error())
			s.finish(r0, protoErr("bad gzip body: %v", err))
			return
		}
		defer gz.Close()
		body = gz
	}
	w.Header().Set("Content-Type", "application/x-"+service+"-result")
	// Over HTTP/1.1 a response that starts before the request body is
	// read would make the server drop the rest of the body; a stateless
	// negotiation round answers haves as it reads them.
	_ = http.NewResponseController(w).EnableFullDuplex()
	switch {
	case v2:
		err = s.uploadPackV2(r.Context(), repo, body, out, true)
	case service == UploadPack:
		err = s.uploadPack(r.Context(), repo, body, out, true, nil)
	default:
		err = s.receivePack(r.Context(), repo, body, out, id.String())
	}
	s.finish(r0, err)
}

// httpError answers in text/plain, which git shows as "remote: ..." lines.
func httpError(w http.ResponseWriter, status int, msg string) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.WriteHeader(status)
	_, _ = io.WriteString(w, msg+"\n")
}

// execHTTP hands the request to git http-backend through CGI.
func (s *Server) execHTTP(w http.ResponseWriter, r *http.Request, repo *Repo, service string, id *identity) {
	rel := strings.TrimPrefix(repo.Dir(), s.store.Dir())
	suffix := "/info/refs"
	if !strings.HasSuffix(r.URL.Path, suffix) {
		suffix = "/" + service
	}
	r2 := r.Clone(r.Context())
	r2.URL.Path = rel + suffix
	if r.ContentLength < 0 && r.Method == http.MethodPost {
		// Go's CGI host refuses a chunked body (what git sends over
		// HTTP/1.1 for a push bigger than http.postBuffer) with a 400,
		// and http-backend wants CONTENT_LENGTH: spool it first.
		f, n, err := spool(r.Body)
		if err != nil {
			httpError(w, http.StatusBadRequest, "reading the request body: "+err.Error())
			return
		}
		defer f.Close()
		r2.Body, r2.ContentLength, r2.TransferEncoding = f, n, nil
	}
	env := append(gitEnv(), "GIT_PROJECT_ROOT="+s.store.Dir(), "GIT_HTTP_EXPORT_ALL=1")
	if id != nil {
		// http-backend serves receive-pack only to an authenticated user.
		env = append(env, "REMOTE_USER="+id.String())
	}
	h := &cgi.Handler{Path: s.git, Args: []string{"http-backend"}, Env: env, Root: "/"}
	h.ServeHTTP(w, r2)
	s.afterExec(repo, service)
}

// spool copies a request body to an unlinked temporary file.
func spool(body io.Reader) (*os.File, int64, error) {
	f, err := os.CreateTemp("", "gitopsim-body-")
	if err != nil {
		return nil, 0, err
	}
	os.Remove(f.Name())
	n, err := io.Copy(f, body)
	if err == nil {
		_, err = f.Seek(0, io.SeekStart)
	}
	if err != nil {
		f.Close()
		return nil, 0, err
	}
	return f, n, nil
}
