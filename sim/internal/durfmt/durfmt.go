// Package durfmt prints durations the way gitopsim's timelines and
// messages do.
package durfmt

import (
	"strings"
	"time"
)

// Short prints d rounded to unit without zero tails: 15m, 1h45m, 31s,
// 1.25s (Go's form would be 15m0s and 1h45m0s).
func Short(d, unit time.Duration) string {
	s := d.Round(unit).String()
	if strings.HasSuffix(s, "m0s") {
		s = strings.TrimSuffix(s, "0s")
	}
	if strings.HasSuffix(s, "h0m") {
		s = strings.TrimSuffix(s, "0m")
	}
	return s
}
