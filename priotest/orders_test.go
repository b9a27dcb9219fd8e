package priotest

import (
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"testing/synctest"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestCreateOrderOpenTicket(t *testing.T) {
	t.Parallel()
	s := NewServer(t)
	a := newAPI(t, s).login()
	r := a.do(http.MethodPost, "/orders", orderBody("open-1", ticket{product: ProductOpen, adults: 2, children: 1}))
	require.Equal(t, http.StatusCreated, r.status, "%s", r.body)
	m := r.json(t)
	assert.Equal(t, "3.8.0", m["api_version"])
	assert.Equal(t, "order", dig(t, m, "data", "kind"))
	o := dig(t, m, "data", "order")
	ref := dig(t, o, "order_reference").(string)
	assert.GreaterOrEqual(t, len(ref), 8)
	assert.Equal(t, "ORDER_CONFIRMED", dig(t, o, "order_status"))
	assert.Equal(t, "open-1", dig(t, o, "order_external_reference"))
	assert.Equal(t, "62.50", dig(t, o, "order_pricing", "price_total"), "2 x 25.00 + 12.50")
	assert.NotContains(t, dig(t, o, "order_created"), "Z")

	b := dig(t, o, "order_bookings", 0)
	assert.Equal(t, "BOOKING_CONFIRMED", dig(t, b, "booking_status"))
	assert.GreaterOrEqual(t, len(dig(t, b, "booking_reference").(string)), 8)
	assert.Equal(t, "TIME_OPEN", dig(t, b, "product_admission_type"))
	pax := dig(t, b, "product_type_details").([]any)
	require.Len(t, pax, 3, "one entry per person")
	codes := map[string]bool{}
	for _, p := range pax {
		code := dig(t, p, "product_type_code").(string)
		assert.Len(t, code, 12)
		codes[code] = true
		assert.EqualValues(t, 1, dig(t, p, "product_type_count"))
	}
	assert.Len(t, codes, 3, "every person gets a code of their own")
	assert.Equal(t, 1, s.OrdersFor("open-1"))

	got := a.do(http.MethodGet, "/orders/"+ref, nil)
	require.Equal(t, http.StatusOK, got.status)
	assert.Equal(t, ref, dig(t, got.json(t), "data", "order", "order_reference"))
	assert.Equal(t, http.StatusNotFound, a.do(http.MethodGet, "/orders/00000000000", nil).status)
}

func TestCreateOrderRefusals(t *testing.T) {
	t.Parallel()
	s := NewServer(t)
	a := newAPI(t, s).login()
	slot := firstSlot(t, s, ProductTimeSlot)
	otherDistributor := orderBody("r-dist", ticket{product: ProductOpen, adults: 1})
	otherDistributor["data"].(map[string]any)["order"].(map[string]any)["order_distributor_id"] = "999"
	mixed := orderBody("r-mixed", ticket{product: ProductOpen, adults: 1})
	order := mixed["data"].(map[string]any)["order"].(map[string]any)
	order["order_bookings"] = append(order["order_bookings"].([]map[string]any),
		map[string]any{"booking_option_type": "CONFIRM_RESERVATION", "reservation_reference": "70000001"})
	tests := []struct {
		name   string
		body   map[string]any
		status int
		code   string
	}{
		{"declining supplier", orderBody("r-declined", ticket{product: ProductDeclined, adults: 1}), http.StatusUnprocessableEntity, "BOOKING_DECLINED"},
		{"unknown product", orderBody("r-unknown", ticket{product: "1", adults: 1}), http.StatusUnprocessableEntity, "INVALID_PRODUCT"},
		{"slot product without availability", orderBody("r-noslot", ticket{product: ProductTimeSlot, adults: 1}), http.StatusBadRequest, "INVALID_REQUEST"},
		{"availability of another product", orderBody("r-otherslot", ticket{product: ProductTimeDate, availability: slot, adults: 1}), http.StatusUnprocessableEntity, "INVALID_AVAILABILITY"},
		{"more than the slot holds", orderBody("r-full", ticket{product: ProductTimeSlot, availability: slot, adults: SlotCapacity + 1}), http.StatusConflict, "NO_AVAILABILITY"},
		{"another distributor", otherDistributor, http.StatusForbidden, "FORBIDDEN"},
		{"mixed booking options", mixed, http.StatusBadRequest, "INVALID_REQUEST"},
		{"unknown reservation", confirmBody("r-nores", "70000001"), http.StatusNotFound, "NOT_FOUND"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := a.do(http.MethodPost, "/orders", tt.body)
			assert.Equal(t, tt.status, r.status, "%s", r.body)
			assert.Equal(t, tt.code, r.errorCode(t))
		})
	}
	assert.Zero(t, s.Stats().OrdersTotal, "no refusal creates an order")
}

func TestSlotCapacity(t *testing.T) {
	t.Parallel()
	s := NewServer(t, WithIdempotency(IdempotencyNone))
	a := newAPI(t, s).login()
	for _, tc := range []struct {
		product  string
		capacity int
	}{{ProductTimeSlot, SlotCapacity}, {ProductTimeDate, DayCapacity}} {
		slot := firstSlot(t, s, tc.product)
		require.Equal(t, tc.capacity, openSpots(t, a, tc.product, slot))

		first := a.do(http.MethodPost, "/orders", orderBody("cap-"+slot+"-a", ticket{product: tc.product, availability: slot, adults: tc.capacity - 2}))
		require.Equal(t, http.StatusCreated, first.status, "%s", first.body)
		assert.Equal(t, slot, dig(t, first.json(t), "data", "order", "order_bookings", 0, "product_availability_id"))
		assert.Equal(t, 2, openSpots(t, a, tc.product, slot))

		full := a.do(http.MethodPost, "/orders", orderBody("cap-"+slot+"-b", ticket{product: tc.product, availability: slot, adults: 2, children: 1}))
		assert.Equal(t, http.StatusConflict, full.status, "%s", full.body)
		assert.Equal(t, "NO_AVAILABILITY", full.errorCode(t))

		last := a.do(http.MethodPost, "/orders", orderBody("cap-"+slot+"-c", ticket{product: tc.product, availability: slot, adults: 1, children: 1}))
		require.Equal(t, http.StatusCreated, last.status, "%s", last.body)
		assert.Equal(t, 0, openSpots(t, a, tc.product, slot))

		ref := dig(t, first.json(t), "data", "order", "order_reference").(string)
		c := a.do(http.MethodDelete, "/orders/"+ref, nil)
		require.Equal(t, http.StatusOK, c.status, "%s", c.body)
		assert.Equal(t, tc.capacity-2, openSpots(t, a, tc.product, slot), "cancelling gives the spots back")
	}
}

func TestAvailabilityListing(t *testing.T) {
	t.Parallel()
	s := NewServer(t)
	a := newAPI(t, s).login()
	day := s.Now().In(sandboxZone).AddDate(0, 0, 1)
	from, to := day.Format("2006-01-02"), day.AddDate(0, 0, 2).Format("2006-01-02")

	r := a.do(http.MethodGet, "/products/"+ProductTimeSlot+"/availability?from_date="+from+"&to_date="+to, nil)
	require.Equal(t, http.StatusOK, r.status, "%s", r.body)
	assert.EqualValues(t, 3*len(slotStarts), dig(t, r.json(t), "data", "total_items"), "three days of four slots")
	first := dig(t, r.json(t), "data", "items", 0)
	assert.True(t, strings.HasSuffix(dig(t, first, "availability_from_date_time").(string), "+01:00"))

	multi := a.do(http.MethodGet, "/availability?from_date="+from+"&product_id="+ProductTimeSlot+"&product_id="+ProductTimeDate, nil)
	require.Equal(t, http.StatusOK, multi.status, "%s", multi.body)
	assert.EqualValues(t, len(slotStarts)+1, dig(t, multi.json(t), "data", "total_items"))

	open := a.do(http.MethodGet, "/products/"+ProductOpen+"/availability?from_date="+from, nil)
	require.Equal(t, http.StatusOK, open.status)
	assert.EqualValues(t, 0, dig(t, open.json(t), "data", "total_items"), "an open ticket has no availability")

	tooLong := a.do(http.MethodGet, "/products/"+ProductTimeSlot+"/availability?from_date="+from+"&to_date="+day.AddDate(0, 0, 100).Format("2006-01-02"), nil)
	assert.Equal(t, http.StatusBadRequest, tooLong.status)
	assert.Equal(t, http.StatusBadRequest, a.do(http.MethodGet, "/products/"+ProductTimeSlot+"/availability", nil).status, "from_date is required")
}

func TestProducts(t *testing.T) {
	t.Parallel()
	s := NewServer(t)
	a := newAPI(t, s).login()
	r := a.do(http.MethodGet, "/products", nil)
	require.Equal(t, http.StatusOK, r.status)
	m := r.json(t)
	assert.EqualValues(t, len(catalogue), dig(t, m, "data", "total_items"))
	admissions := map[string]string{}
	for _, it := range dig(t, m, "data", "items").([]any) {
		admissions[dig(t, it, "product_id").(string)] = dig(t, it, "product_admission_type").(string)
		ids := []string{}
		for _, d := range dig(t, it, "product_type_seasons", 0, "product_type_season_details").([]any) {
			ids = append(ids, dig(t, d, "product_type_id").(string))
		}
		assert.ElementsMatch(t, []string{ProductTypeAdult, ProductTypeChild}, ids)
	}
	assert.Equal(t, map[string]string{
		ProductOpen: "TIME_OPEN", ProductTimeSlot: "TIME_SLOT", ProductTimeDate: "TIME_DATE",
		ProductSlow: "TIME_OPEN", ProductDeclined: "TIME_OPEN",
	}, admissions)

	one := a.do(http.MethodGet, "/products/"+ProductTimeSlot, nil)
	require.Equal(t, http.StatusOK, one.status)
	assert.Equal(t, true, dig(t, one.json(t), "data", "product", "product_availability"))
	assert.Equal(t, http.StatusNotFound, a.do(http.MethodGet, "/products/424242", nil).status)

	page := a.do(http.MethodGet, "/products?items_per_page=2&page=3", nil)
	require.Equal(t, http.StatusOK, page.status)
	assert.EqualValues(t, 1, dig(t, page.json(t), "data", "current_item_count"))
	assert.EqualValues(t, 3, dig(t, page.json(t), "data", "page_index"))
}

func TestListOrders(t *testing.T) {
	t.Parallel()
	s := NewServer(t)
	a := newAPI(t, s).login()
	var refs []string
	for i := range 25 {
		r := a.do(http.MethodPost, "/orders", orderBody(fmt.Sprintf("list-%02d", i), ticket{product: ProductOpen, adults: 1}))
		require.Equal(t, http.StatusCreated, r.status, "%s", r.body)
		refs = append(refs, dig(t, r.json(t), "data", "order", "order_reference").(string))
	}
	for _, ref := range refs[:3] {
		require.Equal(t, http.StatusOK, a.do(http.MethodDelete, "/orders/"+ref, nil).status)
	}
	list := func(query string) map[string]any {
		t.Helper()
		r := a.do(http.MethodGet, "/orders?"+query, nil)
		require.Equal(t, http.StatusOK, r.status, "%s: %s", query, r.body)
		return dig(t, r.json(t), "data").(map[string]any)
	}
	refsOf := func(d map[string]any) []string {
		var out []string
		for _, it := range d["items"].([]any) {
			out = append(out, dig(t, it, "order_reference").(string))
		}
		return out
	}

	t.Run("by external reference", func(t *testing.T) {
		d := list("order_external_reference=list-07")
		assert.EqualValues(t, 1, d["total_items"])
		assert.Equal(t, []string{refs[7]}, refsOf(d))
		assert.Equal(t, "order", d["kind"])
		assert.EqualValues(t, 0, list("order_external_reference=absent")["total_items"], "an absent reference lists nothing")
		assert.EqualValues(t, 25, list("order_external_reference=")["total_items"], "an empty reference filters nothing")
	})
	t.Run("by order reference and distributor", func(t *testing.T) {
		assert.Equal(t, []string{refs[4]}, refsOf(list("order_reference="+refs[4])))
		assert.EqualValues(t, 25, list("distributor_id=501&items_per_page=1")["total_items"])
		assert.EqualValues(t, 0, list("distributor_id=502")["total_items"])
	})
	t.Run("by status", func(t *testing.T) {
		assert.EqualValues(t, 3, list("order_status=ORDER_CANCELLED")["total_items"])
		assert.EqualValues(t, 22, list("order_status=ORDER_CONFIRMED")["total_items"])
		assert.EqualValues(t, 25, list("order_status=ORDER_CONFIRMED&order_status=ORDER_CANCELLED")["total_items"])
	})
	t.Run("by creation date", func(t *testing.T) {
		past := url.QueryEscape(s.Now().Add(-time.Hour).In(sandboxZone).Format(time.RFC3339))
		future := url.QueryEscape(s.Now().Add(time.Hour).In(sandboxZone).Format(time.RFC3339))
		assert.EqualValues(t, 25, list("order_created_from=" + past)["total_items"])
		assert.EqualValues(t, 0, list("order_created_from=" + future)["total_items"])
		assert.EqualValues(t, 0, list("order_created_to=" + past)["total_items"])
	})
	t.Run("pagination", func(t *testing.T) {
		d := list("items_per_page=10&page=3")
		assert.EqualValues(t, 5, d["current_item_count"])
		assert.EqualValues(t, 3, d["page_index"])
		assert.EqualValues(t, 3, d["total_pages"])
		assert.EqualValues(t, 21, d["start_index"])
		assert.Equal(t, []string{refs[4], refs[3], refs[2], refs[1], refs[0]}, refsOf(d), "newest first")

		d = list("items_per_page=10&start_index=11")
		assert.EqualValues(t, 2, d["page_index"])
		assert.Equal(t, refs[14], refsOf(d)[0])

		d = list("order_sort_order=ASC&items_per_page=2")
		assert.Equal(t, []string{refs[0], refs[1]}, refsOf(d))

		d = list("items_per_page=10&page=9")
		assert.EqualValues(t, 0, d["current_item_count"])
		assert.Empty(t, d["items"], "a page past the end is empty, not null")

		for _, bad := range []string{"items_per_page=0", "items_per_page=201", "start_index=0", "page=0"} {
			r := a.do(http.MethodGet, "/orders?"+bad, nil)
			assert.Equal(t, http.StatusBadRequest, r.status, bad)
		}
	})
}

func TestIfModifiedSince(t *testing.T) {
	t.Parallel()
	synctest.Test(t, func(t *testing.T) {
		s, err := NewUnstarted()
		require.NoError(t, err)
		defer s.Close()
		a := pipeAPI(t, s).login()
		time.Sleep(time.Second)
		require.Equal(t, http.StatusCreated, a.do(http.MethodPost, "/orders", orderBody("ims-1", ticket{product: ProductOpen, adults: 1})).status)

		for _, path := range []string{"/orders?order_external_reference=ims-1", "/products", "/products/" + ProductOpen} {
			first := a.do(http.MethodGet, path, nil)
			require.Equal(t, http.StatusOK, first.status)
			lm := first.header.Get("Last-Modified")
			require.NotEmpty(t, lm, path)

			again := a.do(http.MethodGet, path, nil, "If-Modified-Since", lm)
			assert.Equal(t, http.StatusNotModified, again.status, path)
			assert.Empty(t, again.body, path)

			older := s.Now().Add(-time.Hour).UTC().Format(http.TimeFormat)
			assert.Equal(t, http.StatusOK, a.do(http.MethodGet, path, nil, "If-Modified-Since", older).status, path)
		}

		first := a.do(http.MethodGet, "/orders", nil)
		lm := first.header.Get("Last-Modified")
		time.Sleep(2 * time.Second)
		assert.Equal(t, http.StatusNotModified, a.do(http.MethodGet, "/orders", nil, "If-Modified-Since", lm).status)
		require.Equal(t, http.StatusCreated, a.do(http.MethodPost, "/orders", orderBody("ims-2", ticket{product: ProductOpen, adults: 1})).status)
		changed := a.do(http.MethodGet, "/orders", nil, "If-Modified-Since", lm)
		assert.Equal(t, http.StatusOK, changed.status, "a new order changes the list")
		assert.EqualValues(t, 2, dig(t, changed.json(t), "data", "total_items"))
	})
}

func TestSlowSupplier(t *testing.T) {
	t.Parallel()
	synctest.Test(t, func(t *testing.T) {
		s, err := NewUnstarted(WithSlowSupplierDelay(45 * time.Second))
		require.NoError(t, err)
		defer s.Close()
		a := pipeAPI(t, s).login()
		r := a.do(http.MethodPost, "/orders", orderBody("slow-1", ticket{product: ProductSlow, adults: 1}))
		require.Equal(t, http.StatusCreated, r.status, "%s", r.body)
		o := dig(t, r.json(t), "data", "order")
		ref := dig(t, o, "order_reference").(string)
		assert.Equal(t, "ORDER_PENDING", dig(t, o, "order_status"))
		assert.Equal(t, "BOOKING_PROCESSING_CONFIRMATION", dig(t, o, "order_bookings", 0, "booking_status"))

		voucher := a.do(http.MethodGet, "/orders/"+ref+"/voucher", nil)
		assert.Equal(t, http.StatusConflict, voucher.status, "no voucher while pending")
		assert.Equal(t, http.StatusOK, a.do(http.MethodGet, "/orders/"+ref+"/voucher?force_release=true", nil).status)

		time.Sleep(44 * time.Second)
		mid := a.do(http.MethodGet, "/orders/"+ref, nil)
		assert.Equal(t, "ORDER_PENDING", dig(t, mid.json(t), "data", "order", "order_status"))
		assert.EqualValues(t, 1, dig(t, list(t, a, "order_status=ORDER_PENDING"), "total_items"))

		time.Sleep(time.Second)
		done := a.do(http.MethodGet, "/orders/"+ref, nil)
		o = dig(t, done.json(t), "data", "order")
		assert.Equal(t, "ORDER_CONFIRMED", dig(t, o, "order_status"))
		assert.Equal(t, "BOOKING_CONFIRMED", dig(t, o, "order_bookings", 0, "booking_status"))
		assert.EqualValues(t, 2, dig(t, o, "order_version"))
	})
}

func list(t *testing.T, a *api, query string) map[string]any {
	t.Helper()
	r := a.do(http.MethodGet, "/orders?"+query, nil)
	require.Equal(t, http.StatusOK, r.status, "%s", r.body)
	return dig(t, r.json(t), "data").(map[string]any)
}

func TestCancelOrder(t *testing.T) {
	t.Parallel()
	s := NewServer(t)
	a := newAPI(t, s).login()
	slot := firstSlot(t, s, ProductTimeSlot)
	r := a.do(http.MethodPost, "/orders", orderBody("cancel-1",
		ticket{product: ProductOpen, adults: 1},
		ticket{product: ProductTimeSlot, availability: slot, adults: 2}))
	require.Equal(t, http.StatusCreated, r.status, "%s", r.body)
	o := dig(t, r.json(t), "data", "order")
	ref := dig(t, o, "order_reference").(string)
	slotBooking := dig(t, o, "order_bookings", 1, "booking_reference").(string)
	require.Equal(t, SlotCapacity-2, openSpots(t, a, ProductTimeSlot, slot))

	partial := a.do(http.MethodDelete, "/orders/"+ref+"?booking_reference="+slotBooking, nil)
	require.Equal(t, http.StatusOK, partial.status, "%s", partial.body)
	o = dig(t, partial.json(t), "data", "order")
	assert.Equal(t, "ORDER_UPDATED", dig(t, o, "order_status"))
	assert.Equal(t, "BOOKING_CONFIRMED", dig(t, o, "order_bookings", 0, "booking_status"))
	assert.Equal(t, "BOOKING_CANCELLED", dig(t, o, "order_bookings", 1, "booking_status"))
	assert.Equal(t, "25.00", dig(t, o, "order_pricing", "price_total"))
	assert.Equal(t, SlotCapacity, openSpots(t, a, ProductTimeSlot, slot))

	full := a.do(http.MethodDelete, "/orders/"+ref, nil)
	require.Equal(t, http.StatusOK, full.status)
	o = dig(t, full.json(t), "data", "order")
	assert.Equal(t, "ORDER_CANCELLED", dig(t, o, "order_status"))
	assert.NotEmpty(t, dig(t, o, "order_cancellation_date_time"))
	version := dig(t, o, "order_version")

	again := a.do(http.MethodDelete, "/orders/"+ref, nil)
	require.Equal(t, http.StatusOK, again.status, "cancelling twice is harmless")
	assert.Equal(t, version, dig(t, again.json(t), "data", "order", "order_version"), "and changes nothing")

	assert.Equal(t, http.StatusNotFound, a.do(http.MethodDelete, "/orders/"+ref+"?booking_reference=80000000", nil).status)
	assert.Equal(t, http.StatusNotFound, a.do(http.MethodDelete, "/orders/12345678", nil).status)
	assert.Equal(t, http.StatusConflict, a.do(http.MethodGet, "/orders/"+ref+"/voucher", nil).status, "a cancelled order has no voucher")
}

func TestVoucherAndUpdate(t *testing.T) {
	t.Parallel()
	s := NewServer(t)
	a := newAPI(t, s).login()
	r := a.do(http.MethodPost, "/orders", orderBody("voucher-1", ticket{product: ProductOpen, adults: 1}))
	require.Equal(t, http.StatusCreated, r.status)
	ref := dig(t, r.json(t), "data", "order", "order_reference").(string)

	j := a.do(http.MethodGet, "/orders/"+ref+"/voucher", nil)
	require.Equal(t, http.StatusOK, j.status, "%s", j.body)
	u := j.json(t)["url"].(string)
	assert.Equal(t, u, dig(t, j.json(t), "data", "url"))
	resp, err := http.Get(u)
	require.NoError(t, err)
	resp.Body.Close()
	assert.Equal(t, "application/pdf", resp.Header.Get("Content-Type"))

	pdf := a.do(http.MethodGet, "/orders/"+ref+"/voucher", nil, "Accept", "application/pdf")
	require.Equal(t, http.StatusOK, pdf.status)
	assert.Equal(t, "application/pdf", pdf.header.Get("Content-Type"))
	assert.True(t, strings.HasPrefix(string(pdf.body), "%PDF-"))
	assert.Contains(t, string(pdf.body), ref)

	update := map[string]any{"data": map[string]any{"order": map[string]any{
		"order_distributor_id":     DefaultDistributorID,
		"order_external_reference": "voucher-1",
		"order_language":           "nl",
		"order_channel":            "PARTNER",
		"order_status":             "ORDER_CONFIRMED",
		"order_view_type":          "DISTRIBUTOR",
		"order_contacts":           []map[string]any{{"contact_email": "guest@example.com"}},
	}}}
	up := a.do(http.MethodPut, "/orders/"+ref, update)
	require.Equal(t, http.StatusOK, up.status, "%s", up.body)
	o := dig(t, up.json(t), "data", "order")
	assert.EqualValues(t, 2, dig(t, o, "order_version"))
	assert.Equal(t, "nl", dig(t, o, "order_language"))
	assert.Equal(t, "guest@example.com", dig(t, o, "order_contacts", 0, "contact_email"))
}
