package netfault_test

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"golang.org/x/net/proxy"

	"github.com/gitopsim/gitopsim/sim/netfault"
)

func TestLinkOfflineCutsAndRecovers(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "ok") }))
	defer srv.Close()
	l := netfault.New("agent-arm", netfault.Options{})
	c := &http.Client{Transport: l.HTTPTransport(nil), Timeout: 5 * time.Second}
	get := func() error {
		resp, err := c.Get(srv.URL)
		if err != nil {
			return err
		}
		defer resp.Body.Close()
		_, err = io.ReadAll(resp.Body)
		return err
	}
	if err := get(); err != nil {
		t.Fatalf("online: %v", err)
	}
	l.SetOffline(true)
	err := get()
	if !errors.Is(err, netfault.ErrOffline) || !strings.Contains(err.Error(), "agent-arm") {
		t.Fatalf("offline: %v", err)
	}
	l.SetOffline(false)
	if err := get(); err != nil {
		t.Fatalf("back online: %v", err)
	}

	l.SetFlaky(2)
	var fails int
	for range 6 {
		c.CloseIdleConnections() // a new dial each time
		if get() != nil {
			fails++
		}
	}
	if fails != 3 {
		t.Errorf("every 2nd dial should fail: %d of 6 failed", fails)
	}
	l.SetFlaky(0)

	l.SetDelay(100 * time.Millisecond)
	c.CloseIdleConnections()
	t0 := time.Now()
	if err := get(); err != nil {
		t.Fatal(err)
	}
	if d := time.Since(t0); d < 200*time.Millisecond {
		t.Errorf("delayed link: request took %v, want a dial and a write delay", d)
	}
}

func TestSOCKSProxyFollowsTheLink(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "via proxy") }))
	defer srv.Close()
	l := netfault.New("agent-git", netfault.Options{})
	if err := l.Start(t.Context()); err != nil {
		t.Fatal(err)
	}
	defer l.Stop(context.Background())
	pu, _ := url.Parse(l.ProxyURL())
	dialer, err := proxy.FromURL(pu, proxy.Direct)
	if err != nil {
		t.Fatal(err)
	}
	c := &http.Client{Transport: &http.Transport{Dial: dialer.Dial}, Timeout: 5 * time.Second}
	resp, err := c.Get(srv.URL)
	if err != nil {
		t.Fatalf("through the proxy: %v", err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if string(b) != "via proxy" {
		t.Fatalf("body %q", b)
	}
	l.SetOffline(true)
	c.CloseIdleConnections()
	if _, err := c.Get(srv.URL); err == nil || !strings.Contains(err.Error(), "unreachable") {
		t.Errorf("through an offline link's proxy: %v", err)
	}
	if dials, failures := l.Stats(); dials != 2 || failures != 1 {
		t.Errorf("stats: %d dials, %d failures", dials, failures)
	}
}
