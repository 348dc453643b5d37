// Command api measures ferry's Atlas dialect under concurrent load: GET of
// one live migration, against a bare net/http handler that returns the same
// bytes, in the same run on the same machine. It prints requests/s, p50 and
// p99 latency of both and their ratio.
//
//	go run ./bench/api -c 32 -d 10s
package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"log"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ferrymigrate/ferry"
	"github.com/ferrymigrate/ferry/http/atlas"
	"github.com/ferrymigrate/ferry/http/httpauth"
	"github.com/ferrymigrate/ferry/sqlite"
)

func main() {
	conc := flag.Int("c", 32, "concurrent clients")
	dur := flag.Duration("d", 10*time.Second, "duration of each measurement")
	flag.Parse()
	ctx := context.Background()

	dir, err := os.MkdirTemp("", "ferry-bench-api")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(dir)
	db, err := sqlite.Open(ctx, filepath.Join(dir, "ferry.db"))
	if err != nil {
		log.Fatal(err)
	}
	defer db.Close()
	logger := slog.New(slog.NewTextHandler(io.Discard, nil))
	svc := ferry.NewService(db, ferry.NewRegistry(), logger)
	sys := ferry.WithPrincipal(ctx, ferry.SystemPrincipal)
	org, err := svc.CreateOrg(sys, "bench")
	must(err)
	proj, err := svc.CreateProject(sys, org.ID, "bench")
	must(err)
	key, priv, err := svc.CreateAPIKey(sys, org.ID, "", ferry.RoleOrgOwner, "bench")
	must(err)
	token, _, err := svc.IssueToken(ctx, key.PublicKey, priv)
	must(err)

	// A live migration in incremental sync, stored directly: the bench
	// measures the API path, not an engine.
	now := time.Now().UTC()
	lag := int64(2)
	m := &ferry.Migration{ID: ferry.NewID(), ProjectID: proj.ID, Name: "bench", Engine: ferry.KindMongoDB, Dialect: "atlas",
		Source: ferry.Endpoint{Kind: ferry.KindMongoDB, Addrs: []string{"10.0.0.1:27017"}},
		Target: ferry.Endpoint{Kind: ferry.KindMongoDB, Addrs: []string{"10.0.0.2:27017"}},
		Modes:  ferry.Modes{Full: true, Incremental: true}, State: ferry.StateRunning, CurrentStep: ferry.StepIncremental,
		LagSeconds: &lag, ReadyForCutover: true, Hosts: []string{"agent-1"}, CreatedAt: now, UpdatedAt: now}
	m.InitSteps()
	must(db.CreateMigration(ctx, m))

	ferrySrv := httptest.NewServer(atlas.New(svc, httpauth.New(svc), logger))
	defer ferrySrv.Close()
	url := ferrySrv.URL + "/api/atlas/v2/groups/" + proj.ID + "/liveMigrations/" + m.ID
	body := fetch(url, token)
	fmt.Printf("ferry answers: %s\n", body)

	bare := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/vnd.atlas.2023-01-01+json")
		_, _ = w.Write(body)
	}))
	defer bare.Close()

	fmt.Printf("%d clients, %s each, GOMAXPROCS cores shared by client and server\n", *conc, *dur)
	b := load(bare.URL+"/x", token, *conc, *dur)
	f := load(url, token, *conc, *dur)
	report("bare net/http", b)
	report("ferry atlas GET liveMigration", f)
	fmt.Printf("ratio ferry/bare: throughput %.2f, p99 latency %.2fx\n", f.rps/b.rps, float64(f.p99)/float64(b.p99))
}

func must(err error) {
	if err != nil {
		log.Fatal(err)
	}
}

func fetch(url, token string) []byte {
	req, _ := http.NewRequest("GET", url, nil)
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := http.DefaultClient.Do(req)
	must(err)
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	must(err)
	if resp.StatusCode != 200 {
		log.Fatalf("GET %s: %d %s", url, resp.StatusCode, b)
	}
	return b
}

type result struct {
	n        int64
	errs     int64
	rps      float64
	p50, p99 time.Duration
}

func load(url, token string, conc int, dur time.Duration) result {
	tr := &http.Transport{MaxIdleConnsPerHost: conc, MaxConnsPerHost: conc}
	client := &http.Client{Transport: tr}
	defer tr.CloseIdleConnections()
	var n, errs atomic.Int64
	lat := make([][]time.Duration, conc)
	deadline := time.Now().Add(dur)
	start := time.Now()
	var wg sync.WaitGroup
	for i := 0; i < conc; i++ {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			for time.Now().Before(deadline) {
				req, _ := http.NewRequest("GET", url, nil)
				req.Header.Set("Authorization", "Bearer "+token)
				t0 := time.Now()
				resp, err := client.Do(req)
				if err != nil {
					errs.Add(1)
					continue
				}
				_, _ = io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				if resp.StatusCode != 200 {
					errs.Add(1)
					continue
				}
				lat[i] = append(lat[i], time.Since(t0))
				n.Add(1)
			}
		}(i)
	}
	wg.Wait()
	el := time.Since(start)
	var all []time.Duration
	for _, l := range lat {
		all = append(all, l...)
	}
	sort.Slice(all, func(a, b int) bool { return all[a] < all[b] })
	r := result{n: n.Load(), errs: errs.Load(), rps: float64(n.Load()) / el.Seconds()}
	if len(all) > 0 {
		r.p50 = all[len(all)/2]
		r.p99 = all[len(all)*99/100]
	}
	return r
}

func report(name string, r result) {
	fmt.Printf("%-32s %9.0f req/s  p50 %8s  p99 %8s  (%d ok, %d errors)\n", name, r.rps, r.p50.Round(time.Microsecond), r.p99.Round(time.Microsecond), r.n, r.errs)
}
