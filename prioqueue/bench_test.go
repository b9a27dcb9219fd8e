package prioqueue_test

import (
	"context"
	"fmt"
	"io"
	"iter"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/riverqueue/river"
	"github.com/riverqueue/river/riverdriver/riverpgxv5"

	prio "github.com/priosdk/prio-go"
	"github.com/priosdk/prio-go/batch"
	"github.com/priosdk/prio-go/internal/pgtest"
	"github.com/priosdk/prio-go/prioqueue"
	"github.com/priosdk/prio-go/priotest"
)

// benchRows is the size of one booking run (BENCH_ROWS overrides it);
// benchPerWorker the Create calls one queue worker (one River client, as on
// one machine) makes at once.
var benchRows = 2000

const benchPerWorker = 8

func init() {
	if n, err := strconv.Atoi(os.Getenv("BENCH_ROWS")); err == nil && n > 0 {
		benchRows = n
	}
}

// BenchmarkThroughput books benchRows new orders per run on one in-process
// sandbox: with the SQLite batch runner at 32 rows in flight, and through
// the queue with 1, 2 and 4 workers of 8 Create calls each (4 workers: the
// same 32 in flight), each worker holding 16 jobs (prioqueue.QueueConfig)
// so that the next are fetched while 8 are booked; once more with 4 workers
// holding only the 8 they book, to show what fetching ahead gains. Both databases keep their durable settings (SQLite
// synchronous=FULL, PostgreSQL fsync on).
//
// Each iteration is one round of the four runs, in an order that rotates
// from round to round, so that a drift in the machine's speed during the
// benchmark (and the sandbox's growing store) falls on all four alike. It
// reports the median rows/s of each and the median over rounds of the
// round's ratio queue-4x8 ÷ sqlite-32 (at least 1: the queue is not
// slower).
//
//	go test -run '^$' -bench Throughput -benchtime 5x ./prioqueue
func BenchmarkThroughput(b *testing.B) {
	srv, err := pgtest.Start(b.Context(), pgtest.Options{Durable: os.Getenv("BENCH_PG_FAST") == ""})
	if err != nil {
		b.Skip(err)
	}
	b.Cleanup(func() { _ = srv.Close() })
	sandbox := priotest.NewServer(b, priotest.WithRequestLimit(0))
	run := 0
	next := func() string { run++; return fmt.Sprintf("B%d", run) }

	runs := []benchRun{
		{"sqlite-32", func() time.Duration { return benchSQLite(b, sandbox, next()) }},
	}
	queue := func(workers int, ahead bool) func() time.Duration {
		return func() time.Duration {
			url, err := srv.CreateDatabase(b.Context())
			if err != nil {
				b.Fatal(err)
			}
			return benchQueue(b, url, sandbox, next(), workers, ahead)
		}
	}
	for _, workers := range []int{1, 2, 4} {
		runs = append(runs, benchRun{fmt.Sprintf("queue-%dx%d", workers, benchPerWorker), queue(workers, true)})
	}
	runs = append(runs, benchRun{fmt.Sprintf("queue-4x%d-no-fetch-ahead", benchPerWorker), queue(4, false)})
	rates := make(map[string][]float64)
	var ratios []float64
	for round := range b.N {
		got := make(map[string]float64)
		for i := range runs {
			r := runs[(i+round)%len(runs)]
			got[r.name] = float64(benchRows) / r.run().Seconds()
			rates[r.name] = append(rates[r.name], got[r.name])
		}
		ratios = append(ratios, got["queue-4x8"]/got["sqlite-32"])
		b.Logf("round %d: %s", round+1, formatRates(runs, got))
	}
	for _, r := range runs {
		b.ReportMetric(median(rates[r.name]), r.name+"-rows/s")
	}
	b.ReportMetric(median(ratios), "queue-4x8/sqlite-32")
}

// benchRun is one of the runs a round makes: it returns the run's time.
type benchRun struct {
	name string
	run  func() time.Duration
}

func formatRates(runs []benchRun, got map[string]float64) string {
	var s string
	for _, r := range runs {
		s += fmt.Sprintf(" %s %.0f rows/s", r.name, got[r.name])
	}
	return s
}

func median(v []float64) float64 {
	s := slices.Clone(v)
	slices.Sort(s)
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}

// benchSQLite books benchRows orders with the SQLite batch runner at 32 in
// flight, on a new journal, and returns the runner's time.
func benchSQLite(b *testing.B, sandbox *priotest.Server, prefix string) time.Duration {
	j, err := batch.OpenSQLite(filepath.Join(b.TempDir(), "bench.journal"))
	if err != nil {
		b.Fatal(err)
	}
	defer func() { _ = j.Close() }()
	r := &batch.Runner{Booker: batch.ClientBooker(benchClient(b, sandbox)), Journal: j, Concurrency: 32}
	start := time.Now()
	sum, err := r.Run(b.Context(), benchInput(prefix))
	el := time.Since(start)
	if err != nil || sum.Booked != benchRows {
		b.Fatalf("%v %s", err, sum)
	}
	return el
}

func benchClient(b *testing.B, sandbox *priotest.Server) *prio.Client {
	p := prio.DefaultRetryPolicy()
	p.RequestsPerMinute = 0
	p.ProcessingHorizon = testHorizon
	c, err := prio.NewClient(prio.WithServer(sandbox), prio.WithRetryPolicy(p), prio.WithMaxConcurrency(64))
	if err != nil {
		b.Fatal(err)
	}
	return c
}

func benchInput(prefix string) iter.Seq2[batch.Row, error] {
	return func(yield func(batch.Row, error) bool) {
		for i := range benchRows {
			if !yield(batch.Row{Line: i + 1, Request: request(fmt.Sprintf("%s-%06d", prefix, i))}, nil) {
				return
			}
		}
	}
}

// benchQueue starts workers River clients, each with its own pool and
// prio client, as on separate machines, then enqueues benchRows jobs; it
// returns the time from the first insert to the last job recorded
// completed. The workers are running before the clock starts, as a
// queue's workers are before bookings arrive, just as the runner's journal
// is opened before its clock starts.
func benchQueue(b *testing.B, url string, sandbox *priotest.Server, prefix string, workers int, ahead bool) time.Duration {
	ctx := b.Context()
	admin := benchAdmin(b, url)
	defer admin.Close()
	queue := river.QueueConfig{MaxWorkers: benchPerWorker}
	if ahead {
		queue = prioqueue.QueueConfig(benchPerWorker)
	}
	clients, stop := benchClients(b, url, workers, queue, func(pool *pgxpool.Pool) (*river.Workers, time.Duration) {
		cfg := prioqueue.Config{Client: benchClient(b, sandbox), DB: pool}
		if ahead {
			cfg.Concurrency = benchPerWorker
		}
		w, err := prioqueue.NewWorker(cfg)
		if err != nil {
			b.Fatal(err)
		}
		ws := river.NewWorkers()
		river.AddWorker(ws, w)
		return ws, w.Timeout(nil)
	})
	defer stop()
	startClients(b, clients)
	start := time.Now()
	params := make([]river.InsertManyParams, 0, 500)
	insert := func() {
		if _, err := clients[0].InsertMany(ctx, params); err != nil {
			b.Fatal(err)
		}
		params = params[:0]
	}
	for row := range benchInput(prefix) {
		a, err := prioqueue.NewCreateOrderArgs(priotest.DefaultDistributorID, row.Request)
		if err != nil {
			b.Fatal(err)
		}
		params = append(params, river.InsertManyParams{Args: a})
		if len(params) == cap(params) {
			insert()
		}
	}
	if len(params) > 0 {
		insert()
	}
	waitCompleted(b, admin, start)
	return time.Since(start)
}

// benchAdmin opens a pool on url with River's tables migrated.
func benchAdmin(b *testing.B, url string) *pgxpool.Pool {
	admin, err := pgxpool.New(b.Context(), url)
	if err != nil {
		b.Fatal(err)
	}
	if err := prioqueue.Migrate(b.Context(), admin); err != nil {
		admin.Close()
		b.Fatal(err)
	}
	return admin
}

// benchClients makes n River clients on url (not started), each with a
// pool of its own sized for queue and the workers work makes on it; a
// positive job timeout is set with a rescue a minute after it. stop stops
// the clients and closes their pools.
func benchClients(b *testing.B, url string, n int, queue river.QueueConfig, work func(*pgxpool.Pool) (*river.Workers, time.Duration)) (clients []*river.Client[pgx.Tx], stop func()) {
	var pools []*pgxpool.Pool
	stop = func() {
		for _, rc := range clients {
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			_ = rc.Stop(ctx)
			cancel()
		}
		for _, p := range pools {
			p.Close()
		}
	}
	for range n {
		pcfg, err := pgxpool.ParseConfig(url)
		if err != nil {
			stop()
			b.Fatal(err)
		}
		pcfg.MaxConns = prioqueue.PoolSize(queue.MaxWorkers)
		pool, err := pgxpool.NewWithConfig(b.Context(), pcfg)
		if err != nil {
			stop()
			b.Fatal(err)
		}
		pools = append(pools, pool)
		ws, timeout := work(pool)
		cfg := &river.Config{
			Queues:            map[string]river.QueueConfig{river.QueueDefault: queue},
			Workers:           ws,
			FetchCooldown:     time.Millisecond,
			FetchPollInterval: 200 * time.Millisecond,
			Logger:            slog.New(slog.NewTextHandler(io.Discard, nil)),
		}
		if timeout > 0 {
			cfg.JobTimeout, cfg.RescueStuckJobsAfter = timeout, timeout+time.Minute
		}
		rc, err := river.NewClient(riverpgxv5.New(pool), cfg)
		if err != nil {
			stop()
			b.Fatal(err)
		}
		clients = append(clients, rc)
	}
	return clients, stop
}

func startClients(b *testing.B, clients []*river.Client[pgx.Tx]) {
	for _, rc := range clients {
		if err := rc.Start(context.WithoutCancel(b.Context())); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkRiverAlone is the queue's ceiling on this machine: River
// working benchRows jobs of a worker that does nothing, with 1 and 4
// clients of benchPerWorker slots, on the same durable PostgreSQL. Its time
// runs from the clients' start (the jobs are inserted before it) to the
// last job recorded completed.
//
//	go test -run '^$' -bench RiverAlone -benchtime 3x ./prioqueue
func BenchmarkRiverAlone(b *testing.B) {
	srv, err := pgtest.Start(b.Context(), pgtest.Options{Durable: os.Getenv("BENCH_PG_FAST") == ""})
	if err != nil {
		b.Skip(err)
	}
	b.Cleanup(func() { _ = srv.Close() })
	for _, clients := range []int{1, 4} {
		b.Run(fmt.Sprintf("clients-%d", clients), func(b *testing.B) {
			var rates []float64
			for range b.N {
				url, err := srv.CreateDatabase(b.Context())
				if err != nil {
					b.Fatal(err)
				}
				rates = append(rates, float64(benchRows)/benchNoop(b, url, clients).Seconds())
			}
			b.ReportMetric(median(rates), "jobs/s")
		})
	}
}

type noopArgs struct {
	N int `json:"n"`
}

func (noopArgs) Kind() string { return "prioqueue_bench_noop" }

type noopWorker struct {
	river.WorkerDefaults[noopArgs]
}

func (noopWorker) Work(context.Context, *river.Job[noopArgs]) error { return nil }

func benchNoop(b *testing.B, url string, clients int) time.Duration {
	admin := benchAdmin(b, url)
	defer admin.Close()
	rcs, stop := benchClients(b, url, clients, river.QueueConfig{MaxWorkers: benchPerWorker}, func(*pgxpool.Pool) (*river.Workers, time.Duration) {
		ws := river.NewWorkers()
		river.AddWorker(ws, noopWorker{})
		return ws, 0
	})
	defer stop()
	params := make([]river.InsertManyParams, benchRows)
	for i := range params {
		params[i] = river.InsertManyParams{Args: noopArgs{N: i}}
	}
	if _, err := rcs[0].InsertMany(b.Context(), params); err != nil {
		b.Fatal(err)
	}
	start := time.Now()
	startClients(b, rcs)
	waitCompleted(b, admin, start)
	return time.Since(start)
}

// waitCompleted returns once benchRows jobs are recorded completed.
func waitCompleted(b *testing.B, admin *pgxpool.Pool, start time.Time) {
	for {
		var done int
		if err := admin.QueryRow(b.Context(), `SELECT count(*) FROM river_job WHERE state = 'completed'`).Scan(&done); err != nil {
			b.Fatal(err)
		}
		if done == benchRows {
			return
		}
		if time.Since(start) > 5*time.Minute {
			b.Fatalf("%d of %d jobs completed after 5 minutes", done, benchRows)
		}
		time.Sleep(10 * time.Millisecond)
	}
}
