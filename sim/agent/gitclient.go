package agent

import (
	"net/http"
	"sync"

	"github.com/go-git/go-git/v5/plumbing/transport/client"
	githttp "github.com/go-git/go-git/v5/plumbing/transport/http"
)

// go-git's default HTTPS client makes a new http.Transport for every
// fetch with a proxy or a CA bundle (every operator's: the agent's git
// link and the gitopsim CA), and the connection of each then idled for
// 90 s of wall time after the fetch (plumbing/transport/http,
// newSession). On a virtual clock, or with the fast profile, fetches
// come many a second, and the soak counted hundreds of idle connections
// at once, each with its goroutines and descriptors on both sides of the
// link. go-git's transport cache is no answer: its LRU is reordered
// under a read lock, a data race when operators fetch at once (found by
// the race detector on the concurrent fleet test).
//
// So a connection serves one request and closes, as the git process
// fluxd runs for each fetch closes its own when it exits. The protocol
// table is go-git's, for the whole process; the client installed differs
// from go-git's default only in not keeping connections alive.
var installGitHTTPS = sync.OnceFunc(func() {
	base := http.DefaultTransport.(*http.Transport).Clone()
	base.DisableKeepAlives = true
	client.InstallProtocol("https", githttp.NewClient(&http.Client{Transport: base}))
})
