package prio_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	prio "github.com/priosdk/prio-go"
	"github.com/priosdk/prio-go/priotest"
)

// wireLog records what reaches the sandbox, in front of its handler.
type wireLog struct {
	mu   sync.Mutex
	reqs []wireRequest
}

type wireRequest struct {
	method, path, query, key string
	body                     map[string]any
}

func (l *wireLog) wrap(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		r.Body = io.NopCloser(bytes.NewReader(b))
		rec := wireRequest{method: r.Method, path: r.URL.Path, query: r.URL.RawQuery, key: r.Header.Get("Idempotency-Key")}
		_ = json.Unmarshal(b, &rec.body)
		l.mu.Lock()
		l.reqs = append(l.reqs, rec)
		l.mu.Unlock()
		next.ServeHTTP(w, r)
	})
}

// last returns the last request for method and path.
func (l *wireLog) last(t *testing.T, method, path string) wireRequest {
	t.Helper()
	l.mu.Lock()
	defer l.mu.Unlock()
	for i := len(l.reqs) - 1; i >= 0; i-- {
		if l.reqs[i].method == method && l.reqs[i].path == path {
			return l.reqs[i]
		}
	}
	t.Fatalf("no %s %s reached the sandbox", method, path)
	return wireRequest{}
}

func openSpotsOf(t *testing.T, c *prio.Client, slot string) int {
	t.Helper()
	day, err := time.Parse("20060102", slot[len(priotest.ProductTimeSlot)+1:len(priotest.ProductTimeSlot)+9])
	require.NoError(t, err)
	slots, err := c.Products.Availability(t.Context(), priotest.ProductTimeSlot, &prio.AvailabilityParams{FromDate: prio.Date(day)})
	require.NoError(t, err)
	for _, a := range slots {
		if a.AvailabilityId != nil && *a.AvailabilityId == slot {
			return a.AvailabilitySpots.AvailabilitySpotsOpen
		}
	}
	t.Fatalf("slot %s not listed", slot)
	return 0
}

// TestReservationUpdateAndPromocodesOnTheSandbox drives Update, the
// promocode calls, a partial Cancel and Confirm against the sandbox, and
// checks both what the sandbox did (capacity, prices) and what went on
// the wire.
func TestReservationUpdateAndPromocodesOnTheSandbox(t *testing.T) {
	t.Parallel()
	s := priotest.NewServer(t)
	var wire wireLog
	front := httptest.NewServer(wire.wrap(s.Handler()))
	defer front.Close()
	c, err := prio.NewClient(prio.WithBaseURL(front.URL+"/v3.8/distributor"),
		prio.WithCredentials(priotest.DefaultClientID, priotest.DefaultClientSecret),
		prio.WithDistributorID(priotest.DefaultDistributorID), prio.WithRetryPolicy(fastPolicy()))
	require.NoError(t, err)
	ctx := t.Context()

	avail, err := c.Products.Availability(ctx, priotest.ProductTimeSlot,
		&prio.AvailabilityParams{FromDate: prio.Date(s.Now().AddDate(0, 0, 2))})
	require.NoError(t, err)
	require.NotEmpty(t, avail)
	slot := *avail[0].AvailabilityId
	adults := func(n int) []prio.ProductTypeDetail {
		return []prio.ProductTypeDetail{{ProductTypeId: priotest.ProductTypeAdult, ProductTypeCount: n}}
	}
	res, err := c.Reservations.Create(ctx, &prio.Reservation{ReservationExternalReference: "cart-1",
		ReservationDetails: []prio.ReservationLine{{BookingExternalReference: "cart-1-1", ProductId: priotest.ProductTimeSlot,
			ProductAvailabilityId: &slot, ProductTypeDetails: adults(2)}}})
	require.NoError(t, err)
	ref, line := *res.ReservationReference, *res.ReservationDetails[0].BookingReservationReference
	require.Equal(t, priotest.SlotCapacity-2, openSpotsOf(t, c, slot))

	res, err = c.Reservations.Update(ctx, ref, &prio.Reservation{ReservationExternalReference: "cart-1", ReservationDetails: []prio.ReservationLine{
		{BookingReservationReference: &line, BookingExternalReference: "cart-1-1", ProductId: priotest.ProductTimeSlot,
			ProductAvailabilityId: &slot, ProductTypeDetails: adults(3)},
		{BookingExternalReference: "cart-1-2", ProductId: priotest.ProductOpen, ProductTypeDetails: adults(1)},
	}})
	require.NoError(t, err)
	require.Len(t, res.ReservationDetails, 2, "one line replaced, one added")
	assert.Len(t, res.ReservationDetails[0].ProductTypeDetails, 3)
	assert.Equal(t, prio.Decimal("115.00"), *res.ReservationPricing.PriceTotal, "3 x 30.00 + 25.00")
	assert.Equal(t, priotest.SlotCapacity-3, openSpotsOf(t, c, slot), "the hold moved from 2 to 3 spots")
	upd := wire.last(t, http.MethodPut, "/v3.8/distributor/reservations/"+ref)
	sent := upd.body["data"].(map[string]any)["reservation"].(map[string]any)
	assert.Equal(t, priotest.DefaultDistributorID, sent["reservation_distributor_id"], "the client's distributor id is filled in")
	assert.NotContains(t, sent, "reservation_pricing", "nothing read-only or unset is sent")

	_, err = c.Reservations.Update(ctx, ref, &prio.Reservation{ReservationExternalReference: "cart-1", ReservationDetails: []prio.ReservationLine{
		{BookingReservationReference: &line, BookingExternalReference: "cart-1-1", ProductId: priotest.ProductTimeSlot,
			ProductAvailabilityId: &slot, ProductTypeDetails: adults(priotest.SlotCapacity + 1)}}})
	var full *prio.APIError
	require.ErrorAs(t, err, &full)
	assert.Equal(t, http.StatusConflict, full.StatusCode)
	assert.Equal(t, priotest.SlotCapacity-3, openSpotsOf(t, c, slot), "a refused update keeps the hold")

	res, err = c.Reservations.AddPromocode(ctx, ref, priotest.PromoPercent)
	require.NoError(t, err)
	assert.Equal(t, prio.Decimal("103.50"), *res.ReservationPricing.PriceTotal, "10% off 115.00")
	require.NotNil(t, res.ReservationPromocodes)
	assert.Equal(t, priotest.PromoPercent, (*res.ReservationPromocodes)[0].PromoCode)
	add := wire.last(t, http.MethodPost, "/v3.8/distributor/reservations/"+ref+"/promocode")
	assert.Equal(t, "promo_code="+priotest.PromoPercent, add.query)
	assert.Equal(t, prio.DeriveKey(priotest.DefaultDistributorID, "addPromocode", ref+"\x00"+priotest.PromoPercent), add.key, "a POST carries a derived key")

	_, err = c.Reservations.AddPromocode(ctx, ref, priotest.PromoExpired)
	var declined *prio.APIError
	require.True(t, errors.As(err, &declined), "%v", err)
	assert.Equal(t, prio.CodeInvalidPromocode, declined.Code)
	assert.NotEmpty(t, declined.Message, "a message for the guest")

	res, err = c.Reservations.RemovePromocode(ctx, ref, priotest.PromoPercent)
	require.NoError(t, err)
	assert.Equal(t, prio.Decimal("115.00"), *res.ReservationPricing.PriceTotal)
	wire.last(t, http.MethodDelete, "/v3.8/distributor/reservations/"+ref+"/promocode/"+priotest.PromoPercent)
	_, err = c.Reservations.RemovePromocode(ctx, ref, priotest.PromoPercent)
	assert.ErrorIs(t, err, prio.ErrNotFound)

	openLine := *res.ReservationDetails[1].BookingReservationReference
	res, err = c.Reservations.Cancel(ctx, ref, &prio.CancelOptions{BookingReferences: []string{openLine}})
	require.NoError(t, err)
	assert.Equal(t, prio.Decimal("90.00"), *res.ReservationPricing.PriceTotal)
	cancel := wire.last(t, http.MethodDelete, "/v3.8/distributor/reservations/"+ref)
	assert.Equal(t, "booking_reservation_reference="+openLine, cancel.query)

	_, err = c.Reservations.AddPromocode(ctx, ref, priotest.PromoFixed)
	require.NoError(t, err)
	order, err := c.Reservations.Confirm(ctx, *res.ReservationReference, &prio.OrderRequest{OrderExternalReference: "cart-1-order", OrderLanguage: "en"})
	require.NoError(t, err)
	assert.Equal(t, prio.Decimal("85.00"), *order.OrderPricing.PriceTotal, "the order keeps the 5.00 off")
	assert.Equal(t, priotest.SlotCapacity-3, openSpotsOf(t, c, slot), "the held spots are now booked")
}
