package cluster

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"time"
)

// etcd's gRPC gateway (JSON over HTTP on the client URL, /v3/...) is
// enough for the two things a fleet asks of an etcd it did not start, so
// gitopsim needs no etcd client library: see etcd's
// Documentation/dev-guide/api_grpc_gateway.md.

// etcdCallTimeout bounds one call to the fleet's etcd.
const etcdCallTimeout = 30 * time.Second

// etcdHealthy asks etcd's /health; an etcd without quorum answers
// {"health":"false"}.
func etcdHealthy(ctx context.Context, u *url.URL) error {
	var out struct {
		Health string `json:"health"`
		Reason string `json:"reason"`
	}
	if err := etcdCall(ctx, http.MethodGet, u.JoinPath("health"), nil, &out); err != nil {
		return err
	}
	if out.Health != "true" {
		return fmt.Errorf("unhealthy: %q", out.Reason)
	}
	return nil
}

// etcdDeletePrefix deletes every key that starts with prefix.
func etcdDeletePrefix(ctx context.Context, u *url.URL, prefix string) error {
	if prefix == "" {
		return fmt.Errorf("refusing to delete every key")
	}
	req := map[string]string{
		"key":       base64.StdEncoding.EncodeToString([]byte(prefix)),
		"range_end": base64.StdEncoding.EncodeToString(prefixEnd([]byte(prefix))),
	}
	return etcdCall(ctx, http.MethodPost, u.JoinPath("v3", "kv", "deleterange"), req, nil)
}

// prefixEnd is the smallest key after every key with prefix p (etcd's
// clientv3.GetPrefixRangeEnd).
func prefixEnd(p []byte) []byte {
	end := bytes.Clone(p)
	for i := len(end) - 1; i >= 0; i-- {
		if end[i] < 0xff {
			end[i]++
			return end[:i+1]
		}
	}
	// All 0xff: to the end of the keyspace.
	return []byte{0}
}

func etcdCall(ctx context.Context, method string, u *url.URL, in, out any) error {
	ctx, cancel := context.WithTimeout(ctx, etcdCallTimeout)
	defer cancel()
	var body io.Reader
	if in != nil {
		b, err := json.Marshal(in)
		if err != nil {
			return err
		}
		body = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, u.String(), body)
	if err != nil {
		return err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return fmt.Errorf("%s %s: %w", method, u.Path, err)
	}
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("%s %s: %s: %s", method, u.Path, resp.Status, bytes.TrimSpace(b))
	}
	if out != nil {
		if err := json.Unmarshal(b, out); err != nil {
			return fmt.Errorf("%s %s: %w", method, u.Path, err)
		}
	}
	return nil
}
