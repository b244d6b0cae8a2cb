package pki

import (
	"bytes"
	"crypto/x509"
	"os"
	"path/filepath"
	"testing"
	"time"
)

func TestLoadOrCreateCAReusesTheCA(t *testing.T) {
	dir := t.TempDir()
	cert, key := filepath.Join(dir, "ca.crt"), filepath.Join(dir, "ca.key")
	now := time.Now()
	first, err := LoadOrCreateCA(cert, key, "test", now)
	if err != nil {
		t.Fatal(err)
	}
	second, err := LoadOrCreateCA(cert, key, "test", now.Add(time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(first.CertPEM, second.CertPEM) {
		t.Error("a second load made a new CA: clients that trusted the first would break")
	}
	if fi, _ := os.Stat(key); fi.Mode().Perm() != 0o600 {
		t.Errorf("CA key mode %v, want 0600", fi.Mode().Perm())
	}
	// A server certificate from it verifies for 127.0.0.1.
	leaf, err := second.IssueServer("srv", []string{"127.0.0.1", "localhost"}, now)
	if err != nil {
		t.Fatal(err)
	}
	tc, err := leaf.TLSCertificate()
	if err != nil {
		t.Fatal(err)
	}
	parsed, _ := x509.ParseCertificate(tc.Certificate[0])
	pool := x509.NewCertPool()
	pool.AddCert(first.Cert)
	if _, err := parsed.Verify(x509.VerifyOptions{Roots: pool, DNSName: "127.0.0.1"}); err != nil {
		t.Errorf("server certificate does not verify against the CA: %v", err)
	}

	// Half a CA is refused rather than silently replaced.
	os.Remove(cert)
	if _, err := LoadOrCreateCA(cert, key, "test", now); err == nil {
		t.Error("a lone key was accepted")
	}
}
