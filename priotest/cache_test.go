package priotest

import (
	"net/http"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// newCacheServer is a sandbox with a cache lag on a clock the test moves.
func newCacheServer(t *testing.T, lag time.Duration, opts ...Option) (*Server, *api, *fakeClock) {
	t.Helper()
	clock := &fakeClock{now: time.Date(2030, 3, 1, 9, 0, 0, 0, time.UTC)}
	opts = append([]Option{WithClock(clock.Now), WithOrderCacheLag(lag), WithTokenTTL(24 * time.Hour)}, opts...)
	s := NewServer(t, opts...)
	return s, newAPI(t, s).login(), clock
}

func book(t *testing.T, a *api, ext, product string) string {
	t.Helper()
	r := a.do(http.MethodPost, "/orders", orderBody(ext, ticket{product: product, adults: 1}))
	require.Equal(t, http.StatusCreated, r.status, "%s", r.body)
	return dig(t, r.json(t), "data", "order", "order_reference").(string)
}

// TestCachedReadsMissNewOrders: a read from the cache does not see an order
// committed less than the lag ago; cache=false (or 0) always does.
func TestCachedReadsMissNewOrders(t *testing.T) {
	t.Parallel()
	const lag = 30 * time.Second
	tests := []struct {
		name   string
		cache  string // the cache parameter; "" sends none
		lag    time.Duration
		after  time.Duration // since the order was committed
		seen   bool
		cached bool
	}{
		{"cached, just booked", "", lag, 0, false, true},
		{"cached, a moment before the lag", "", lag, lag - time.Millisecond, false, true},
		{"cached, once the lag passed", "", lag, lag, true, true},
		{"cache=true", "true", lag, time.Second, false, true},
		{"cache=false", "false", lag, 0, true, false},
		{"cache=FALSE", "FALSE", lag, 0, true, false},
		{"cache=0", "0", lag, 0, true, false},
		{"no lag", "", 0, 0, true, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			s, a, clock := newCacheServer(t, tt.lag)
			ref := book(t, a, "cache-new", ProductOpen)
			clock.Add(tt.after)
			q := ""
			if tt.cache != "" {
				q = "cache=" + tt.cache
			}

			listed := list(t, a, "order_external_reference=cache-new&"+q)
			got := a.do(http.MethodGet, "/orders/"+ref+"?"+q, nil)
			all := list(t, a, q)
			if tt.seen {
				assert.EqualValues(t, 1, listed["total_items"])
				assert.EqualValues(t, 1, all["total_items"])
				require.Equal(t, http.StatusOK, got.status, "%s", got.body)
				assert.Equal(t, ref, dig(t, got.json(t), "data", "order", "order_reference"))
			} else {
				assert.EqualValues(t, 0, listed["total_items"], "the cache does not list it yet")
				assert.EqualValues(t, 0, all["total_items"])
				assert.Equal(t, http.StatusNotFound, got.status, "%s", got.body)
				assert.Equal(t, "NOT_FOUND", got.errorCode(t), "as for an unknown reference")
			}
			st := s.Stats()
			if tt.cached {
				assert.Equal(t, 3, st.CachedReads)
				assert.Zero(t, st.UncachedReads)
			} else {
				assert.Zero(t, st.CachedReads)
				assert.Equal(t, 3, st.UncachedReads)
			}
			assert.Equal(t, 1, s.OrdersFor("cache-new"), "the order exists all along")
		})
	}
}

// TestCachedReadsLagChanges: a change made less than the lag ago is not
// yet visible in cached reads, which show the version before it.
func TestCachedReadsLagChanges(t *testing.T) {
	t.Parallel()
	const lag = 30 * time.Second
	update := func(t *testing.T, a *api, ref string) {
		body := map[string]any{"data": map[string]any{"order": map[string]any{
			"order_distributor_id":     DefaultDistributorID,
			"order_external_reference": "cache-change",
			"order_language":           "nl",
			"order_channel":            "PARTNER",
			"order_status":             "ORDER_CONFIRMED",
			"order_view_type":          "DISTRIBUTOR",
		}}}
		r := a.do(http.MethodPut, "/orders/"+ref, body)
		require.Equal(t, http.StatusOK, r.status, "%s", r.body)
	}
	cancel := func(t *testing.T, a *api, ref string) {
		r := a.do(http.MethodDelete, "/orders/"+ref, nil)
		require.Equal(t, http.StatusOK, r.status, "%s", r.body)
	}
	tests := []struct {
		name          string
		product       string
		change        func(t *testing.T, a *api, ref string) // nil: the clock alone changes it
		field         string
		before, after any
	}{
		{"cancel", ProductOpen, cancel, "order_status", "ORDER_CONFIRMED", "ORDER_CANCELLED"},
		{"update", ProductOpen, update, "order_language", "en", "nl"},
		{"slow confirmation", ProductSlow, nil, "order_status", "ORDER_PENDING", "ORDER_CONFIRMED"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			slowDelay := time.Minute
			s, a, clock := newCacheServer(t, lag, WithSlowSupplierDelay(slowDelay))
			ref := book(t, a, "cache-change", tt.product)
			clock.Add(time.Minute) // the order is in the cache
			if tt.change != nil {
				tt.change(t, a, ref)
			}
			// The change happened now; a slow order confirmed at slowDelay,
			// which is now as well.
			field := func(q string) any {
				r := a.do(http.MethodGet, "/orders/"+ref+q, nil)
				require.Equal(t, http.StatusOK, r.status, "%s", r.body)
				fromGet := dig(t, r.json(t), "data", "order", tt.field)
				items := list(t, a, "order_external_reference=cache-change&"+q[min(len(q), 1):])["items"].([]any)
				require.Len(t, items, 1)
				assert.Equal(t, fromGet, dig(t, items[0], tt.field), "list and detail agree")
				return fromGet
			}
			assert.Equal(t, tt.after, field("?cache=false"), "the live state")
			assert.Equal(t, tt.before, field(""), "the cache still has the version before")
			clock.Add(lag - time.Millisecond)
			assert.Equal(t, tt.before, field(""))
			clock.Add(time.Millisecond)
			assert.Equal(t, tt.after, field(""), "the change reached the cache")
			assert.Positive(t, s.Stats().CachedReads)
		})
	}
}

// TestCacheVersionsStayFew: an order changed again and again keeps only
// the versions a cached read can still see.
func TestCacheVersionsStayFew(t *testing.T) {
	t.Parallel()
	now := time.Date(2030, 3, 1, 9, 0, 0, 0, time.UTC)
	st := newState(now, 1, 30*time.Second)
	o := &order{status: "A"}
	for i := range 100 {
		o.version = i
		st.commit(o, now.Add(time.Duration(i)*10*time.Second))
	}
	assert.LessOrEqual(t, len(o.versions), 5)
	end := now.Add(99 * 10 * time.Second)
	assert.Equal(t, 96, st.cachedView(o, end).version, "the last version at least 30s old")
	assert.Equal(t, 99, st.cachedView(o, end.Add(30*time.Second)).version)
	o.version = 1000
	assert.Equal(t, 99, st.cachedView(o, end.Add(time.Hour)).version, "a frozen copy, not the live order")
}
