package batch

import (
	"bufio"
	"context"
	"database/sql"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	prio "github.com/priosdk/prio-go"
)

// journals runs a test against every Journal implementation.
func journals(t *testing.T, test func(t *testing.T, open func() Journal)) {
	t.Run("memory", func(t *testing.T) {
		t.Parallel()
		j := NewMemoryJournal()
		test(t, func() Journal { j.Reopen(); return j })
	})
	t.Run("sqlite", func(t *testing.T) {
		t.Parallel()
		path := filepath.Join(t.TempDir(), "j.journal")
		test(t, func() Journal {
			j, err := OpenSQLite(path)
			require.NoError(t, err)
			return j
		})
	})
}

func TestJournalContract(t *testing.T) {
	t.Parallel()
	journals(t, func(t *testing.T, open func() Journal) {
		ctx := t.Context()
		j := open()

		_, ok, err := j.Get(ctx, "missing")
		require.NoError(t, err)
		assert.False(t, ok)

		before := time.Now().Add(-time.Second)
		// LastSend keeps every nanosecond: it is a bound.
		last := time.Date(2026, 7, 1, 10, 0, 0, 123456789, time.UTC)
		e := Entry{ExternalReference: "ref-1", State: Sending, Attempts: 1, RunID: "run-a", LastSend: last}
		require.NoError(t, j.Put(ctx, e, Entry{ExternalReference: "ref-2", State: Pending}))
		got, ok, err := j.Get(ctx, "ref-1")
		require.NoError(t, err)
		require.True(t, ok)
		assert.WithinRange(t, got.Updated, before, time.Now().Add(time.Second))
		got.Updated = time.Time{}
		assert.Equal(t, e, got)

		booked := Entry{ExternalReference: "ref-1", State: Booked, OrderReference: "ORD1", Attempts: 1, Sends: 2, RunID: "run-a"}
		require.NoError(t, j.Put(ctx, booked))
		got, _, err = j.Get(ctx, "ref-1")
		require.NoError(t, err)
		got.Updated = time.Time{}
		assert.Equal(t, booked, got, "a second Put replaces the entry")

		// All or none: an invalid entry keeps the valid one out too.
		err = j.Put(ctx, Entry{ExternalReference: "ref-3", State: Pending}, Entry{ExternalReference: "ref-4", State: "done"})
		require.Error(t, err)
		_, ok, _ = j.Get(ctx, "ref-3")
		assert.False(t, ok)
		require.Error(t, j.Put(ctx, Entry{State: Pending}))

		require.NoError(t, j.Close())
		require.ErrorIs(t, j.Put(ctx, e), ErrJournalClosed)
		_, _, err = j.Get(ctx, "ref-1")
		require.ErrorIs(t, err, ErrJournalClosed)

		// What was written survives a reopen.
		j = open()
		defer j.Close()
		got, ok, err = j.Get(ctx, "ref-1")
		require.NoError(t, err)
		require.True(t, ok)
		assert.Equal(t, Booked, got.State)
		assert.Equal(t, "ORD1", got.OrderReference)
		got, ok, err = j.Get(ctx, "ref-2")
		require.NoError(t, err)
		require.True(t, ok)
		assert.Equal(t, Pending, got.State)
	})
}

func TestJournalConcurrentPuts(t *testing.T) {
	t.Parallel()
	journals(t, func(t *testing.T, open func() Journal) {
		j := open()
		defer j.Close()
		var wg sync.WaitGroup
		for w := range 16 {
			wg.Go(func() {
				for i := range 50 {
					ref := fmt.Sprintf("w%02d-%03d", w, i)
					assert.NoError(t, j.Put(context.Background(), Entry{ExternalReference: ref, State: Sending}))
					assert.NoError(t, j.Put(context.Background(), Entry{ExternalReference: ref, State: Booked, OrderReference: "O" + ref}))
				}
			})
		}
		wg.Wait()
		for w := range 16 {
			for i := range 50 {
				ref := fmt.Sprintf("w%02d-%03d", w, i)
				e, ok, err := j.Get(t.Context(), ref)
				require.NoError(t, err)
				require.True(t, ok, ref)
				assert.Equal(t, Booked, e.State, ref)
				assert.Equal(t, "O"+ref, e.OrderReference)
			}
		}
	})
}

func TestSQLiteJournalFileIsPlainSQLite(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "bookings.journal")
	j, err := OpenSQLite(path)
	require.NoError(t, err)
	require.NoError(t, j.Put(t.Context(),
		Entry{ExternalReference: "a", State: Booked, OrderReference: "ORD-A", Sends: 1, Attempts: 1},
		Entry{ExternalReference: "b", State: Unknown, Error: "timeout"},
		Entry{ExternalReference: "c", State: Booked, OrderReference: "ORD-C"},
	))
	counts, err := j.Counts(t.Context())
	require.NoError(t, err)
	assert.Equal(t, map[State]int{Booked: 2, Unknown: 1}, counts)

	// Another connection, as sqlite3 would open it, reads the states while
	// the journal is open, and sees WAL mode.
	db, err := sql.Open("sqlite", path)
	require.NoError(t, err)
	defer db.Close()
	var mode string
	require.NoError(t, db.QueryRow("PRAGMA journal_mode").Scan(&mode))
	assert.Equal(t, "wal", mode)
	var state, order, updated string
	require.NoError(t, db.QueryRow("SELECT state, order_reference, updated_at FROM bookings WHERE external_reference = 'a'").Scan(&state, &order, &updated))
	assert.Equal(t, "booked", state)
	assert.Equal(t, "ORD-A", order)
	_, err = time.Parse(time.RFC3339, updated)
	assert.NoError(t, err, "updated_at reads as a timestamp: %q", updated)

	// The schema refuses a state the runner does not know.
	_, err = db.Exec("UPDATE bookings SET state = 'done' WHERE external_reference = 'a'")
	assert.Error(t, err)
	require.NoError(t, j.Close())
	require.NoError(t, j.Close(), "Close twice")
}

// oldSchema is the bookings table as journals were made before last_send.
const oldSchema = `
CREATE TABLE bookings (
	external_reference TEXT PRIMARY KEY NOT NULL,
	state              TEXT NOT NULL CHECK (state IN ('pending', 'sending', 'booked', 'failed', 'unknown')),
	order_reference    TEXT NOT NULL DEFAULT '',
	error              TEXT NOT NULL DEFAULT '',
	attempts           INTEGER NOT NULL DEFAULT 0,
	sends              INTEGER NOT NULL DEFAULT 0,
	run_id             TEXT NOT NULL DEFAULT '',
	updated_at         TEXT NOT NULL
) WITHOUT ROWID;
`

// TestSQLiteJournalMigratesOldSchema opens a journal file made by the
// schema without last_send: it gains the column, keeps its rows, and a
// row it left sending is looked up before it is sent again.
func TestSQLiteJournalMigratesOldSchema(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "old.journal")
	db, err := sql.Open("sqlite", path)
	require.NoError(t, err)
	_, err = db.Exec(oldSchema)
	require.NoError(t, err)
	hourAgo := time.Now().Add(-time.Hour).UTC().Format(updatedLayout)
	_, err = db.Exec(`INSERT INTO bookings (external_reference, state, order_reference, attempts, sends, run_id, updated_at)
		VALUES ('ok-old-booked', 'booked', 'ORD-OLD', 1, 1, 'old', ?), ('ok-old-sending', 'sending', '', 1, 0, 'old', ?)`, hourAgo, hourAgo)
	require.NoError(t, err)
	require.NoError(t, db.Close())

	j, err := OpenSQLite(path)
	require.NoError(t, err)
	e, ok, err := j.Get(t.Context(), "ok-old-sending")
	require.NoError(t, err)
	require.True(t, ok)
	assert.Equal(t, Sending, e.State)
	assert.True(t, e.LastSend.IsZero(), "an old row has no LastSend")
	assert.Equal(t, hourAgo, e.Updated.Format(updatedLayout))
	last := time.Date(2026, 7, 1, 10, 0, 0, 1, time.UTC)
	require.NoError(t, j.Put(t.Context(), Entry{ExternalReference: "ok-new", State: Sending, LastSend: last}))
	require.NoError(t, j.Close())

	// Opening it again finds the column there already.
	j, err = OpenSQLite(path)
	require.NoError(t, err)
	defer j.Close()
	e, _, err = j.Get(t.Context(), "ok-new")
	require.NoError(t, err)
	assert.Equal(t, last, e.LastSend)
	e, _, err = j.Get(t.Context(), "ok-old-booked")
	require.NoError(t, err)
	assert.Equal(t, "ORD-OLD", e.OrderReference)

	// The old sending row counts as sent until Updated + BookTimeout,
	// an hour ago plus a minute: Book is told so, looks up, and sends.
	srv := newFakeServer()
	var told time.Time
	b := bookerFunc(func(ctx context.Context, req *prio.OrderRequest, lastSend time.Time) (Receipt, error) {
		if req.OrderExternalReference == "ok-old-sending" {
			told = lastSend
		}
		return (&fakeBooker{srv: srv}).Book(ctx, req, lastSend)
	})
	sum, err := (&Runner{Booker: b, Journal: j, BookTimeout: time.Minute}).Run(t.Context(), rowsOf("ok-old-booked", "ok-old-sending"))
	require.NoError(t, err)
	assert.Equal(t, 2, sum.Booked)
	assert.Equal(t, 1, sum.Earlier)
	assert.Equal(t, hourAgo, told.Add(-time.Minute).UTC().Format(updatedLayout))
	assert.Equal(t, 1, srv.finds["ok-old-sending"], "looked up before it was sent")
	assert.Len(t, srv.booked()["ok-old-sending"], 1)
}

func TestSQLiteJournalIsExclusive(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "j.journal")
	j, err := OpenSQLite(path)
	require.NoError(t, err)
	_, err = OpenSQLite(path)
	require.ErrorIs(t, err, ErrJournalLocked)
	require.NoError(t, j.Close())
	j, err = OpenSQLite(path)
	require.NoError(t, err, "free again after Close")
	require.NoError(t, j.Close())
}

func TestOpenSQLiteRejectsOddPaths(t *testing.T) {
	t.Parallel()
	for _, p := range []string{"", ":memory:", "file:x.db", "x.db?mode=ro", filepath.Join(t.TempDir(), "no", "such", "dir", "j")} {
		_, err := OpenSQLite(p)
		assert.Error(t, err, p)
	}
}

// TestSQLiteJournalPutIsDurable kills a process that is writing the
// journal at random moments; every Put it reported done before it died
// must be in the file afterwards.
func TestSQLiteJournalPutIsDurable(t *testing.T) {
	if os.Getenv("BATCH_JOURNAL_CHILD") != "" {
		journalChild()
		return
	}
	t.Parallel()
	exe, err := os.Executable()
	require.NoError(t, err)
	rng := rand.New(rand.NewPCG(7, 7))
	for run := range 5 {
		path := filepath.Join(t.TempDir(), "j.journal")
		cmd := exec.Command(exe, "-test.run=^TestSQLiteJournalPutIsDurable$")
		cmd.Env = append(os.Environ(), "BATCH_JOURNAL_CHILD="+path)
		out, err := cmd.StdoutPipe()
		require.NoError(t, err)
		require.NoError(t, cmd.Start())
		// The kill comes at a random moment after the child's first
		// acknowledged write, however slow it was to start.
		killAfter := time.Duration(rng.IntN(300)) * time.Millisecond
		var timer *time.Timer
		acked := map[string]bool{}
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			if ref, ok := strings.CutPrefix(sc.Text(), "done "); ok {
				acked[ref] = true
				if timer == nil {
					timer = time.AfterFunc(killAfter, func() { _ = cmd.Process.Signal(syscall.SIGKILL) })
				}
			}
		}
		_ = cmd.Wait()
		if timer != nil {
			timer.Stop()
		}
		require.NotEmpty(t, acked, "run %d: the child acknowledged nothing before it was killed", run)

		j, err := OpenSQLite(path)
		require.NoError(t, err, "run %d: the journal opens after a kill (the lock died with the process)", run)
		for ref := range acked {
			e, ok, err := j.Get(t.Context(), ref)
			require.NoError(t, err)
			if assert.True(t, ok, "run %d: acknowledged %s lost", run, ref) {
				assert.Equal(t, Booked, e.State)
			}
		}
		require.NoError(t, j.Close())
	}
}

// journalChild writes entries until it is killed (bounded at 100,000 so it
// ends by itself if nobody kills it), printing each one once Put returned.
func journalChild() {
	j, err := OpenSQLite(os.Getenv("BATCH_JOURNAL_CHILD"))
	if err != nil {
		fmt.Println("open:", err)
		os.Exit(1)
	}
	var mu sync.Mutex
	var wg sync.WaitGroup
	for w := range 4 {
		wg.Go(func() {
			for i := range 25000 {
				ref := "w" + strconv.Itoa(w) + "-" + strconv.Itoa(i)
				if err := j.Put(context.Background(), Entry{ExternalReference: ref, State: Booked, OrderReference: "O"}); err != nil {
					os.Exit(1)
				}
				mu.Lock()
				fmt.Println("done", ref)
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	os.Exit(0)
}

func BenchmarkSQLiteJournalPut(b *testing.B) {
	for _, workers := range []int{1, 8} {
		b.Run(fmt.Sprintf("workers=%d", workers), func(b *testing.B) {
			j, err := OpenSQLite(filepath.Join(b.TempDir(), "j.journal"))
			require.NoError(b, err)
			defer j.Close()
			b.ReportAllocs()
			var n sync.Mutex
			i := 0
			var wg sync.WaitGroup
			b.ResetTimer()
			for range workers {
				wg.Go(func() {
					for {
						n.Lock()
						if i >= b.N {
							n.Unlock()
							return
						}
						i++
						ref := "r" + strconv.Itoa(i)
						n.Unlock()
						if err := j.Put(context.Background(), Entry{ExternalReference: ref, State: Sending}); err != nil {
							b.Error(err)
							return
						}
					}
				})
			}
			wg.Wait()
		})
	}
}
