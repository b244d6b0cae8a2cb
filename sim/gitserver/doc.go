// Package gitserver is gitopsim's embedded Git server: one git service
// (upload-pack and receive-pack, protocol v0) over a repo store, with an SSH
// front (gliderlabs/ssh, public-key auth) and a smart-HTTP front over TLS
// (basic auth with user and token). The real git CLI and go-git both use it.
//
// go-git v5 ships only the server's building blocks, and its own sessions
// fail real clients in several ways (no multi-round negotiation, no shallow
// clones, no peeled tags, delete-only pushes that hang, no old-value check).
// This package owns the protocol layer and uses go-git for storage, object
// walking and pack encoding and decoding:
//
//   - upload-pack: have/done negotiation over as many rounds as the client
//     needs (stateful over SSH, stateless over HTTP), flush-only requests,
//     shallow and deepen <n>, peeled tags, include-tag, ofs-delta,
//     side-band-64k progress, and a cache of generated packs;
//   - receive-pack: report-status, delete-refs, delete-only pushes, atomic,
//     no-thin, and a compare-and-swap on every ref so racing pushes never
//     silently overwrite each other.
//
// Over SSH a command that succeeded keeps its channel open until the
// client has closed its input (bounded at 10 s): go-git closes stdin only
// after writing its request, and a channel closed first made its push or
// fetch fail with a bare EOF although the server had done the work.
//
// A reference backend hands the same requests to the git binaries (git
// upload-pack, git receive-pack, git http-backend), for tests that compare
// the two and for a high-fidelity mode.
//
// Identities: users with SSH keys and HTTPS tokens (tokens may expire on the
// simulator's clock), per-repo deploy keys (read-only or read-write), public
// or private repos. The control API (CreateRepo, Commit, SetRef, keys,
// faults, push events) is for scenarios and tests.
package gitserver
