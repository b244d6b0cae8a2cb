// Package cli holds what every gitopsim verb shares: output streams,
// verbosity and the logger built from them, and the usage error type.
package cli

import (
	"io"
	"log/slog"
)

// Streams are the command's output streams and the global output flags.
// Results go to Out, progress and logs to Err.
type Streams struct {
	Out, Err  io.Writer
	Verbosity int
	Quiet     bool
}

// Logger returns a logger on Err at the level the flags ask for: info by
// default, debug with -v, warnings only with -q.
func (s *Streams) Logger() *slog.Logger {
	level := slog.LevelInfo
	switch {
	case s.Quiet:
		level = slog.LevelWarn
	case s.Verbosity > 0:
		level = slog.LevelDebug
	}
	opts := &slog.HandlerOptions{Level: level}
	if s.Verbosity == 0 {
		// Progress for people: the time of day adds nothing at this level.
		opts.ReplaceAttr = func(groups []string, a slog.Attr) slog.Attr {
			if len(groups) == 0 && a.Key == slog.TimeKey {
				return slog.Attr{}
			}
			return a
		}
	}
	return slog.New(slog.NewTextHandler(s.Err, opts))
}

// UsageError is a bad flag or argument: the caller prints a pointer to
// --help and exits 2.
type UsageError struct {
	Command string
	Err     error
}

func (e *UsageError) Error() string { return e.Err.Error() }
func (e *UsageError) Unwrap() error { return e.Err }
