package netfault

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"strconv"
	"sync"
)

// SOCKS5 (RFC 1928), the subset clients use: no authentication, CONNECT.
const (
	socksVersion    = 5
	socksNoAuth     = 0
	socksNoMethods  = 0xff
	socksConnect    = 1
	socksIPv4       = 1
	socksDomain     = 3
	socksIPv6       = 4
	socksSucceeded  = 0
	socksNetUnreach = 3
	socksHostUnrch  = 4
	socksCmdUnsupp  = 7
	socksAddrUnsupp = 8
)

// Start runs the link's SOCKS5 proxy on 127.0.0.1; ProxyURL is valid once
// it returns. Links used only through DialContext need not start.
func (l *Link) Start(ctx context.Context) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return fmt.Errorf("netfault %s: proxy: %w", l.name, err)
	}
	l.mu.Lock()
	l.proxy, l.proxyURL = ln, "socks5://"+ln.Addr().String()
	l.mu.Unlock()
	l.wg.Add(1)
	go func() {
		defer l.wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			l.wg.Add(1)
			go func() {
				defer l.wg.Done()
				l.serveSOCKS(c)
			}()
		}
	}()
	return nil
}

// Stop closes the proxy and every connection through the link.
func (l *Link) Stop(context.Context) error {
	l.mu.Lock()
	ln := l.proxy
	l.proxy = nil
	var open []*conn
	for c := range l.conns {
		open = append(open, c)
	}
	l.mu.Unlock()
	if ln != nil {
		ln.Close()
	}
	for _, c := range open {
		c.Close()
	}
	l.wg.Wait()
	return nil
}

// ProxyURL is the SOCKS5 proxy (socks5://127.0.0.1:port), valid after Start.
func (l *Link) ProxyURL() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.proxyURL
}

func (l *Link) serveSOCKS(client net.Conn) {
	defer client.Close()
	target, err := readSOCKSRequest(client)
	if err != nil {
		l.log.Debug("socks request", "err", err)
		return
	}
	up, err := l.DialContext(context.Background(), "tcp", target)
	if err != nil {
		code := byte(socksHostUnrch)
		if errors.Is(err, ErrOffline) {
			code = socksNetUnreach
		}
		_, _ = client.Write([]byte{socksVersion, code, 0, socksIPv4, 0, 0, 0, 0, 0, 0})
		return
	}
	defer up.Close()
	if _, err := client.Write([]byte{socksVersion, socksSucceeded, 0, socksIPv4, 0, 0, 0, 0, 0, 0}); err != nil {
		return
	}
	var once sync.Once
	done := make(chan struct{})
	pipe := func(dst, src net.Conn) {
		_, _ = io.Copy(dst, src)
		once.Do(func() { close(done) })
	}
	go pipe(up, client)
	go pipe(client, up)
	<-done
}

// readSOCKSRequest negotiates no-auth and reads a CONNECT target.
func readSOCKSRequest(c net.Conn) (string, error) {
	var hdr [2]byte
	if _, err := io.ReadFull(c, hdr[:]); err != nil {
		return "", err
	}
	if hdr[0] != socksVersion {
		return "", fmt.Errorf("socks version %d", hdr[0])
	}
	methods := make([]byte, hdr[1])
	if _, err := io.ReadFull(c, methods); err != nil {
		return "", err
	}
	ok := false
	for _, m := range methods {
		ok = ok || m == socksNoAuth
	}
	if !ok {
		_, _ = c.Write([]byte{socksVersion, socksNoMethods})
		return "", errors.New("client offers no supported authentication")
	}
	if _, err := c.Write([]byte{socksVersion, socksNoAuth}); err != nil {
		return "", err
	}
	var req [4]byte
	if _, err := io.ReadFull(c, req[:]); err != nil {
		return "", err
	}
	reply := func(code byte) { _, _ = c.Write([]byte{socksVersion, code, 0, socksIPv4, 0, 0, 0, 0, 0, 0}) }
	if req[0] != socksVersion || req[1] != socksConnect {
		reply(socksCmdUnsupp)
		return "", fmt.Errorf("socks command %d not supported", req[1])
	}
	var host string
	switch req[3] {
	case socksIPv4, socksIPv6:
		n := net.IPv4len
		if req[3] == socksIPv6 {
			n = net.IPv6len
		}
		ip := make([]byte, n)
		if _, err := io.ReadFull(c, ip); err != nil {
			return "", err
		}
		host = net.IP(ip).String()
	case socksDomain:
		var n [1]byte
		if _, err := io.ReadFull(c, n[:]); err != nil {
			return "", err
		}
		name := make([]byte, n[0])
		if _, err := io.ReadFull(c, name); err != nil {
			return "", err
		}
		host = string(name)
	default:
		reply(socksAddrUnsupp)
		return "", fmt.Errorf("socks address type %d not supported", req[3])
	}
	var port [2]byte
	if _, err := io.ReadFull(c, port[:]); err != nil {
		return "", err
	}
	return net.JoinHostPort(host, strconv.Itoa(int(binary.BigEndian.Uint16(port[:])))), nil
}
