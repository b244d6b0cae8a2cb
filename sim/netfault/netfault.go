// Package netfault puts switchable faults on a network link, so that
// "the cluster is offline" is a real network failure the code under test
// must survive, not a flag it checks.
//
// A Link is one path, such as "cluster local's agent to ARM". Code reaches
// through it in one of two ways:
//   - DialContext (or HTTPTransport), for clients whose dialer can be set;
//   - ProxyURL, a SOCKS5 proxy on 127.0.0.1 that dials through the link,
//     for clients that only take a proxy (go-git's SSH and HTTP transports
//     via ProxyOptions).
//
// Faults: offline (dials fail with ENETUNREACH and open connections are
// cut), a delay on every dial and write (wall time: it is the network that
// is slow), and flakiness (every Nth dial fails, deterministically).
package netfault

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"sync"
	"syscall"
	"time"

	"github.com/gitopsim/gitopsim/sim/clock"
)

// ErrOffline is wrapped by every error a link in the offline state gives.
var ErrOffline = errors.New("network is unreachable")

// Options configures a Link.
type Options struct {
	// Logger for diagnostics; nil discards.
	Logger *slog.Logger
}

// Link is a network path with switchable faults. It is safe for
// concurrent use.
type Link struct {
	name string
	log  *slog.Logger
	wall clock.Clock
	dial net.Dialer

	mu        sync.Mutex
	offline   bool
	delay     time.Duration
	failEvery int
	dials     int
	failures  int
	conns     map[*conn]struct{}

	proxy    net.Listener
	proxyURL string
	wg       sync.WaitGroup
}

// New makes a link, online and without faults.
func New(name string, opts Options) *Link {
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	return &Link{name: name, log: opts.Logger.With("component", "netfault", "link", name), wall: clock.Real(), conns: map[*conn]struct{}{}}
}

// Name is the link's name.
func (l *Link) Name() string { return l.name }

// SetOffline takes the link down (new dials fail, open connections are
// cut) or brings it back.
func (l *Link) SetOffline(offline bool) {
	l.mu.Lock()
	l.offline = offline
	var cut []*conn
	if offline {
		for c := range l.conns {
			cut = append(cut, c)
		}
	}
	l.mu.Unlock()
	for _, c := range cut {
		_ = c.Conn.Close()
	}
	l.log.Info("link state", "offline", offline, "cut", len(cut))
}

// Offline reports whether the link is down.
func (l *Link) Offline() bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.offline
}

// SetDelay adds d of wall time to every dial and every write; 0 removes it.
func (l *Link) SetDelay(d time.Duration) {
	l.mu.Lock()
	l.delay = max(d, 0)
	l.mu.Unlock()
}

// SetFlaky makes every nth dial fail (n >= 2); 0 or 1 turns it off.
func (l *Link) SetFlaky(n int) {
	l.mu.Lock()
	if n < 2 {
		n = 0
	}
	l.failEvery, l.dials = n, 0
	l.mu.Unlock()
}

// Stats returns how many dials the link saw and how many it failed.
func (l *Link) Stats() (dials, failures int) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.dials, l.failures
}

func (l *Link) unreachable(network, addr, why string) error {
	return &net.OpError{Op: "dial", Net: network, Err: fmt.Errorf("%w (%s to %s: %s, injected fault): %w", ErrOffline, l.name, addr, why, syscall.ENETUNREACH)}
}

// DialContext dials through the link's faults.
func (l *Link) DialContext(ctx context.Context, network, addr string) (net.Conn, error) {
	l.mu.Lock()
	l.dials++
	offline, delay := l.offline, l.delay
	flake := l.failEvery > 0 && l.dials%l.failEvery == 0
	if offline || flake {
		l.failures++
	}
	l.mu.Unlock()
	switch {
	case offline:
		return nil, l.unreachable(network, addr, "link offline")
	case flake:
		return nil, l.unreachable(network, addr, "flaky link dropped the connection attempt")
	}
	if delay > 0 {
		if err := l.wall.Sleep(ctx, delay); err != nil {
			return nil, err
		}
	}
	c, err := l.dial.DialContext(ctx, network, addr)
	if err != nil {
		return nil, err
	}
	wc := &conn{Conn: c, link: l}
	l.mu.Lock()
	if l.offline { // went down while we dialled
		l.mu.Unlock()
		c.Close()
		return nil, l.unreachable(network, addr, "link offline")
	}
	l.conns[wc] = struct{}{}
	l.mu.Unlock()
	return wc, nil
}

// HTTPTransport returns a transport that dials through the link.
func (l *Link) HTTPTransport(base *http.Transport) *http.Transport {
	var t *http.Transport
	if base != nil {
		t = base.Clone()
	} else {
		t = http.DefaultTransport.(*http.Transport).Clone()
	}
	t.Proxy = nil
	t.DialContext = l.DialContext
	return t
}

// conn is a connection through the link, cut when it goes offline.
type conn struct {
	net.Conn
	link *Link
	once sync.Once
}

func (c *conn) Write(p []byte) (int, error) {
	c.link.mu.Lock()
	offline, delay := c.link.offline, c.link.delay
	c.link.mu.Unlock()
	if offline {
		return 0, c.link.unreachable("tcp", c.RemoteAddr().String(), "link offline")
	}
	if delay > 0 {
		if err := c.link.wall.Sleep(context.Background(), delay); err != nil {
			return 0, err
		}
	}
	return c.Conn.Write(p)
}

func (c *conn) Close() error {
	c.once.Do(func() {
		c.link.mu.Lock()
		delete(c.link.conns, c)
		c.link.mu.Unlock()
	})
	return c.Conn.Close()
}
