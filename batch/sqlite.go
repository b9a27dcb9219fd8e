package batch

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	_ "modernc.org/sqlite" // registers the "sqlite" driver
)

// The pragmas every connection gets.
//
// synchronous=FULL: in WAL mode NORMAL already survives a killed process
// (a commit is in the WAL file, in the OS page cache, when it returns), but
// a power cut or kernel panic can lose the last commits. Losing a "sending"
// record would make the next run send that row again without looking it up
// first, which books twice wherever the server does not deduplicate. FULL
// syncs the WAL on every commit; group commit (see writer) keeps the cost
// at one sync per batch of concurrent writes rather than one per row.
//
// busy_timeout: a person running sqlite3 on the file, or a checkpoint, may
// hold a lock for a moment; waiting is better than failing the run.
const sqlitePragmas = "_pragma=busy_timeout(10000)" +
	"&_pragma=journal_mode(WAL)" +
	"&_pragma=synchronous(FULL)" +
	"&_txlock=immediate"

const sqliteSchema = `
CREATE TABLE IF NOT EXISTS bookings (
	external_reference TEXT PRIMARY KEY NOT NULL,
	state              TEXT NOT NULL CHECK (state IN ('pending', 'sending', 'booked', 'failed', 'unknown')),
	order_reference    TEXT NOT NULL DEFAULT '',
	error              TEXT NOT NULL DEFAULT '',
	attempts           INTEGER NOT NULL DEFAULT 0,
	sends              INTEGER NOT NULL DEFAULT 0,
	run_id             TEXT NOT NULL DEFAULT '',
	updated_at         TEXT NOT NULL,
	last_send          TEXT NOT NULL DEFAULT ''
) WITHOUT ROWID;
`

// sqliteAddLastSend migrates a journal made before last_send was kept. Its
// rows get an empty last_send (no time known), which the runner reads
// conservatively (see the package documentation).
const sqliteAddLastSend = `ALTER TABLE bookings ADD COLUMN last_send TEXT NOT NULL DEFAULT ''`

const sqliteUpsert = `
INSERT INTO bookings (external_reference, state, order_reference, error, attempts, sends, run_id, updated_at, last_send)
VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)
ON CONFLICT (external_reference) DO UPDATE SET
	state = excluded.state,
	order_reference = excluded.order_reference,
	error = excluded.error,
	attempts = excluded.attempts,
	sends = excluded.sends,
	run_id = excluded.run_id,
	updated_at = excluded.updated_at,
	last_send = excluded.last_send`

// updatedLayout is fixed-width UTC so that updated_at sorts as text in
// sqlite3 and reads plainly.
const updatedLayout = "2006-01-02T15:04:05.000Z"

// lastSendLayout keeps every nanosecond: last_send is a bound, and
// rounding it down would move it before the send it bounds.
const lastSendLayout = "2006-01-02T15:04:05.000000000Z"

// maxGroup bounds how many Put calls share one transaction.
const maxGroup = 256

// ErrJournalLocked is returned by OpenSQLite when another process (or
// another journal in this process) has the file open: two runs on one
// journal would each book the rows the other has not recorded yet.
var ErrJournalLocked = errors.New("batch: journal is in use by another run")

// SQLiteJournal is the default Journal: one SQLite file in WAL mode with a
// table "bookings" holding one row per external reference. Concurrent Put
// calls are committed together, each returning once its transaction is
// synced to disk.
type SQLiteJournal struct {
	db     *sql.DB
	path   string
	unlock func() error

	mu     sync.RWMutex // guards closed and sending on writes
	closed bool
	writes chan *writeReq
	done   chan struct{}
}

type writeReq struct {
	entries []Entry
	done    chan error
}

// OpenSQLite opens the journal at path, creating the file and its table if
// needed. The file is locked for this journal until Close; opening it
// again meanwhile fails with ErrJournalLocked.
func OpenSQLite(path string) (*SQLiteJournal, error) {
	if path == "" {
		return nil, errors.New("batch: empty journal path")
	}
	if strings.ContainsAny(path, "?#") || strings.HasPrefix(path, "file:") || path == ":memory:" {
		return nil, fmt.Errorf("batch: journal path %q: must be a plain file path", path)
	}
	unlock, err := lockFile(path + ".lock")
	if err != nil {
		return nil, err
	}
	db, err := sql.Open("sqlite", path+"?"+sqlitePragmas)
	if err != nil {
		_ = unlock()
		return nil, fmt.Errorf("batch: open journal %s: %w", path, err)
	}
	// One writer connection is all SQLite allows at a time; a second lets
	// Get read from the WAL while a commit is syncing.
	db.SetMaxOpenConns(2)
	db.SetMaxIdleConns(2)
	db.SetConnMaxIdleTime(0)
	ctx := context.Background()
	if _, err := db.ExecContext(ctx, sqliteSchema); err != nil {
		_ = db.Close()
		_ = unlock()
		return nil, fmt.Errorf("batch: create journal table in %s: %w", path, err)
	}
	if err := migrate(ctx, db); err != nil {
		_ = db.Close()
		_ = unlock()
		return nil, fmt.Errorf("batch: migrate journal %s: %w", path, err)
	}
	var mode string
	if err := db.QueryRowContext(ctx, "PRAGMA journal_mode").Scan(&mode); err != nil || !strings.EqualFold(mode, "wal") {
		_ = db.Close()
		_ = unlock()
		if err == nil {
			err = fmt.Errorf("journal_mode is %q", mode)
		}
		return nil, fmt.Errorf("batch: journal %s: cannot use WAL mode: %w", path, err)
	}
	j := &SQLiteJournal{
		db:     db,
		path:   path,
		unlock: unlock,
		writes: make(chan *writeReq),
		done:   make(chan struct{}),
	}
	go j.writer()
	return j, nil
}

// migrate adds the columns a journal made by an earlier version lacks.
func migrate(ctx context.Context, db *sql.DB) error {
	rows, err := db.QueryContext(ctx, `SELECT name FROM pragma_table_info('bookings')`)
	if err != nil {
		return err
	}
	defer rows.Close()
	has := map[string]bool{}
	for rows.Next() {
		var name string
		if err := rows.Scan(&name); err != nil {
			return err
		}
		has[name] = true
	}
	if err := rows.Err(); err != nil {
		return err
	}
	if !has["last_send"] {
		if _, err := db.ExecContext(ctx, sqliteAddLastSend); err != nil {
			return err
		}
	}
	return nil
}

// Path returns the file the journal lives in.
func (j *SQLiteJournal) Path() string { return j.path }

// Get returns the entry for ref.
func (j *SQLiteJournal) Get(ctx context.Context, ref string) (Entry, bool, error) {
	j.mu.RLock()
	defer j.mu.RUnlock()
	if j.closed {
		return Entry{}, false, ErrJournalClosed
	}
	var (
		e       Entry
		state   string
		updated string
		last    string
	)
	err := j.db.QueryRowContext(ctx,
		`SELECT external_reference, state, order_reference, error, attempts, sends, run_id, updated_at, last_send
		 FROM bookings WHERE external_reference = ?`, ref).
		Scan(&e.ExternalReference, &state, &e.OrderReference, &e.Error, &e.Attempts, &e.Sends, &e.RunID, &updated, &last)
	if errors.Is(err, sql.ErrNoRows) {
		return Entry{}, false, nil
	}
	if err != nil {
		return Entry{}, false, fmt.Errorf("batch: journal get %q: %w", ref, err)
	}
	e.State = State(state)
	e.Updated, _ = time.Parse(updatedLayout, updated)
	if last != "" {
		if e.LastSend, err = time.Parse(lastSendLayout, last); err != nil {
			// A bound that cannot be read must not be taken for none.
			return Entry{}, false, fmt.Errorf("batch: journal get %q: last_send: %w", ref, err)
		}
	}
	return e, true, nil
}

// Put writes the entries in one transaction and returns once it is synced.
// ctx only bounds the wait to hand the entries over: once handed over they
// are committed (or the commit fails) whatever becomes of ctx, so that the
// caller learns which.
func (j *SQLiteJournal) Put(ctx context.Context, entries ...Entry) error {
	if len(entries) == 0 {
		return nil
	}
	if err := validateEntries(entries); err != nil {
		return err
	}
	req := &writeReq{entries: entries, done: make(chan error, 1)}
	j.mu.RLock()
	if j.closed {
		j.mu.RUnlock()
		return ErrJournalClosed
	}
	select {
	case j.writes <- req:
	case <-ctx.Done():
		j.mu.RUnlock()
		return ctx.Err()
	}
	j.mu.RUnlock()
	return <-req.done
}

// writer commits the queued writes. It takes every request already
// waiting into the same transaction, so N workers writing at once pay for
// one sync, not N.
func (j *SQLiteJournal) writer() {
	defer close(j.done)
	for req := range j.writes {
		group := []*writeReq{req}
	more:
		for len(group) < maxGroup {
			select {
			case r, ok := <-j.writes:
				if !ok {
					break more
				}
				group = append(group, r)
			default:
				break more
			}
		}
		err := j.commit(group)
		for _, r := range group {
			r.done <- err
		}
	}
}

func (j *SQLiteJournal) commit(group []*writeReq) error {
	// Writes are not tied to any caller's context: a commit that started
	// must finish so that its outcome is known.
	ctx := context.Background()
	tx, err := j.db.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("batch: journal begin: %w", err)
	}
	stmt, err := tx.PrepareContext(ctx, sqliteUpsert)
	if err != nil {
		_ = tx.Rollback()
		return fmt.Errorf("batch: journal prepare: %w", err)
	}
	now := time.Now().UTC().Format(updatedLayout)
	for _, r := range group {
		for _, e := range r.entries {
			last := ""
			if !e.LastSend.IsZero() {
				last = e.LastSend.UTC().Format(lastSendLayout)
			}
			if _, err := stmt.ExecContext(ctx, e.ExternalReference, string(e.State), e.OrderReference,
				e.Error, e.Attempts, e.Sends, e.RunID, now, last); err != nil {
				_ = stmt.Close()
				_ = tx.Rollback()
				return fmt.Errorf("batch: journal write %q: %w", e.ExternalReference, err)
			}
		}
	}
	_ = stmt.Close()
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("batch: journal commit: %w", err)
	}
	return nil
}

// Counts returns how many rows the journal holds in each state.
func (j *SQLiteJournal) Counts(ctx context.Context) (map[State]int, error) {
	j.mu.RLock()
	defer j.mu.RUnlock()
	if j.closed {
		return nil, ErrJournalClosed
	}
	rows, err := j.db.QueryContext(ctx, `SELECT state, count(*) FROM bookings GROUP BY state`)
	if err != nil {
		return nil, fmt.Errorf("batch: journal counts: %w", err)
	}
	defer rows.Close()
	out := map[State]int{}
	for rows.Next() {
		var (
			s string
			n int
		)
		if err := rows.Scan(&s, &n); err != nil {
			return nil, fmt.Errorf("batch: journal counts: %w", err)
		}
		out[State(s)] = n
	}
	return out, rows.Err()
}

// Close waits for pending writes, checkpoints the WAL into the main file
// and releases the file. It is safe to call more than once.
func (j *SQLiteJournal) Close() error {
	j.mu.Lock()
	if j.closed {
		j.mu.Unlock()
		return nil
	}
	j.closed = true
	close(j.writes)
	j.mu.Unlock()
	<-j.done
	// A checkpoint leaves everything in the main file, so a person who
	// copies only that file still has every state. Failing it loses
	// nothing: the WAL is replayed on the next open.
	_, _ = j.db.ExecContext(context.Background(), "PRAGMA wal_checkpoint(TRUNCATE)")
	err := j.db.Close()
	if uerr := j.unlock(); err == nil {
		err = uerr
	}
	if err != nil {
		return fmt.Errorf("batch: close journal %s: %w", j.path, err)
	}
	return nil
}
