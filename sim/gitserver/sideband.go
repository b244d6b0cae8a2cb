package gitserver

import "io"

// Side-band channels (git's sideband.h).
const (
	bandData     = 1
	bandProgress = 2
	bandError    = 3
)

// Packet limits, from git's pkt-line.h: a side-band-64k packet is at most
// LARGE_PACKET_MAX bytes and a side-band one DEFAULT_PACKET_MAX, length
// prefix and band byte included.
const (
	largePacketMax   = maxPktLen // LARGE_PACKET_MAX
	defaultPacketMax = 1000      // DEFAULT_PACKET_MAX
)

// sidebandWriter frames a stream into side-band packets. Data written to
// it goes out on band 1 in packets as full as the limit allows (git's
// send_sideband in sideband.c caps the payload at packet_max-5); progress
// and a fatal error go on bands 2 and 3. It buffers one packet, so Flush
// must be called before the closing flush-pkt.
type sidebandWriter struct {
	w   io.Writer
	max int    // payload bytes per packet
	buf []byte // "llll" + band + up to max bytes
}

// newSidebandWriter frames for side-band-64k when large, else side-band.
func newSidebandWriter(w io.Writer, large bool) *sidebandWriter {
	packetMax := defaultPacketMax
	if large {
		packetMax = largePacketMax
	}
	max := packetMax - 5
	return &sidebandWriter{w: w, max: max, buf: make([]byte, 5, 5+max)}
}

// Write sends p on band 1.
func (s *sidebandWriter) Write(p []byte) (int, error) {
	n := 0
	for len(p) > 0 {
		room := 5 + s.max - len(s.buf)
		k := min(room, len(p))
		s.buf = append(s.buf, p[:k]...)
		p, n = p[k:], n+k
		if len(s.buf) == 5+s.max {
			if err := s.Flush(); err != nil {
				return n, err
			}
		}
	}
	return n, nil
}

// Flush sends the buffered band-1 data, if any.
func (s *sidebandWriter) Flush() error {
	if len(s.buf) == 5 {
		return nil
	}
	err := s.packet(bandData, s.buf)
	s.buf = s.buf[:5]
	return err
}

// packet writes b (5 header bytes, then payload) as one packet on band.
func (s *sidebandWriter) packet(band byte, b []byte) error {
	const hex = "0123456789abcdef"
	n := len(b)
	b[0], b[1], b[2], b[3], b[4] = hex[n>>12&15], hex[n>>8&15], hex[n>>4&15], hex[n&15], band
	_, err := s.w.Write(b)
	return err
}

// message sends text on band (progress or error), split to fit.
func (s *sidebandWriter) message(band byte, text string) error {
	if err := s.Flush(); err != nil {
		return err
	}
	for len(text) > 0 {
		k := min(s.max, len(text))
		b := make([]byte, 5, 5+k)
		b = append(b, text[:k]...)
		if err := s.packet(band, b); err != nil {
			return err
		}
		text = text[k:]
	}
	return nil
}

// Progress sends a progress message (band 2), which git prints as
// "remote: ...".
func (s *sidebandWriter) Progress(text string) error { return s.message(bandProgress, text) }

// Fatal sends an error (band 3): git prints "remote: error: ..." and
// aborts the fetch.
func (s *sidebandWriter) Fatal(text string) error { return s.message(bandError, text) }
