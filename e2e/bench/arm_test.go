package bench

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore/policy"

	"github.com/gitopsim/gitopsim/sim"
	"github.com/gitopsim/gitopsim/sim/arm"
	"github.com/gitopsim/gitopsim/sim/azsdk"
)

// concurrency is how many requests are in flight at once, over one
// HTTP/2 connection as the SDK would use.
const concurrency = 16

// BenchmarkARMGet and BenchmarkARMPut load the ARM provider over loopback
// with real TLS, and in the same run a bare Go HTTPS server answering a
// fixed body of the same size: the floor that TLS, HTTP/2 and this machine
// set. Reported: req/s and p50/p99 latency of each, and arm/floor (the
// share of the floor's throughput the ARM provider reaches).
func BenchmarkARMGet(b *testing.B) { benchARM(b, http.MethodGet) }

// BenchmarkARMPut: see BenchmarkARMGet.
func BenchmarkARMPut(b *testing.B) { benchARM(b, http.MethodPut) }

func benchARM(b *testing.B, method string) {
	srv, az, token := startARM(b)
	base := srv.URL() + "/subscriptions/" + az.SubscriptionID + "/resourceGroups/bench/providers/Microsoft.Kubernetes/connectedClusters/arc/providers/Microsoft.KubernetesConfiguration/sourceControlConfigurations/"
	body := `{"properties":{"repositoryUrl":"https://127.0.0.1/team/app.git","operatorNamespace":"team-a","operatorInstanceName":"team-a","operatorScope":"namespace","operatorType":"Flux"}}`
	do := func(c *http.Client, url string, i int) (int, int) {
		target := url
		var rd io.Reader
		if method == http.MethodPut {
			target = fmt.Sprintf("%scfg-%d?api-version=2023-05-01", url, i%500)
			rd = strings.NewReader(body)
		}
		req, _ := http.NewRequest(method, target, rd)
		req.Header.Set("Authorization", "Bearer "+token)
		req.Header.Set("Content-Type", "application/json")
		resp, err := c.Do(req)
		if err != nil {
			b.Fatal(err)
		}
		n, _ := io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		return resp.StatusCode, int(n)
	}
	// cfg-0 exists for GETs; PUTs replace it and 499 others in turn.
	req, _ := http.NewRequest(http.MethodPut, base+"cfg-0?api-version=2023-05-01", strings.NewReader(body))
	req.Header.Set("Authorization", "Bearer "+token)
	req.Header.Set("Content-Type", "application/json")
	if resp, err := az.HTTPClient.Do(req); err != nil || resp.StatusCode != http.StatusCreated {
		b.Fatalf("set-up PUT: %v %v", err, resp)
	}
	armURL := base
	if method == http.MethodGet {
		armURL = base + "cfg-0?api-version=2023-05-01"
	}
	status, size := do(az.HTTPClient, armURL, 0)
	if status >= 300 {
		b.Fatalf("warm-up: %d", status)
	}
	floor, floorClient := startFloor(b, size)

	b.ResetTimer()
	armRate, armLat := load(b, func(i int) int { s, _ := do(az.HTTPClient, armURL, i); return s })
	floorRate, floorLat := load(b, func(i int) int { s, _ := do(floorClient, floor, i); return s })
	b.StopTimer()
	b.ReportMetric(0, "ns/op")
	b.ReportMetric(armRate, "arm-req/s")
	b.ReportMetric(pct(armLat, 50), "arm-p50-ms")
	b.ReportMetric(pct(armLat, 99), "arm-p99-ms")
	b.ReportMetric(floorRate, "floor-req/s")
	b.ReportMetric(pct(floorLat, 99), "floor-p99-ms")
	b.ReportMetric(armRate/floorRate, "arm/floor")
}

// load runs b.N requests from concurrency workers and returns the rate and
// every latency in milliseconds.
func load(b *testing.B, req func(i int) int) (float64, []float64) {
	lat := make([]float64, b.N)
	var wg sync.WaitGroup
	next := make(chan int, concurrency)
	start := time.Now()
	for range concurrency {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range next {
				t0 := time.Now()
				if s := req(i); s >= 300 {
					b.Errorf("status %d", s)
				}
				lat[i] = float64(time.Since(t0).Microseconds()) / 1000
			}
		}()
	}
	for i := range b.N {
		next <- i
	}
	close(next)
	wg.Wait()
	return float64(b.N) / time.Since(start).Seconds(), lat
}

func pct(v []float64, p int) float64 {
	s := slices.Clone(v)
	slices.Sort(s)
	return s[min(len(s)-1, len(s)*p/100)]
}

func startARM(b *testing.B) (*arm.Server, *azsdk.Clients, string) {
	srv, err := arm.New(arm.Options{Workdir: b.TempDir()}) // request log to its file, as in `gitopsim up`
	if err != nil {
		b.Fatal(err)
	}
	if err := srv.Start(context.Background()); err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { srv.Stop(context.Background()) })
	az, err := azsdk.New(sim.ARMEndpoint{URL: srv.URL(), CAFile: srv.CAFile(), TenantID: srv.TenantID(), SubscriptionID: srv.SubscriptionID(),
		AuthorityHost: srv.AuthorityHost(), ClientID: srv.ClientID(), ClientSecret: srv.ClientSecret()})
	if err != nil {
		b.Fatal(err)
	}
	// One HTTP/2 connection carries all streams, as with the SDK.
	az.HTTPClient.Transport.(*http.Transport).ForceAttemptHTTP2 = true
	tok, err := az.Credential.GetToken(context.Background(), policy.TokenRequestOptions{Scopes: []string{azsdk.Audience + "/.default"}})
	if err != nil {
		b.Fatal(err)
	}
	ctx := context.Background()
	if _, err := az.Onboard(ctx, "bench", "arc", "eastus"); err != nil {
		b.Fatal(err)
	}
	return srv, az, tok.Token
}

// startFloor serves a fixed body of size bytes over TLS and HTTP/2:
// everything but the ARM provider's own work. It returns the URL and a
// client that trusts it.
func startFloor(b *testing.B, size int) (string, *http.Client) {
	payload := []byte(strings.Repeat("x", size))
	ts := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write(payload)
	}))
	ts.EnableHTTP2 = true
	ts.StartTLS()
	b.Cleanup(ts.Close)
	return ts.URL + "/", ts.Client()
}
