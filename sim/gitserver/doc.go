// Package gitserver is gitopsim's embedded Git server: one git service
// (upload-pack in protocol v0, v1 and v2, receive-pack in v0) over a repo
// store, with an SSH front (gliderlabs/ssh, public-key auth) and a
// smart-HTTP front over TLS (basic auth with user and token). The real git
// CLI and go-git both use it.
//
// go-git v5 ships only the server's building blocks, and its own sessions
// fail real clients in several ways (no multi-round negotiation, no shallow
// clones, no peeled tags, delete-only pushes that hang, no old-value check,
// side-band packets one byte over the limit). This package owns the
// protocol layer; internal/odb owns the objects:
//
//   - upload-pack: have/done negotiation over as many rounds as the client
//     needs (stateful over SSH, stateless over HTTP), flush-only requests,
//     shallow and deepen <n> as git computes them (shallow.go), peeled
//     tags, include-tag, ofs-delta, thin-pack, side-band and side-band-64k
//     in packets of git's sizes, and v2's ls-refs and fetch (v2.go);
//   - packs: walked with links parsed straight from the raw objects, and
//     written by copying stored entries, reusing stored deltas, as git
//     pack-objects does; a server-wide cache of bounded size shares the
//     plans of recent fetches (and the bytes of small packs) between
//     clients, and a big pack streams to each client as it is written;
//   - receive-pack: report-status, delete-refs, delete-only pushes, atomic,
//     no-thin, git's ref-name rules, and a compare-and-swap on every ref so
//     racing pushes never silently overwrite each other.
//
// Every request is counted, and a failed one is logged at WARN (the
// client's doing) or ERROR (gitopsim's) with repo, protocol, service,
// client and cause (Stats, failures.go). The client gets an ERR line, a
// side-band error once the pack has started, or a clean disconnect; never
// a stream cut in the middle of a packet.
//
// Over SSH a command that succeeded keeps its channel open until the
// client has closed its input (bounded at 10 s): go-git closes stdin only
// after writing its request, and a channel closed first made its push or
// fetch fail with a bare EOF although the server had done the work.
//
// A reference backend hands the same requests to the git binaries (git
// upload-pack, git receive-pack, git http-backend), for tests that compare
// the two (differential_test.go drives both with random repositories from
// gitgen) and for a high-fidelity mode.
//
// Identities: users with SSH keys and HTTPS tokens (tokens may expire on the
// simulator's clock), per-repo deploy keys (read-only or read-write),
// public or private repos. The control API (CreateRepo, Commit, SetRef, keys,
// faults, push events) is for scenarios and tests.
package gitserver
