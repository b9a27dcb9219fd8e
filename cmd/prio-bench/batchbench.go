package main

import (
	"context"
	"fmt"
	"iter"
	"os"
	"path/filepath"
	"time"

	"github.com/priosdk/prio-go/batch"
)

// BatchResult is one batch run: rows booked per second with one journal.
type BatchResult struct {
	Journal    string  `json:"journal"`
	Rows       int     `json:"rows"`
	Booked     int     `json:"booked"`
	Failed     int     `json:"failed"`
	Unknown    int     `json:"unknown"`
	Seconds    float64 `json:"seconds"`
	RowsPerSec float64 `json:"rows_per_sec"`
}

// Batch is the batch phase. JournalPrice is SQLite's rows/s divided by the
// in-memory journal's: the share of throughput a durable journal keeps.
type Batch struct {
	Concurrency  int           `json:"concurrency"`
	JournalDir   string        `json:"journal_dir"`
	Results      []BatchResult `json:"results"`
	JournalPrice float64       `json:"sqlite_over_memory"`
}

// The journals, as named in the report.
const (
	journalSQLite = "sqlite"
	journalMemory = "memory"
)

func measureBatch(ctx context.Context, cfg config) (*Batch, error) {
	dir, err := os.MkdirTemp("", "prio-bench-*")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(dir)
	b := &Batch{Concurrency: cfg.batchConcurrency, JournalDir: filepath.Dir(dir)}
	for _, name := range []string{journalSQLite, journalMemory} {
		r, err := batchRun(ctx, cfg, name, dir)
		if err != nil {
			return nil, fmt.Errorf("%s journal: %w", name, err)
		}
		cfg.logf("batch: %s journal: %d rows in %.3fs, %.0f rows/s", name, r.Rows, r.Seconds, r.RowsPerSec)
		b.Results = append(b.Results, r)
	}
	if b.Results[1].RowsPerSec > 0 {
		b.JournalPrice = round3(b.Results[0].RowsPerSec / b.Results[1].RowsPerSec)
	}
	return b, nil
}

// batchRun books cfg.batchRows fresh rows through the runner with one
// journal, on a server of its own.
func batchRun(ctx context.Context, cfg config, journal, dir string) (BatchResult, error) {
	res := BatchResult{Journal: journal, Rows: cfg.batchRows}
	s, err := newServer()
	if err != nil {
		return res, err
	}
	defer s.Close()
	sdk, err := newSDKCreator(s, cfg.batchConcurrency)
	if err != nil {
		return res, err
	}
	// The first create fetches the token; keep it out of the timing.
	if err := sdk.create(ctx, nextRef("warm")); err != nil {
		return res, fmt.Errorf("warm-up: %w", err)
	}

	var j batch.Journal
	switch journal {
	case journalSQLite:
		sj, err := batch.OpenSQLite(filepath.Join(dir, "bench.journal"))
		if err != nil {
			return res, err
		}
		j = sj
	default:
		j = batch.NewMemoryJournal()
	}
	defer j.Close()

	runner := &batch.Runner{Booker: batch.ClientBooker(sdk.c), Journal: j, Concurrency: cfg.batchConcurrency}
	start := time.Now()
	sum, err := runner.Run(ctx, rows(cfg.batchRows))
	elapsed := time.Since(start)
	if err != nil {
		return res, err
	}
	res.Booked, res.Failed, res.Unknown = sum.Booked, sum.Failed, sum.Unknown
	if res.Booked != res.Rows {
		return res, fmt.Errorf("booked %d of %d rows (%s)", res.Booked, res.Rows, sum)
	}
	res.Seconds = seconds(elapsed)
	res.RowsPerSec = round1(float64(res.Booked) / elapsed.Seconds())
	return res, nil
}

// rows yields n orders with fresh external references, made as they are
// read, as a file-backed input would.
func rows(n int) iter.Seq2[batch.Row, error] {
	return func(yield func(batch.Row, error) bool) {
		for i := range n {
			if !yield(batch.Row{Line: i + 1, Request: newOrder(nextRef("batch"))}, nil) {
				return
			}
		}
	}
}
