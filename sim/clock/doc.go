// Package clock is the only door to time in gitopsim.
//
// Every time-driven part of the simulator (agent polls and heartbeats, the
// operator's git poll, the 15-minute Offline rule, the 48-hour purge of
// protected settings, token expiry) asks a Clock instead of the time package,
// so the same code runs in three ways:
//
//   - Real: wall time, for `gitopsim up`.
//   - Scaled(k): k virtual seconds per real second, for demos.
//   - Virtual: a discrete-event scheduler. Nothing fires until Advance is
//     called; Advance(d) runs every timer and periodic task that falls due
//     within d, in time order, each to completion, before it moves on. Ties
//     are broken by scheduling order, so the same schedule always runs in the
//     same order and a 48-hour scenario costs only the work done in it.
//
// Work scheduled with AfterFunc or Every runs synchronously inside Advance on
// a Virtual clock, and on its own goroutine on Real and Scaled clocks.
// Code that must be deterministic under Virtual should schedule callbacks
// rather than block in Sleep, because a goroutine woken by Advance races with
// whatever runs next.
//
// The Kubernetes API server and etcd always run on wall time; this package is
// for gitopsim's own components only.
package clock
