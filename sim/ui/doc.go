// Package ui is gitopsim's web view: a page that shows every connected
// cluster, a timeline of what happened on simulated time with the delays
// measured on it, and controls for a presenter (pause, scale and jump the
// clock, cut a cluster's links, take git down, push a change), each also a
// JSON endpoint (API.md).
//
// A Recorder, attached to a simulator before it starts, turns what the
// simulator's parts report into the timeline; a Server serves it live; and
// ReportPage renders it as one self-contained HTML file for a scenario
// run. The page's script and style are embedded (assets/), with no
// library and nothing fetched at run time.
package ui
