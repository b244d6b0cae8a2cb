package agent

import (
	"bytes"
	"crypto/hmac"
	"crypto/sha1"
	"encoding/base64"
	"errors"
	"net"
	"strings"

	"golang.org/x/crypto/ssh"
	"golang.org/x/crypto/ssh/knownhosts"
)

// Errors of the host key check, worded like OpenSSH's knownhosts package.
var (
	errHostKeyUnknown  = errors.New("knownhosts: key is unknown")
	errHostKeyMismatch = errors.New("knownhosts: key mismatch")
)

// knownHostsCallback checks server keys against known_hosts content (plain
// or hashed host patterns, with or without a [host]:port), without files.
func knownHostsCallback(content string) ssh.HostKeyCallback {
	type entry struct {
		hosts []string
		key   ssh.PublicKey
	}
	var entries []entry
	rest := []byte(content)
	for len(rest) > 0 {
		marker, hosts, key, _, r, err := ssh.ParseKnownHosts(rest)
		if err != nil {
			break // the ARM validation already refused malformed content
		}
		rest = r
		if marker == "" {
			entries = append(entries, entry{hosts, key})
		}
	}
	return func(hostname string, remote net.Addr, key ssh.PublicKey) error {
		candidates := []string{knownhosts.Normalize(hostname)}
		if remote != nil {
			candidates = append(candidates, knownhosts.Normalize(remote.String()))
		}
		known := false
		for _, e := range entries {
			if !matchesAny(e.hosts, candidates) {
				continue
			}
			known = true
			if e.key.Type() == key.Type() && bytes.Equal(e.key.Marshal(), key.Marshal()) {
				return nil
			}
		}
		if known {
			return errHostKeyMismatch
		}
		return errHostKeyUnknown
	}
}

func matchesAny(patterns, hosts []string) bool {
	for _, p := range patterns {
		for _, h := range hosts {
			if hostMatches(p, h) {
				return true
			}
		}
	}
	return false
}

func hostMatches(pattern, host string) bool {
	if salted, ok := strings.CutPrefix(pattern, "|1|"); ok {
		saltB64, hashB64, ok := strings.Cut(salted, "|")
		salt, err1 := base64.StdEncoding.DecodeString(saltB64)
		want, err2 := base64.StdEncoding.DecodeString(hashB64)
		if !ok || err1 != nil || err2 != nil {
			return false
		}
		m := hmac.New(sha1.New, salt)
		m.Write([]byte(host))
		return hmac.Equal(m.Sum(nil), want)
	}
	return pattern == host
}
