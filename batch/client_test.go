package batch_test

import (
	"fmt"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	prio "github.com/priosdk/prio-go"
	"github.com/priosdk/prio-go/batch"
	"github.com/priosdk/prio-go/generated"
	"github.com/priosdk/prio-go/priotest"
)

// sandboxClient starts a sandbox that deduplicates nothing and a client
// for it with short timeouts.
func sandboxClient(t *testing.T, opts ...priotest.Option) (*priotest.Server, *prio.Client) {
	t.Helper()
	s, err := priotest.Start("127.0.0.1:0", append([]priotest.Option{priotest.WithIdempotency(priotest.IdempotencyNone), priotest.WithRequestLimit(0)}, opts...)...)
	require.NoError(t, err)
	t.Cleanup(s.Close)
	p := prio.DefaultRetryPolicy()
	p.BookingAttemptTimeout, p.AttemptTimeout = 2*time.Second, 2*time.Second
	p.BaseDelay, p.MaxDelay, p.RateLimitedDelay = time.Millisecond, 10*time.Millisecond, 10*time.Millisecond
	p.RequestsPerMinute = 0
	c, err := prio.NewClient(
		prio.WithBaseURL(s.URL()),
		prio.WithCredentials(priotest.DefaultClientID, priotest.DefaultClientSecret),
		prio.WithDistributorID(priotest.DefaultDistributorID),
		prio.WithRetryPolicy(p),
	)
	require.NoError(t, err)
	return s, c
}

func openOrder(ref string) *prio.OrderRequest {
	pid := priotest.ProductOpen
	return &prio.OrderRequest{
		OrderExternalReference: ref,
		OrderBookings: []generated.BookingOption{{
			ProductId:          &pid,
			ProductTypeDetails: &[]generated.RegularBookingItem{{ProductTypeId: priotest.ProductTypeAdult, ProductTypeCount: 1}},
		}},
	}
}

func TestClientBooker(t *testing.T) {
	t.Parallel()
	// The first create is processed but its connection dropped: the client
	// finds the order instead of booking it again.
	s, c := sandboxClient(t, priotest.WithFaults(priotest.Sequence("createOrder", priotest.FaultDropAfter)))
	b := batch.ClientBooker(c)

	rec, err := b.Book(t.Context(), openOrder("CB-1"))
	require.NoError(t, err)
	assert.NotEmpty(t, rec.OrderReference)
	assert.Equal(t, 1, rec.Sends)
	assert.Equal(t, 1, s.OrdersFor("CB-1"))

	got, err := b.Find(t.Context(), "CB-1")
	require.NoError(t, err)
	assert.Equal(t, rec.OrderReference, got)

	_, err = b.Find(t.Context(), "CB-missing")
	assert.ErrorIs(t, err, prio.ErrNotFound)

	pid := priotest.ProductDeclined
	declined := openOrder("CB-2")
	declined.OrderBookings[0].ProductId = &pid
	rec, err = b.Book(t.Context(), declined)
	var apiErr *prio.APIError
	require.ErrorAs(t, err, &apiErr)
	assert.Equal(t, 422, apiErr.StatusCode)
	assert.Equal(t, 1, rec.Sends)
}

// TestRunnerWithClientOnFlakySandbox books through the real client
// against a sandbox that injects faults and deduplicates nothing.
func TestRunnerWithClientOnFlakySandbox(t *testing.T) {
	t.Parallel()
	flaky, err := priotest.ProfileByName("flaky")
	require.NoError(t, err)
	s, c := sandboxClient(t, priotest.WithFaults(flaky), priotest.WithSeed(3))
	j, err := batch.OpenSQLite(filepath.Join(t.TempDir(), "j.journal"))
	require.NoError(t, err)
	defer j.Close()

	const n = 150
	rows := func(yield func(batch.Row, error) bool) {
		for i := range n {
			if !yield(batch.Row{Line: i + 1, Request: openOrder(fmt.Sprintf("FLAKY-%03d", i))}, nil) {
				return
			}
		}
	}
	r := &batch.Runner{Booker: batch.ClientBooker(c), Journal: j, ResolveDelay: 300 * time.Millisecond}
	sum, err := r.Run(t.Context(), rows)
	require.NoError(t, err)
	assert.Equal(t, n, sum.Booked, "%+v", sum)
	st := s.Stats()
	assert.Equal(t, n, st.OrdersTotal)
	assert.Zero(t, st.DuplicateExternalReferences)

	again, err := r.Run(t.Context(), rows)
	require.NoError(t, err)
	assert.Equal(t, n, again.Booked)
	assert.Zero(t, again.Sends)
	assert.Equal(t, n, s.Stats().OrdersTotal)
}
