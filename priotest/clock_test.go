package priotest

import (
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// fakeClock is a clock a test moves by hand.
type fakeClock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *fakeClock) Add(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

// TestWithClockAndHandler serves Handler() from an httptest server and
// drives expiry with WithClock instead of sleeping.
func TestWithClockAndHandler(t *testing.T) {
	t.Parallel()
	clock := &fakeClock{now: time.Date(2030, 3, 1, 9, 0, 0, 0, time.UTC)}
	s, err := NewUnstarted(WithClock(clock.Now), WithTokenTTL(time.Hour), WithHoldTime(5*time.Minute))
	require.NoError(t, err)
	defer s.Close()
	ts := httptest.NewServer(s.Handler())
	defer ts.Close()
	a := &api{t: t, base: ts.URL + "/v3.8/distributor", hc: ts.Client()}
	a.login()
	assert.Equal(t, clock.Now(), s.Now())

	slot := firstSlot(t, s, ProductTimeSlot)
	assert.Contains(t, slot, "-20300302-", "slots follow the sandbox clock")
	r := a.do(http.MethodPost, "/reservations", reservationBody("clock-1", ticket{product: ProductTimeSlot, availability: slot, adults: 1}))
	require.Equal(t, http.StatusCreated, r.status, "%s", r.body)
	assert.Equal(t, "2030-03-01T10:05:00+01:00", dig(t, r.json(t), "data", "reservation", "reservation_valid_until"))
	ref := dig(t, r.json(t), "data", "reservation", "reservation_reference").(string)

	clock.Add(5 * time.Minute)
	got := a.do(http.MethodGet, "/reservations/"+ref, nil)
	assert.Equal(t, "BOOKING_RESERVATION_EXPIRED", dig(t, got.json(t), "data", "reservation", "reservation_details", 0, "booking_status"))

	clock.Add(time.Hour)
	assert.Equal(t, http.StatusUnauthorized, a.do(http.MethodGet, "/products", nil).status, "the token expired on the sandbox clock")
}
