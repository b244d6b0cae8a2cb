// Package soak holds gitopsim's soak and fault suite (`make soak`): hours
// of virtual time on one simulator with a state dir, random user work
// (pushes, configurations created, re-applied and deleted) and random
// faults (agent links down, the git server down or slow, ARM answering
// 503, gitopsim restarted on its state dir, the kube-apiserver
// restarted), with invariants checked every half hour once the faults
// end: every configuration converges to what its repo says, nothing
// acknowledged is lost, goroutines, file descriptors and memory stay
// flat, and no secret reaches a log. It is seeded: the seed is printed,
// and GITOPSIM_SOAK_SEED repeats a run.
package soak
