package batch

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"
)

// State is where one row stands. The values are the strings stored in the
// journal.
type State string

// The states of a row; see the package documentation for their meaning.
const (
	Pending State = "pending"
	Sending State = "sending"
	Booked  State = "booked"
	Failed  State = "failed"
	Unknown State = "unknown"
)

// Valid reports whether s is one of the five states.
func (s State) Valid() bool {
	switch s {
	case Pending, Sending, Booked, Failed, Unknown:
		return true
	}
	return false
}

// Entry is what the journal records for one row.
type Entry struct {
	ExternalReference string
	State             State
	OrderReference    string // set when State is Booked
	Error             string // why the row failed or is unknown
	Attempts          int    // times the row entered Sending, over all runs
	Sends             int    // create requests sent for the row, over all runs
	// LastSend is the latest moment a create request for the row may have
	// been sent: while a Book call runs, its deadline; after it, the last
	// send it reported in doubt. Zero when nothing was ever sent. An
	// empty look-up proves the order absent only once Prio can no longer
	// be processing that send (prio.RetryPolicy.ProcessingHorizon after
	// it).
	LastSend time.Time
	// RunID names the run that last took the row from the input. A row
	// that comes up twice in one run is a duplicate in the input.
	RunID string
	// Updated is when the entry was last written; the journal sets it.
	Updated time.Time
}

// ErrJournalClosed is returned by a journal's methods after Close.
var ErrJournalClosed = errors.New("batch: journal closed")

// Journal stores one Entry per external reference. Put must be durable
// when it returns: the runner writes Sending before a create request and
// relies on finding it after a crash. Implementations must be safe for
// concurrent use.
type Journal interface {
	// Get returns the entry for ref; ok is false when there is none.
	Get(ctx context.Context, ref string) (e Entry, ok bool, err error)
	// Put writes the entries, all or none, replacing any with the same
	// external reference, and returns once they are durable.
	Put(ctx context.Context, entries ...Entry) error
	// Close releases the journal. Entries already written stay written.
	Close() error
}

func validateEntries(entries []Entry) error {
	for _, e := range entries {
		if e.ExternalReference == "" {
			return errors.New("batch: journal entry without external reference")
		}
		if !e.State.Valid() {
			return fmt.Errorf("batch: journal entry %q: invalid state %q", e.ExternalReference, e.State)
		}
	}
	return nil
}

// MemoryJournal keeps entries in memory. It is meant for tests and
// benchmarks: it grows with the number of rows and forgets everything when
// the process ends, so it cannot resume after a crash.
type MemoryJournal struct {
	mu      sync.Mutex
	entries map[string]Entry
	closed  bool
}

// NewMemoryJournal returns an empty in-memory journal.
func NewMemoryJournal() *MemoryJournal {
	return &MemoryJournal{entries: map[string]Entry{}}
}

// Get returns the entry for ref.
func (j *MemoryJournal) Get(ctx context.Context, ref string) (Entry, bool, error) {
	if err := ctx.Err(); err != nil {
		return Entry{}, false, err
	}
	j.mu.Lock()
	defer j.mu.Unlock()
	if j.closed {
		return Entry{}, false, ErrJournalClosed
	}
	e, ok := j.entries[ref]
	return e, ok, nil
}

// Put stores the entries.
func (j *MemoryJournal) Put(ctx context.Context, entries ...Entry) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if err := validateEntries(entries); err != nil {
		return err
	}
	j.mu.Lock()
	defer j.mu.Unlock()
	if j.closed {
		return ErrJournalClosed
	}
	now := time.Now().UTC()
	for _, e := range entries {
		e.Updated = now
		j.entries[e.ExternalReference] = e
	}
	return nil
}

// Close marks the journal closed; its entries stay readable through
// Entries.
func (j *MemoryJournal) Close() error {
	j.mu.Lock()
	j.closed = true
	j.mu.Unlock()
	return nil
}

// Reopen makes a closed journal usable again with its entries intact, as
// a file journal is after a restart.
func (j *MemoryJournal) Reopen() {
	j.mu.Lock()
	j.closed = false
	j.mu.Unlock()
}

// Entries returns a copy of every entry, keyed by external reference.
func (j *MemoryJournal) Entries() map[string]Entry {
	j.mu.Lock()
	defer j.mu.Unlock()
	out := make(map[string]Entry, len(j.entries))
	for k, v := range j.entries {
		out[k] = v
	}
	return out
}
