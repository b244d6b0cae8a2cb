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
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/gitopsim/gitopsim/sim"
	"github.com/gitopsim/gitopsim/sim/agent"
	"github.com/gitopsim/gitopsim/sim/clock"
	"github.com/gitopsim/gitopsim/sim/internal/graceful"
)

// Options configure a Server.
type Options struct {
	// Addr is where to listen; default 127.0.0.1:0.
	Addr string
	// Sim is the simulator shown; required.
	Sim *sim.Sim
	// Recorder is the timeline, attached to Sim before it started;
	// required.
	Recorder *Recorder
	// ClockReason, when set, says why the clock cannot be steered here
	// (a scenario's clock): the clock controls answer 409 with it. A
	// clock that is not a clock.Controller cannot be steered either.
	ClockReason string
	// Mode is what the page is told it shows; default "live".
	Mode string
	// Logger receives the server's log; nil discards it.
	Logger *slog.Logger
	// Refresh is how often cluster rows are read again and what changed
	// is sent; default 500ms of Wall time.
	Refresh time.Duration
	// Changes is a directory of changes prepared for a demo (see
	// Change), offered by the page's push control; "" offers none.
	Changes string
	// Wall paces the refresh and the stream's keepalives: a page is
	// refreshed on wall time whatever the simulated clock does. Default
	// clock.Real().
	Wall clock.Clock
}

// Server serves the web view: the page, its JSON API and the live stream.
type Server struct {
	opts Options
	log  *slog.Logger
	rec  *Recorder
	sim  *sim.Sim
	ctl  clock.Controller

	ln      net.Listener
	httpSrv *http.Server
	cancel  context.CancelFunc
	done    chan struct{}

	// demo counts the demo changes pushed to each repo.
	demoMu sync.Mutex
	demo   map[string]int
}

// New validates o; nothing listens until Start.
func New(o Options) (*Server, error) {
	if o.Sim == nil || o.Recorder == nil {
		return nil, errors.New("ui: Sim and Recorder are required")
	}
	if o.Addr == "" {
		o.Addr = "127.0.0.1:0"
	}
	if o.Mode == "" {
		o.Mode = "live"
	}
	if o.Refresh <= 0 {
		o.Refresh = 500 * time.Millisecond
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.Wall == nil {
		o.Wall = clock.Real()
	}
	s := &Server{opts: o, log: o.Logger.With("component", "ui"), rec: o.Recorder, sim: o.Sim, demo: map[string]int{}}
	if ctl, ok := o.Sim.Clock().(clock.Controller); ok && o.ClockReason == "" {
		s.ctl = ctl
		ctl.OnChange(func(clock.State) { s.rec.publish(msgClock, s.clockView()) })
	}
	return s, nil
}

// Start listens and serves until Stop.
func (s *Server) Start(ctx context.Context) error {
	ln, err := (&net.ListenConfig{}).Listen(ctx, "tcp", s.opts.Addr)
	if err != nil {
		return fmt.Errorf("ui: listen on %s: %w", s.opts.Addr, err)
	}
	s.ln = ln
	bg, cancel := context.WithCancel(context.WithoutCancel(ctx))
	// Requests run under bg, so that Stop ends open streams at once
	// instead of waiting out the shutdown grace for them.
	s.httpSrv = &http.Server{Handler: s.routes(), ReadHeaderTimeout: 10 * time.Second,
		BaseContext: func(net.Listener) context.Context { return bg }}
	s.cancel = cancel
	s.done = make(chan struct{})
	go func() {
		if err := s.httpSrv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			s.log.Error("web view stopped serving", "err", err)
		}
	}()
	go s.refresh(bg)
	s.log.Info("web view serving", "url", s.URL())
	return nil
}

// URL is the page's address.
func (s *Server) URL() string {
	if s.ln == nil {
		return ""
	}
	return "http://" + s.ln.Addr().String() + "/"
}

// Stop ends the streams and the server.
func (s *Server) Stop(ctx context.Context) error {
	if s.httpSrv == nil {
		return nil
	}
	s.cancel()
	<-s.done
	return graceful.Shutdown(ctx, s.httpSrv, graceful.Grace, s.log)
}

func (s *Server) clockView() ClockView {
	reason := s.opts.ClockReason
	if s.ctl == nil && reason == "" {
		reason = "this clock cannot be controlled"
	}
	return clockView(s.sim.Clock(), reason)
}

// refresh reads the cluster rows and repos on wall time and sends what
// changed; it also moves time-based spans along.
func (s *Server) refresh(ctx context.Context) {
	defer close(s.done)
	wall := s.opts.Wall
	ticks := make(chan struct{}, 1)
	tick := wall.Every(s.opts.Refresh, func() {
		select {
		case ticks <- struct{}{}:
		default: // a refresh still running: skip this one
		}
	})
	defer tick.Stop()
	var prevRows map[string][]byte
	// prevHB is each row's heartbeat as last sent.
	prevHB, nextHB := map[string]*time.Time{}, map[string]*time.Time{}
	var prevRepos []byte
	lastClock := wall.Now()
	for {
		select {
		case <-ctx.Done():
			return
		case <-ticks:
		}
		s.rec.Tick(s.sim.Clock().Now())
		if !s.rec.hasSubscribers() {
			prevRows, prevRepos = nil, nil
			clear(prevHB)
			continue
		}
		rows := clusterRows(s.sim)
		// A heartbeat alone changes a row every minute of simulated time,
		// which at 60× is every cluster every second: such rows go out
		// with the clock, every 5 s, and real changes at once.
		slow := wall.Since(lastClock) >= 5*time.Second
		next := make(map[string][]byte, len(rows))
		var changed []ClusterRow
		for _, row := range rows {
			hb := row.LastHeartbeat
			row.LastHeartbeat = nil
			b, _ := json.Marshal(row)
			row.LastHeartbeat = hb
			prev, seen := prevRows[row.Key]
			switch {
			case !seen || !bytes.Equal(prev, b):
				changed = append(changed, row)
				next[row.Key] = b
			case slow && !sameTime(hb, prevHB[row.Key]):
				changed = append(changed, row)
				next[row.Key] = b
			default:
				next[row.Key] = prev
				if h, ok := prevHB[row.Key]; ok {
					hb = h // not sent yet
				}
			}
			nextHB[row.Key] = hb
		}
		var removed []string
		for k := range prevRows {
			if _, ok := next[k]; !ok {
				removed = append(removed, k)
			}
		}
		if len(changed) > 0 || len(removed) > 0 {
			s.rec.publish(msgClusters, map[string]any{"clusters": changed, "removed": removed, "resourceGroups": resourceGroups(rows)})
		}
		prevRows, prevHB, nextHB = next, nextHB, prevHB
		clear(nextHB)
		repos, gitDown := repoRows(s.sim)
		rb, _ := json.Marshal(map[string]any{"repos": repos, "gitDown": gitDown})
		if !bytes.Equal(rb, prevRepos) {
			s.rec.publishRaw(msgRepos, rb)
			prevRepos = rb
		}
		if wall.Since(lastClock) >= 5*time.Second {
			lastClock = wall.Now()
			s.rec.publish(msgClock, s.clockView())
		}
	}
}

func sameTime(a, b *time.Time) bool {
	return a == nil && b == nil || a != nil && b != nil && a.Equal(*b)
}

// routes maps the API (API.md) and the page.
func (s *Server) routes() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("/{$}", get(s.page))
	mux.HandleFunc("/index.html", get(s.page))
	mux.HandleFunc("/app.js", get(asset("app.js", "text/javascript; charset=utf-8")))
	mux.HandleFunc("/style.css", get(asset("style.css", "text/css; charset=utf-8")))
	mux.HandleFunc("/api/state", get(s.state))
	mux.HandleFunc("/api/events", get(s.events))
	mux.HandleFunc("/api/stream", get(s.stream))
	mux.HandleFunc("/api/clusters/{rg}/{name}", get(s.cluster))
	mux.HandleFunc("/api/clusters/{rg}/{name}/links", post(s.links))
	mux.HandleFunc("/api/clock/{op}", post(s.clockControl))
	mux.HandleFunc("/api/changes", get(s.changes))
	mux.HandleFunc("/api/git", post(s.gitDown))
	mux.HandleFunc("/api/repos/{path...}", post(s.repo))
	mux.HandleFunc("/api/", func(w http.ResponseWriter, r *http.Request) {
		writeError(w, http.StatusNotFound, "NotFound", fmt.Sprintf("no API at %s; see API.md", r.URL.Path))
	})
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) { http.NotFound(w, r) })
	return localOnly(mux)
}

// localOnly answers only requests meant for this loopback server: a Host
// that is not a loopback address is another site's name resolved to
// 127.0.0.1 (DNS rebinding), and a request whose Origin is not the page's
// own comes from another site open in the same browser. Either could
// otherwise read the state or push manifests to the clusters; tools that
// send no Origin (curl, scripts) are not affected.
func localOnly(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		host, _, err := net.SplitHostPort(r.Host)
		if err != nil {
			host = r.Host
		}
		if host != "localhost" {
			if ip := net.ParseIP(strings.Trim(host, "[]")); ip == nil || !ip.IsLoopback() {
				writeError(w, http.StatusForbidden, "Forbidden", fmt.Sprintf("the web view answers only on a loopback address, not %q", r.Host))
				return
			}
		}
		if o := r.Header.Get("Origin"); o != "" && o != "http://"+r.Host {
			writeError(w, http.StatusForbidden, "Forbidden", fmt.Sprintf("requests from %s are not accepted: use the page at http://%s/", o, r.Host))
			return
		}
		h.ServeHTTP(w, r)
	})
}

func get(h http.HandlerFunc) http.HandlerFunc  { return method(http.MethodGet, h) }
func post(h http.HandlerFunc) http.HandlerFunc { return method(http.MethodPost, h) }
func method(m string, h http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if r.Method != m && !(m == http.MethodGet && r.Method == http.MethodHead) {
			w.Header().Set("Allow", m)
			writeError(w, http.StatusMethodNotAllowed, "MethodNotAllowed", fmt.Sprintf("%s takes %s, not %s", r.URL.Path, m, r.Method))
			return
		}
		h(w, r)
	}
}

func (s *Server) state(w http.ResponseWriter, _ *http.Request) {
	st := s.rec.Snapshot(s.sim, s.opts.Mode, "")
	st.Clock = s.clockView()
	writeJSON(w, http.StatusOK, st)
}

func (s *Server) events(w http.ResponseWriter, r *http.Request) {
	after := int64(0)
	if v := r.URL.Query().Get("after"); v != "" {
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil || n < 0 {
			writeError(w, http.StatusBadRequest, "BadRequest", fmt.Sprintf("after=%q: want a sequence number (0 or more)", v))
			return
		}
		after = n
	}
	writeJSON(w, http.StatusOK, map[string]any{"events": s.rec.Events(after), "spans": s.rec.Spans()})
}

// stream is the live feed: replayed timeline events after Last-Event-ID,
// then every message as it comes.
func (s *Server) stream(w http.ResponseWriter, r *http.Request) {
	fl, ok := w.(http.Flusher)
	if !ok {
		writeError(w, http.StatusInternalServerError, "InternalError", "streaming is not supported by this connection")
		return
	}
	sub, cancel := s.rec.subscribe()
	defer cancel()
	h := w.Header()
	h.Set("Content-Type", "text/event-stream")
	h.Set("Cache-Control", "no-store")
	h.Set("X-Accel-Buffering", "no")
	w.WriteHeader(http.StatusOK)
	fmt.Fprint(w, "retry: 2000\n\n")
	if last, err := strconv.ParseInt(r.Header.Get("Last-Event-ID"), 10, 64); err == nil {
		for _, e := range s.rec.Events(last) {
			b, _ := json.Marshal(e)
			writeMessage(w, message{event: msgTimeline, id: strconv.FormatInt(e.Seq, 10), data: b})
		}
	}
	// The clock, every cluster and the repos first: whatever changed
	// between the page's GET /api/state and this stream is then not lost.
	// Rows and repos queued before this snapshot was read are older than
	// it and are dropped; the rest goes first.
	clk, _ := json.Marshal(s.clockView())
	rows := clusterRows(s.sim)
	rowsMsg, _ := json.Marshal(map[string]any{"clusters": rows, "removed": []string{}, "resourceGroups": resourceGroups(rows)})
	repos, gitDown := repoRows(s.sim)
	reposMsg, _ := json.Marshal(map[string]any{"repos": repos, "gitDown": gitDown})
	for more := true; more; {
		select {
		case m := <-sub.ch:
			if m.event != msgClusters && m.event != msgRepos {
				writeMessage(w, m)
			}
		default:
			more = false
		}
	}
	writeMessage(w, message{event: msgClock, data: clk})
	writeMessage(w, message{event: msgClusters, data: rowsMsg})
	writeMessage(w, message{event: msgRepos, data: reposMsg})
	fl.Flush()
	keepalive := make(chan struct{}, 1)
	ka := s.opts.Wall.Every(15*time.Second, func() {
		select {
		case keepalive <- struct{}{}:
		default:
		}
	})
	defer ka.Stop()
	for {
		select {
		case <-r.Context().Done():
			return
		case <-sub.gone:
			return
		case <-keepalive:
			fmt.Fprint(w, ": keepalive\n\n")
		case m := <-sub.ch:
			writeMessage(w, m)
			// Send what else is queued before flushing: a burst of a
			// thousand syncs is one write.
			for more := true; more; {
				select {
				case m := <-sub.ch:
					writeMessage(w, m)
				default:
					more = false
				}
			}
		}
		fl.Flush()
	}
}

func writeMessage(w http.ResponseWriter, m message) {
	var b strings.Builder
	b.WriteString("event: " + m.event + "\n")
	if m.id != "" {
		b.WriteString("id: " + m.id + "\n")
	}
	b.WriteString("data: ")
	b.Write(m.data) // JSON has no raw newlines
	b.WriteString("\n\n")
	_, _ = w.Write([]byte(b.String()))
}

// cluster is one cluster's row, the objects of its last syncs and its
// agent's events.
func (s *Server) cluster(w http.ResponseWriter, r *http.Request) {
	c, row, ok := s.findCluster(w, r)
	if !ok {
		return
	}
	d := ClusterDetail{Objects: []Object{}, Events: []agent.Event{}}
	if c != nil {
		d = clusterDetail(c, 500)
	}
	writeJSON(w, http.StatusOK, map[string]any{"cluster": row, "objects": d.Objects, "events": d.Events})
}

// findCluster finds a cluster by resource group and name (ARM compares
// them case-insensitively) or answers 404.
func (s *Server) findCluster(w http.ResponseWriter, r *http.Request) (*sim.Connected, ClusterRow, bool) {
	rg, name := r.PathValue("rg"), r.PathValue("name")
	var row ClusterRow
	found := false
	for _, cr := range clusterRows(s.sim) {
		if strings.EqualFold(cr.ResourceGroup, rg) && strings.EqualFold(cr.Name, name) {
			row, found = cr, true
			break
		}
	}
	var conn *sim.Connected
	for _, c := range s.sim.Connected() {
		if strings.EqualFold(c.ResourceGroup, rg) && strings.EqualFold(c.Name, name) {
			conn = c
		}
	}
	if !found && conn == nil {
		writeError(w, http.StatusNotFound, "NotFound", fmt.Sprintf("no connected cluster %s in resource group %s", name, rg))
		return nil, row, false
	}
	return conn, row, true
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		writeError(w, http.StatusInternalServerError, "InternalError", "cannot encode the answer: "+err.Error())
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_, _ = w.Write(append(b, '\n'))
}

func writeError(w http.ResponseWriter, status int, code, msg string) {
	b, _ := json.Marshal(map[string]any{"error": map[string]string{"code": code, "message": msg}})
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_, _ = w.Write(append(b, '\n'))
}
