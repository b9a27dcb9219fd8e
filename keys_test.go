package prio

import (
	"fmt"
	"reflect"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/google/uuid"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestDeriveKey(t *testing.T) {
	t.Parallel()
	k := DeriveKey("501", "createOrder", "ext-42")

	// Pinned: a derived key must never change between SDK versions, or a
	// process upgraded mid-outage would re-send a booking under a new key.
	// The value was computed apart from this code, with Python's
	// uuid.uuid5(UUID("ac99e1b6-70bc-4fb1-8a22-6b3d18b5b63d"),
	// "3:501" + "11:createOrder" + "6:ext-42").
	assert.Equal(t, "0c2e710f-9c1f-5987-b2c4-41b9c533034f", k)

	u, err := uuid.Parse(k)
	require.NoError(t, err)
	assert.Equal(t, uuid.Version(5), u.Version())
	assert.Equal(t, uuid.RFC4122, u.Variant())
	assert.NoError(t, ValidateKey(k))
	assert.Equal(t, k, DeriveKey("501", "createOrder", "ext-42"), "same inputs, same key")

	others := map[string]string{
		"distributor": DeriveKey("502", "createOrder", "ext-42"),
		"operation":   DeriveKey("501", "createReservation", "ext-42"),
		"reference":   DeriveKey("501", "createOrder", "ext-43"),
		"shifted 1":   DeriveKey("50", "1createOrder", "ext-42"),
		"shifted 2":   DeriveKey("501", "createOrderext-", "42"),
		"empty":       DeriveKey("", "", ""),
	}
	seen := map[string]string{k: "base"}
	for name, o := range others {
		_, dup := seen[o]
		assert.False(t, dup, "%s collides with %s", name, seen[o])
		seen[o] = name
	}
}

func TestNewRandomKey(t *testing.T) {
	t.Parallel()
	seen := make(map[string]bool, 1000)
	for range 1000 {
		k := NewRandomKey()
		u, err := uuid.Parse(k)
		require.NoError(t, err)
		require.Equal(t, uuid.Version(4), u.Version())
		require.NoError(t, ValidateKey(k))
		require.False(t, seen[k])
		seen[k] = true
	}
}

func TestValidateKey(t *testing.T) {
	t.Parallel()
	cases := []struct {
		key string
		ok  bool
	}{
		{"a", true},
		{"order-2024/ABC_123:x~", true},
		{strings.Repeat("k", 255), true},
		{"", false},
		{strings.Repeat("k", 256), false},
		{"has space", false},
		{"tab\there", false},
		{"new\nline", false},
		{"nul\x00", false},
		{"del\x7f", false},
		{"caf\u00e9", false},
	}
	for _, c := range cases {
		err := ValidateKey(c.key)
		if c.ok {
			assert.NoError(t, err, "%q", c.key)
			continue
		}
		assert.ErrorIs(t, err, ErrInvalidKey, "%q", c.key)
		if len(c.key) > 3 {
			assert.NotContains(t, err.Error(), c.key, "the message does not echo the key")
		}
	}
}

func TestKeyGuard(t *testing.T) {
	t.Parallel()
	g := newKeyGuard(100, time.Hour)
	require.NoError(t, g.check("k1", []byte(`{"a":1}`)))
	require.NoError(t, g.check("k1", []byte(`{"a":1}`)), "same body again is a retry")
	err := g.check("k1", []byte(`{"a":2}`))
	assert.ErrorIs(t, err, ErrKeyReused)
	assert.Contains(t, err.Error(), "k1")
	require.NoError(t, g.check("k2", []byte(`{"a":2}`)), "other keys are independent")
	require.NoError(t, g.check("k1", []byte(`{"a":1}`)), "a refused body does not replace the recorded one")

	g.forget("k1")
	require.NoError(t, g.check("k1", []byte(`{"a":2}`)), "a forgotten key may carry a new body")

	var off *keyGuard
	assert.NoError(t, off.check("k", nil))
	assert.NoError(t, newKeyGuard(0, time.Hour).check("k", nil))
}

func TestKeyGuardBoundedSize(t *testing.T) {
	t.Parallel()
	g := newKeyGuard(3, 0)
	for i := range 5 {
		require.NoError(t, g.check(fmt.Sprint("k", i), []byte("a")))
	}
	assert.Equal(t, 3, g.size())
	assert.NoError(t, g.check("k0", []byte("other")), "the oldest key was evicted")
	assert.ErrorIs(t, g.check("k4", []byte("other")), ErrKeyReused, "recent keys are kept")

	// Use refreshes: k2 used again survives two new keys; k3 does not.
	g = newKeyGuard(3, 0)
	for _, k := range []string{"k1", "k2", "k3"} {
		require.NoError(t, g.check(k, []byte("a")))
	}
	require.NoError(t, g.check("k1", []byte("a")))
	require.NoError(t, g.check("k4", []byte("a")))
	require.NoError(t, g.check("k5", []byte("a")))
	assert.ErrorIs(t, g.check("k1", []byte("b")), ErrKeyReused)
	assert.NoError(t, g.check("k2", []byte("b")))
}

func TestKeyGuardAge(t *testing.T) {
	t.Parallel()
	synctest.Test(t, func(t *testing.T) {
		g := newKeyGuard(100, time.Hour)
		require.NoError(t, g.check("k", []byte("a")))
		time.Sleep(59 * time.Minute)
		assert.ErrorIs(t, g.check("k", []byte("b")), ErrKeyReused)
		require.NoError(t, g.check("k", []byte("a")), "use refreshes the entry")
		time.Sleep(59 * time.Minute)
		assert.ErrorIs(t, g.check("k", []byte("b")), ErrKeyReused)
		time.Sleep(time.Hour)
		assert.NoError(t, g.check("k", []byte("b")), "an entry older than maxAge is gone")
		assert.Equal(t, 1, g.size())
	})
}

func TestKeyGuardConcurrent(t *testing.T) {
	t.Parallel()
	g := newKeyGuard(50, time.Hour)
	var (
		wg      sync.WaitGroup
		mu      sync.Mutex
		refused int
	)
	for w := range 16 {
		wg.Go(func() {
			for i := range 500 {
				key := fmt.Sprint("k", i%80)
				if err := g.check(key, []byte(fmt.Sprint(i%80, "-", w%2))); err != nil {
					mu.Lock()
					refused++
					mu.Unlock()
				}
			}
		})
	}
	wg.Wait()
	assert.LessOrEqual(t, g.size(), 50)
	assert.Positive(t, refused, "two bodies per key collide")
}

// TestDeriveKeyIsUUIDv5: the hand-rolled hashing gives exactly what
// uuid.NewSHA1 gives, so derived keys never change.
func TestDeriveKeyIsUUIDv5(t *testing.T) {
	t.Parallel()
	long := strings.Repeat("r", 300) // past the stack buffer
	for _, c := range [][3]string{{"501", "createOrder", "shop-1"}, {"", "", ""}, {"ab", "c", "d"}, {"a", "bc", "d"}, {"501", "createOrder", long}} {
		name := []byte{}
		for _, part := range c {
			name = strconv.AppendInt(name, int64(len(part)), 10)
			name = append(name, ':')
			name = append(name, part...)
		}
		want := uuid.NewSHA1(keyNamespace, name).String()
		assert.Equal(t, want, DeriveKey(c[0], c[1], c[2]), "%q", c)
	}
}

// guardFill gives g n distinct derived keys, as a long-lived client's
// bookings would.
func guardFill(tb testing.TB, g *keyGuard, n int) {
	tb.Helper()
	body := []byte(`{"data":{"kind":"order"}}`)
	for i := range n {
		if _, err := g.begin(DeriveKey("501", "createOrder", strconv.Itoa(i)), body); err != nil {
			tb.Fatal(err)
		}
	}
}

// TestKeyGuardMemory: a full guard (a long-lived client holds up to
// 100,000 keys) costs little memory and nothing to the garbage collector:
// what it stores has no pointers to scan.
func TestKeyGuardMemory(t *testing.T) {
	// Not parallel: the heap is measured.
	for _, typ := range []reflect.Type{reflect.TypeFor[keyEntry](), reflect.TypeFor[keyID](), reflect.TypeFor[slotPage]()} {
		assert.False(t, hasPointers(typ), "%v holds pointers the collector must scan", typ)
	}

	const n = 50_000
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	g := newKeyGuard(100_000, 24*time.Hour)
	guardFill(t, g, n)
	runtime.GC()
	runtime.ReadMemStats(&after)
	perKey := (float64(after.HeapAlloc) - float64(before.HeapAlloc)) / n
	t.Logf("%.0f bytes a key", perKey)
	assert.Less(t, perKey, 200.0, "bytes held a key")
	assert.Equal(t, n, g.size())
	runtime.KeepAlive(g)
}

// TestKeyGuardEntriesStayPut: growing the guard never moves what it holds.
// Every call takes the guard's lock, so a growth that copied the entries
// (a slice, up to 9 MB at 100,000 keys) would stall every call of the
// client while it ran.
func TestKeyGuardEntriesStayPut(t *testing.T) {
	t.Parallel()
	g := newKeyGuard(100_000, time.Hour)
	id := idOf(DeriveKey("501", "createOrder", "0"))
	guardFill(t, g, 1)
	first := g.slot(g.index[id])
	guardFill(t, g, 5*slotsPerPage+1) // the first key again, then new ones
	assert.Same(t, first, g.slot(g.index[id]), "the first key's entry moved as the guard grew")
	assert.Equal(t, id, first.id)
	assert.Len(t, g.pages, 6)
}

// TestKeyGuardPagesReused: a full guard reuses the slots of evicted keys,
// across pages, and evicts the least recently used key first.
func TestKeyGuardPagesReused(t *testing.T) {
	t.Parallel()
	const limit = 2*slotsPerPage + 500
	g := newKeyGuard(limit, 0)
	key := func(i int) string { return fmt.Sprint("k", i) }
	held := func(i int) bool {
		g.mu.Lock()
		defer g.mu.Unlock()
		_, ok := g.index[idOf(key(i))]
		return ok
	}
	for i := range 2 * limit {
		require.NoError(t, g.check(key(i), []byte("a")))
		switch i {
		case limit - 1: // full: the oldest key is used again before it goes
			require.NoError(t, g.check(key(0), []byte("a")))
		case limit:
			assert.True(t, held(0), "a key used again outlives older ones")
			assert.False(t, held(1), "the least recently used key goes first")
		}
	}
	assert.Equal(t, limit, g.size())
	assert.Len(t, g.pages, 3, "evicted keys' slots are reused")
	for _, i := range []int{limit, limit + limit/2, 2*limit - 1} {
		assert.ErrorIs(t, g.check(key(i), []byte("b")), ErrKeyReused, "key %d is kept", i)
	}
	for _, i := range []int{0, 1, limit - 1} {
		assert.NoError(t, g.check(key(i), []byte("b")), "key %d was evicted", i)
	}
}

// hasPointers reports whether a value of t holds a pointer.
func hasPointers(t reflect.Type) bool {
	switch t.Kind() {
	case reflect.Array:
		return t.Len() > 0 && hasPointers(t.Elem())
	case reflect.Struct:
		for i := range t.NumField() {
			if hasPointers(t.Field(i).Type) {
				return true
			}
		}
		return false
	case reflect.Bool, reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64, reflect.Uintptr,
		reflect.Float32, reflect.Float64, reflect.Complex64, reflect.Complex128:
		return false
	default:
		return true
	}
}

// BenchmarkKeyGuardGC is one garbage collection of a heap holding a full
// guard of 100,000 keys: the price every collection of a long-lived
// client's process pays for the guard.
func BenchmarkKeyGuardGC(b *testing.B) {
	g := newKeyGuard(100_000, 24*time.Hour)
	guardFill(b, g, 100_000)
	runtime.GC()
	b.ResetTimer()
	for b.Loop() {
		runtime.GC()
	}
	runtime.KeepAlive(g)
}

// BenchmarkKeyGuardFill fills a guard with 100,000 booking keys, each
// begun and ended as Create does, and reports the time a key and the
// longest single key: every call waits that long for the guard's lock.
func BenchmarkKeyGuardFill(b *testing.B) {
	const n = 100_000
	keys := make([]string, n)
	for i := range keys {
		keys[i] = DeriveKey("501", "createOrder", strconv.Itoa(i))
	}
	body := []byte(`{"data":{"kind":"order"}}`)
	var worst, total time.Duration
	fills := 0
	for b.Loop() {
		g := newKeyGuard(n, 24*time.Hour)
		for _, k := range keys {
			start := time.Now()
			st, err := g.begin(k, body)
			if err != nil {
				b.Fatal(err)
			}
			g.end(st, true, time.Time{}, time.Time{})
			d := time.Since(start)
			total += d
			worst = max(worst, d)
		}
		fills++
	}
	b.ReportMetric(float64(total.Nanoseconds())/float64(fills*n), "ns/key")
	b.ReportMetric(float64(worst.Nanoseconds())/1e3, "worst-µs/key")
}
