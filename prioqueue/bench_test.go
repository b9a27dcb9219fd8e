package prioqueue_test

import (
	"context"
	"fmt"
	"io"
	"iter"
	"log/slog"
	"os"
	"path/filepath"
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

// benchRows is the size of one booking run; benchPerWorker the jobs one
// queue worker (one River client, as on one machine) works at once.
const (
	benchRows      = 2000
	benchPerWorker = 8
)

// BenchmarkThroughput books benchRows orders on one in-process sandbox:
// with the SQLite batch runner at 32 rows in flight, and through the queue
// with 1, 2 and 4 workers of 8 each (4 workers: the same 32 in flight).
// Both databases keep their durable settings (SQLite synchronous=FULL,
// PostgreSQL fsync on). It reports rows/s.
//
//	go test -run '^$' -bench Throughput -benchtime 3x ./prioqueue
func BenchmarkThroughput(b *testing.B) {
	srv, err := pgtest.Start(b.Context(), pgtest.Options{Durable: os.Getenv("BENCH_PG_FAST") == ""})
	if err != nil {
		b.Skip(err)
	}
	b.Cleanup(func() { _ = srv.Close() })
	sandbox := priotest.NewServer(b, priotest.WithRequestLimit(0))
	run := 0
	next := func() string { run++; return fmt.Sprintf("B%d", run) }

	b.Run("sqlite-runner-32", func(b *testing.B) {
		for range b.N {
			prefix := next()
			j, err := batch.OpenSQLite(filepath.Join(b.TempDir(), "bench.journal"))
			if err != nil {
				b.Fatal(err)
			}
			r := &batch.Runner{Booker: batch.ClientBooker(benchClient(b, sandbox)), Journal: j, Concurrency: 32}
			start := time.Now()
			sum, err := r.Run(b.Context(), benchInput(prefix))
			el := time.Since(start)
			_ = j.Close()
			if err != nil || sum.Booked != benchRows {
				b.Fatalf("%v %s", err, sum)
			}
			b.ReportMetric(float64(benchRows)/el.Seconds(), "rows/s")
		}
	})
	for _, workers := range []int{1, 2, 4} {
		b.Run(fmt.Sprintf("queue-%dx%d", workers, benchPerWorker), func(b *testing.B) {
			for range b.N {
				prefix := next()
				url, err := srv.CreateDatabase(b.Context())
				if err != nil {
					b.Fatal(err)
				}
				el := benchQueue(b, url, sandbox, prefix, workers)
				b.ReportMetric(float64(benchRows)/el.Seconds(), "rows/s")
			}
		})
	}
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

// benchQueue enqueues benchRows jobs and works them with workers River
// clients, each with its own pool and prio client, as on separate
// machines; it returns the time from the first insert to the last job
// completed.
func benchQueue(b *testing.B, url string, sandbox *priotest.Server, prefix string, workers int) time.Duration {
	ctx := b.Context()
	admin, err := pgxpool.New(ctx, url)
	if err != nil {
		b.Fatal(err)
	}
	defer admin.Close()
	if err := prioqueue.Migrate(ctx, admin); err != nil {
		b.Fatal(err)
	}
	var clients []*river.Client[pgx.Tx]
	for range workers {
		pcfg, err := pgxpool.ParseConfig(url)
		if err != nil {
			b.Fatal(err)
		}
		pcfg.MaxConns = prioqueue.PoolSize(benchPerWorker)
		pool, err := pgxpool.NewWithConfig(ctx, pcfg)
		if err != nil {
			b.Fatal(err)
		}
		defer pool.Close()
		w, err := prioqueue.NewWorker(prioqueue.Config{Client: benchClient(b, sandbox), DB: pool})
		if err != nil {
			b.Fatal(err)
		}
		ws := river.NewWorkers()
		river.AddWorker(ws, w)
		rc, err := river.NewClient(riverpgxv5.New(pool), &river.Config{
			Queues:               map[string]river.QueueConfig{river.QueueDefault: {MaxWorkers: benchPerWorker}},
			Workers:              ws,
			FetchCooldown:        time.Millisecond,
			FetchPollInterval:    200 * time.Millisecond,
			JobTimeout:           w.Timeout(nil),
			RescueStuckJobsAfter: w.Timeout(nil) + time.Minute,
			Logger:               slog.New(slog.NewTextHandler(io.Discard, nil)),
		})
		if err != nil {
			b.Fatal(err)
		}
		clients = append(clients, rc)
	}
	start := time.Now()
	for _, rc := range clients {
		if err := rc.Start(context.WithoutCancel(ctx)); err != nil {
			b.Fatal(err)
		}
	}
	params := make([]river.InsertManyParams, 0, 500)
	for row := range benchInput(prefix) {
		a, err := prioqueue.NewCreateOrderArgs(priotest.DefaultDistributorID, row.Request)
		if err != nil {
			b.Fatal(err)
		}
		params = append(params, river.InsertManyParams{Args: a})
		if len(params) == cap(params) {
			if _, err := clients[0].InsertMany(ctx, params); err != nil {
				b.Fatal(err)
			}
			params = params[:0]
		}
	}
	for {
		var done int
		if err := admin.QueryRow(ctx, `SELECT count(*) FROM river_job WHERE state = 'completed'`).Scan(&done); err != nil {
			b.Fatal(err)
		}
		if done == benchRows {
			break
		}
		if time.Since(start) > 5*time.Minute {
			b.Fatalf("%d of %d jobs completed after 5 minutes", done, benchRows)
		}
		time.Sleep(10 * time.Millisecond)
	}
	el := time.Since(start)
	for _, rc := range clients {
		stop, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		_ = rc.Stop(stop)
		cancel()
	}
	return el
}
