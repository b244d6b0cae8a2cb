package agent

import (
	"sync"

	"github.com/go-git/go-git/v5/plumbing/transport/client"
	githttp "github.com/go-git/go-git/v5/plumbing/transport/http"
)

// go-git's default HTTPS client keeps no transports: a fetch with a proxy
// or a CA bundle (every operator's: the agent's git link and the gitopsim
// CA) clones a new http.Transport, whose connection then idles for 90 s
// of wall time after the fetch (plumbing/transport/http, newSession). On
// a virtual clock, or with the fast profile, fetches come many a second,
// and the soak counted hundreds of idle connections at once, each with
// its goroutines and descriptors on both sides of the link. With a cache
// the operators of one agent share one transport and its connection, as
// one long-lived git client would.
//
// The protocol table is go-git's, for the whole process; the client
// installed differs from go-git's default only in that cache.
var installGitHTTPS = sync.OnceFunc(func() {
	client.InstallProtocol("https", githttp.NewClientWithOptions(nil, &githttp.ClientOptions{CacheMaxEntries: gitTransportCache}))
})

// gitTransportCache bounds the transports kept: one per agent link and
// CA bundle, so a fleet larger than this recycles the oldest.
const gitTransportCache = 1024
