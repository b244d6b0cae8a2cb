package policy

import (
	"bytes"
	"context"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/gitopsim/gitopsim/sim/arm"
	"github.com/gitopsim/gitopsim/sim/clock"
)

// TestEvaluatorGetWarns: a resource that is not there is quietly
// missing for an existence condition, but a read that fails for any
// other reason is logged at WARN with the ARM error, since the failure
// is gitopsim's and the verdict built on it is wrong.
func TestEvaluatorGetWarns(t *testing.T) {
	var logs bytes.Buffer
	log := slog.New(slog.NewTextHandler(&logs, nil))
	clk := clock.NewVirtual(time.Time{})
	srv, err := arm.New(arm.Options{Workdir: t.TempDir(), Clock: clk, Logger: log})
	if err != nil {
		t.Fatal(err)
	}
	p, err := New(Options{ARM: srv, Clock: clk, Logger: log})
	if err != nil {
		t.Fatal(err)
	}
	if err := srv.Host(p); err != nil {
		t.Fatal(err)
	}
	if err := srv.Start(t.Context()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { srv.Stop(context.Background()) })
	id := "/subscriptions/" + srv.SubscriptionID() + "/resourceGroups/rg/providers/Microsoft.Kubernetes/connectedClusters/none"

	if _, ok := p.eval.get(id, clusterAPIVersion); ok {
		t.Fatal("a missing cluster was found")
	}
	if strings.Contains(logs.String(), "level=WARN") {
		t.Errorf("a missing resource was logged as a failure:\n%s", logs.String())
	}
	if _, ok := p.eval.get(id, "1999-01-01"); ok {
		t.Fatal("a read ARM refused was found")
	}
	if !strings.Contains(logs.String(), "level=WARN") || !strings.Contains(logs.String(), "status=400") {
		t.Errorf("a refused read was not logged at WARN with its status:\n%s", logs.String())
	}
}
