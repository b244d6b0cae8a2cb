package run

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"strconv"
	"sync"
	"time"

	"github.com/gitopsim/gitopsim/cmd/gitopsim/app/cli"
	"github.com/gitopsim/gitopsim/sim"
	"github.com/gitopsim/gitopsim/sim/scenario"
	"github.com/gitopsim/gitopsim/sim/ui"
)

// views records each scenario for the HTML report and serves the web
// view of the one running, as --html and --ui ask.
type views struct {
	s    *cli.Streams
	f    *flags
	log  *slog.Logger
	addr string

	mu     sync.Mutex
	states []ui.State
	told   bool
}

// newViews picks the web view's address once, so that a page stays on
// it from one scenario to the next.
func newViews(s *cli.Streams, f *flags, log *slog.Logger) (*views, error) {
	v := &views{s: s, f: f, log: log}
	if f.ui {
		addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(f.uiPort))
		if f.uiPort == 0 {
			ln, err := net.Listen("tcp", addr)
			if err != nil {
				return nil, fmt.Errorf("web view: %w", err)
			}
			addr = ln.Addr().String()
			ln.Close()
		}
		v.addr = addr
	}
	return v, nil
}

// clockReason says why a scenario's clock cannot be steered, or "".
func (v *views) clockReason() string {
	if v.f.clock == "" || v.f.clock == "virtual" {
		return "the scenario runs on virtual time, as fast as its steps allow; run it with --clock scaled:<k> to pause and jump it"
	}
	if v.f.clock == "real" {
		return "the scenario runs on real time; run it with --clock scaled:<k> to pause and jump it"
	}
	return ""
}

// view is the runner's View hook, nil when neither flag asks for one.
func (v *views) view() func(string, *sim.Sim) func(*scenario.Result) {
	if v.f.html == "" && !v.f.ui {
		return nil
	}
	return func(name string, sm *sim.Sim) func(*scenario.Result) {
		rec := ui.NewRecorder(ui.RecorderOptions{Logger: v.log})
		detach := rec.Attach(sm)
		var srv *ui.Server
		if v.f.ui {
			var err error
			srv, err = ui.New(ui.Options{Addr: v.addr, Sim: sm, Recorder: rec, Logger: v.log, ClockReason: v.clockReason()})
			if err == nil {
				err = srv.Start(context.Background())
			}
			if err != nil {
				v.log.Warn("web view not served for this scenario", "scenario", name, "err", err)
				srv = nil
			} else {
				v.mu.Lock()
				if !v.told {
					v.told = true
					fmt.Fprintf(v.s.Err, "web view: %s\n", srv.URL())
				}
				v.mu.Unlock()
			}
		}
		return func(res *scenario.Result) {
			defer detach()
			if srv != nil {
				ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
				if err := srv.Stop(ctx); err != nil {
					v.log.Warn("stopping the web view", "err", err)
				}
				cancel()
			}
			if res == nil {
				return
			}
			st := rec.Snapshot(sm, "report", v.clockReason())
			info := res.ScenarioInfo()
			st.Scenario = &info
			v.mu.Lock()
			v.states = append(v.states, st)
			v.mu.Unlock()
		}
	}
}

// serveReport serves the report of the run on the web view's address
// until ctx ends (Ctrl-C).
func (v *views) serveReport(ctx context.Context) error {
	v.mu.Lock()
	states := v.states
	v.mu.Unlock()
	if len(states) == 0 {
		return fmt.Errorf("no scenario ran to the end")
	}
	page, err := ui.ReportPage(states, time.Now())
	if err != nil {
		return err
	}
	fmt.Fprintf(v.s.Err, "web view: the run is over; its report stays at http://%s/ until Ctrl-C\n", v.addr)
	return ui.ServeReport(ctx, v.addr, page, v.log)
}

// writeReport writes the HTML report of every scenario run, in the
// order they finished.
func (v *views) writeReport(path string) error {
	v.mu.Lock()
	defer v.mu.Unlock()
	if len(v.states) == 0 {
		return fmt.Errorf("no scenario ran to the end")
	}
	return ui.WriteReport(path, v.states, time.Now())
}
