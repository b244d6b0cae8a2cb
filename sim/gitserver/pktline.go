package gitserver

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"strconv"
)

// maxPktLen is the largest pkt-line, length prefix included
// (LARGE_PACKET_MAX in git's pkt-line.h); maxPktData is its payload.
const (
	maxPktLen  = 65520
	maxPktData = maxPktLen - 4
)

var errPktFormat = errors.New("malformed pkt-line")

// pktWriter writes pkt-lines.
type pktWriter struct{ w io.Writer }

func (p pktWriter) line(s string) error {
	if len(s)+4 > maxPktLen {
		return fmt.Errorf("pkt-line of %d bytes is too long", len(s))
	}
	_, err := fmt.Fprintf(p.w, "%04x%s", len(s)+4, s)
	return err
}

func (p pktWriter) linef(format string, args ...any) error {
	return p.line(fmt.Sprintf(format, args...))
}

func (p pktWriter) flush() error {
	_, err := io.WriteString(p.w, "0000")
	return err
}

func (p pktWriter) delim() error {
	_, err := io.WriteString(p.w, "0001")
	return err
}

// pktReader reads pkt-lines from a buffered stream; the same buffer then
// holds whatever follows them (a pack).
type pktReader struct{ r *bufio.Reader }

func newPktReader(r io.Reader) *pktReader {
	if br, ok := r.(*bufio.Reader); ok {
		return &pktReader{r: br}
	}
	return &pktReader{r: bufio.NewReaderSize(r, 64<<10)}
}

// Kinds of packet: data, or the special ones of protocol v2.
const (
	pktData        = iota
	pktFlush       // 0000
	pktDelim       // 0001, between the sections of a v2 message
	pktResponseEnd // 0002, the end of a stateless v2 response
)

// next returns the next payload, or flush=true for a flush-pkt ("0000").
// A delimiter or response-end packet (v2) is a format error here.
func (p *pktReader) next() (payload []byte, flush bool, err error) {
	b, kind, err := p.packet()
	if err == nil && kind > pktFlush {
		return nil, false, fmt.Errorf("%w: unexpected special packet %04d", errPktFormat, kind-pktFlush)
	}
	return b, kind == pktFlush, err
}

// packet returns the next packet and its kind.
func (p *pktReader) packet() ([]byte, int, error) {
	var hdr [4]byte
	if _, err := io.ReadFull(p.r, hdr[:]); err != nil {
		return nil, 0, err
	}
	n, err := strconv.ParseUint(string(hdr[:]), 16, 16)
	if err != nil {
		return nil, 0, fmt.Errorf("%w: bad length %q", errPktFormat, hdr[:])
	}
	switch {
	case n < 3:
		return nil, pktFlush + int(n), nil
	case n < 4 || n > maxPktLen:
		return nil, 0, fmt.Errorf("%w: length %d", errPktFormat, n)
	}
	buf := make([]byte, n-4)
	if _, err := io.ReadFull(p.r, buf); err != nil {
		return nil, 0, fmt.Errorf("%w: %w", errPktFormat, err)
	}
	return buf, pktData, nil
}

// trimLF drops one trailing newline, which pkt-line payloads may carry.
func trimLF(b []byte) string {
	if n := len(b); n > 0 && b[n-1] == '\n' {
		b = b[:n-1]
	}
	return string(b)
}
