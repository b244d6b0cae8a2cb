package gitserver

import "strings"

// validRefname is git's check_refname_format (refs.c) for what a push may
// update: receive-pack takes only refs/..., checks the rest with the
// one-level exception for deletes (builtin/receive-pack.c, update), and
// answers "funny refname" otherwise. A component may not be empty, start
// with '.', end with ".lock", or hold "..", "@{", a control character,
// space, ':', '?', '[', '\\', '^', '~' or '*'; the name may not be "@" or
// end with '.'.
func validRefname(name string, allowOneLevel bool) bool {
	rest, ok := strings.CutPrefix(name, "refs/")
	if !ok || rest == "@" {
		return false
	}
	parts := strings.Split(rest, "/")
	if len(parts) < 2 && !allowOneLevel {
		return false
	}
	for _, c := range parts {
		if c == "" || c[0] == '.' || strings.HasSuffix(c, ".lock") || strings.Contains(c, "..") || strings.Contains(c, "@{") {
			return false
		}
		for i := 0; i < len(c); i++ {
			switch b := c[i]; {
			case b < 0x20, b == 0x7f:
				return false
			case strings.IndexByte(" :?[\\^~*", b) >= 0:
				return false
			}
		}
	}
	return !strings.HasSuffix(rest, ".")
}

// Limits a filesystem puts on loose refs (NAME_MAX, PATH_MAX), which git's
// own receive-pack meets as a failure to lock the ref. They also keep
// every ref short enough for one line of the advertisement.
const (
	maxRefComponent = 255
	maxRefname      = 4096
)

// refnameTooLong is whether a loose ref of this name could not be stored.
func refnameTooLong(name string) bool {
	if len(name) > maxRefname {
		return true
	}
	for _, c := range strings.Split(name, "/") {
		if len(c) > maxRefComponent {
			return true
		}
	}
	return false
}
