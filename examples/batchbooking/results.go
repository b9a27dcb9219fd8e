package main

import (
	"encoding/csv"
	"fmt"
	"os"
	"path/filepath"

	"github.com/priosdk/prio-go/batch"
)

// resultsFile writes one CSV line per row as rows finish. It writes to a
// temporary file beside the target and renames it on close, so the target
// always holds the complete results of one run, never half of two.
type resultsFile struct {
	path string
	f    *os.File
	w    *csv.Writer
}

var resultsHeader = []string{"external_reference", "order_reference", "status", "error"}

func createResults(path string) (*resultsFile, error) {
	f, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".*.tmp")
	if err != nil {
		return nil, fmt.Errorf("results file: %w", err)
	}
	r := &resultsFile{path: path, f: f, w: csv.NewWriter(f)}
	if err := r.w.Write(resultsHeader); err != nil {
		r.abort()
		return nil, fmt.Errorf("results file: %w", err)
	}
	return r, nil
}

func (r *resultsFile) write(res batch.Result) error {
	msg := ""
	if res.Err != nil {
		msg = res.Err.Error()
	}
	return r.w.Write([]string{res.ExternalReference, res.OrderReference, string(res.State), msg})
}

// close flushes the results and puts them in place.
func (r *resultsFile) close() error {
	r.w.Flush()
	err := r.w.Error()
	if err == nil {
		err = r.f.Sync()
	}
	if cerr := r.f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(r.f.Name(), r.path)
	}
	if err != nil {
		_ = os.Remove(r.f.Name())
		return fmt.Errorf("results file %s: %w", r.path, err)
	}
	return nil
}

func (r *resultsFile) abort() {
	_ = r.f.Close()
	_ = os.Remove(r.f.Name())
}
