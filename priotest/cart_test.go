package priotest

import (
	"net/http"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func reservationRef(t *testing.T, r reply) string {
	t.Helper()
	return dig(t, r.json(t), "data", "reservation", "reservation_reference").(string)
}

func TestUpdateReservationMovesHeldCapacity(t *testing.T) {
	t.Parallel()
	s := NewServer(t)
	a := newAPI(t, s).login()
	slot := firstSlot(t, s, ProductTimeSlot)
	created := a.do(http.MethodPost, "/reservations", reservationBody("upd-1", ticket{product: ProductTimeSlot, availability: slot, adults: 2}))
	require.Equal(t, http.StatusCreated, created.status, "%s", created.body)
	ref := reservationRef(t, created)
	line := dig(t, created.json(t), "data", "reservation", "reservation_details", 0, "booking_reservation_reference").(string)
	require.Equal(t, SlotCapacity-2, openSpots(t, a, ProductTimeSlot, slot))

	change := func(adults int, lineRef string) reply {
		body := reservationBody("upd-1", ticket{product: ProductTimeSlot, availability: slot, adults: adults})
		if lineRef != "" {
			dig(t, body, "data", "reservation", "reservation_details").([]map[string]any)[0]["booking_reservation_reference"] = lineRef
		}
		return a.do(http.MethodPut, "/reservations/"+ref, body)
	}
	up := change(5, line)
	require.Equal(t, http.StatusOK, up.status, "%s", up.body)
	assert.Len(t, dig(t, up.json(t), "data", "reservation", "reservation_details").([]any), 1, "the line is replaced, not added")
	assert.Len(t, dig(t, up.json(t), "data", "reservation", "reservation_details", 0, "product_type_details").([]any), 5)
	assert.Equal(t, SlotCapacity-5, openSpots(t, a, ProductTimeSlot, slot), "the hold grows from 2 to 5")

	full := change(SlotCapacity+1, line)
	assert.Equal(t, http.StatusConflict, full.status, "%s", full.body)
	assert.Equal(t, codeNoAvailability, full.errorCode(t))
	assert.Equal(t, SlotCapacity-5, openSpots(t, a, ProductTimeSlot, slot), "a refused update keeps the old hold")

	added := change(1, "")
	require.Equal(t, http.StatusOK, added.status, "%s", added.body)
	assert.Len(t, dig(t, added.json(t), "data", "reservation", "reservation_details").([]any), 2, "a line without reference is added")
	assert.Equal(t, SlotCapacity-6, openSpots(t, a, ProductTimeSlot, slot))

	unknown := change(1, "60000000")
	assert.Equal(t, http.StatusNotFound, unknown.status, "%s", unknown.body)

	require.Equal(t, http.StatusOK, a.do(http.MethodDelete, "/reservations/"+ref, nil).status)
	assert.Equal(t, SlotCapacity, openSpots(t, a, ProductTimeSlot, slot), "cancelling releases what the updated lines held")
	assert.Equal(t, http.StatusConflict, change(1, line).status, "a cancelled reservation takes no update")
}

func TestPromocodesRepriceReservationAndOrder(t *testing.T) {
	t.Parallel()
	s := NewServer(t)
	a := newAPI(t, s).login()
	ref := reservationRef(t, a.do(http.MethodPost, "/reservations", reservationBody("promo-1", ticket{product: ProductOpen, adults: 2})))
	promo := func(method, path string) reply { return a.do(method, "/reservations/"+ref+path, nil) }
	total := func(r reply) string {
		return dig(t, r.json(t), "data", "reservation", "reservation_pricing", "price_total").(string)
	}

	pct := promo(http.MethodPost, "/promocode?promo_code="+PromoPercent)
	require.Equal(t, http.StatusOK, pct.status, "%s", pct.body)
	assert.Equal(t, "45.00", total(pct), "10%% off 50.00")
	assert.Equal(t, "50.00", dig(t, pct.json(t), "data", "reservation", "reservation_pricing", "price_subtotal"))
	assert.Equal(t, "5.00", dig(t, pct.json(t), "data", "reservation", "reservation_pricing", "price_promocodes", 0, "promo_amount"))
	assert.Equal(t, PromoPercent, dig(t, pct.json(t), "data", "reservation", "reservation_promocodes", 0, "promo_code"))

	fixed := promo(http.MethodPost, "/promocode?promo_code="+PromoFixed)
	require.Equal(t, http.StatusOK, fixed.status, "%s", fixed.body)
	assert.Equal(t, "40.00", total(fixed))
	assert.Equal(t, "40.00", total(promo(http.MethodPost, "/promocode?promo_code="+PromoFixed)), "a code applies once")

	for _, code := range []string{PromoExpired, "NOSUCHCODE"} {
		r := promo(http.MethodPost, "/promocode?promo_code="+code)
		assert.Equal(t, http.StatusUnprocessableEntity, r.status, "%s", r.body)
		assert.Equal(t, codeInvalidPromocode, r.errorCode(t))
		assert.NotEmpty(t, dig(t, r.json(t), "error_message"), "a message for the guest")
	}

	rm := promo(http.MethodDelete, "/promocode/"+PromoFixed)
	require.Equal(t, http.StatusOK, rm.status, "%s", rm.body)
	assert.Equal(t, "45.00", total(rm))
	assert.Equal(t, http.StatusNotFound, promo(http.MethodDelete, "/promocode/"+PromoFixed).status)

	o := a.do(http.MethodPost, "/orders", confirmBody("promo-order-1", ref))
	require.Equal(t, http.StatusCreated, o.status, "%s", o.body)
	order := dig(t, o.json(t), "data", "order")
	assert.Equal(t, "45.00", dig(t, order, "order_pricing", "price_total"), "the order keeps the reservation's discount")
	assert.Equal(t, PromoPercent, dig(t, order, "order_promocodes", 0, "promo_code"))
	assert.Equal(t, http.StatusConflict, promo(http.MethodPost, "/promocode?promo_code="+PromoFixed).status, "a confirmed reservation takes no code")
}

func TestContactsComeFromOrders(t *testing.T) {
	t.Parallel()
	s := NewServer(t)
	a := newAPI(t, s).login()
	body := orderBody("contact-1", ticket{product: ProductOpen, adults: 1})
	dig(t, body, "data", "order").(map[string]any)["order_contacts"] = []map[string]any{
		{"contact_type": "BOOKER", "contact_email": "ada@example.com", "contact_external_uid": "crm-7"},
		{"contact_type": "GUEST", "contact_name_first": "Grace"},
	}
	o := a.do(http.MethodPost, "/orders", body)
	require.Equal(t, http.StatusCreated, o.status, "%s", o.body)
	orderRef := dig(t, o.json(t), "data", "order", "order_reference").(string)
	uid := dig(t, o.json(t), "data", "order", "order_contacts", 0, "contact_uid").(string)
	require.NotEmpty(t, uid)

	list := a.do(http.MethodGet, "/contacts", nil)
	require.Equal(t, http.StatusOK, list.status, "%s", list.body)
	assert.EqualValues(t, 2, dig(t, list.json(t), "data", "total_items"))
	booker := a.do(http.MethodGet, "/contacts?contact_external_uid=crm-7", nil)
	assert.EqualValues(t, 1, dig(t, booker.json(t), "data", "total_items"))
	assert.Equal(t, uid, dig(t, booker.json(t), "data", "items", 0, "contact_uid"))

	up := a.do(http.MethodPut, "/contacts/"+uid+"?order_reference="+orderRef, map[string]any{"data": map[string]any{"contact": map[string]any{
		"contact_type": "BOOKER", "contact_email": "ada.lovelace@example.com"}}})
	require.Equal(t, http.StatusOK, up.status, "%s", up.body)
	assert.EqualValues(t, 2, dig(t, up.json(t), "data", "items", 0, "contact_version"))
	assert.NotContains(t, dig(t, up.json(t), "data", "items", 0), "contact_external_uid", "the body replaces the contact; nothing is merged")

	versions := a.do(http.MethodGet, "/contacts/"+uid+"?include_versions=true", nil)
	require.Equal(t, http.StatusOK, versions.status, "%s", versions.body)
	assert.Len(t, dig(t, versions.json(t), "data", "items").([]any), 2)
	assert.Equal(t, "ada@example.com", dig(t, versions.json(t), "data", "items", 1, "contact_email"))

	got := a.do(http.MethodGet, "/orders/"+orderRef, nil)
	assert.Equal(t, "ada.lovelace@example.com", dig(t, got.json(t), "data", "order", "order_contacts", 0, "contact_email"), "the named order gets the new version")
	assert.EqualValues(t, 2, dig(t, got.json(t), "data", "order", "order_version"))

	assert.Equal(t, http.StatusNotFound, a.do(http.MethodPut, "/contacts/"+uid+"?order_reference=99999999", map[string]any{"data": map[string]any{"contact": map[string]any{}}}).status)
	assert.Equal(t, http.StatusNotFound, a.do(http.MethodGet, "/contacts/unknown-uid", nil).status)
}

func TestPaymentsLifecycle(t *testing.T) {
	t.Parallel()
	s := NewServer(t)
	a := newAPI(t, s).login()
	ref := reservationRef(t, a.do(http.MethodPost, "/reservations", reservationBody("pay-1", ticket{product: ProductOpen, adults: 2})))

	pending := a.do(http.MethodPost, "/payments?order_reference="+ref, paymentBody("ADYEN_DROP_IN", "pay-ext-1"))
	require.Equal(t, http.StatusCreated, pending.status, "%s", pending.body)
	details := dig(t, pending.json(t), "data", "payment", "payment_details")
	id := dig(t, details, "payment_id").(string)
	assert.Equal(t, "PENDING", dig(t, details, "payment_status"))
	assert.Equal(t, "50.00", dig(t, details, "payment_amount"))
	assert.Equal(t, http.StatusOK, a.do(http.MethodPost, "/reservations/"+ref+"/promocode?promo_code="+PromoFixed, nil).status,
		"a pending payment leaves the reservation amendable")

	done := a.do(http.MethodPost, "/payments/"+id+"/details", map[string]any{"data": "3ds"})
	require.Equal(t, http.StatusCreated, done.status, "%s", done.body)
	assert.Equal(t, "PAID", dig(t, done.json(t), "data", "payment", "payment_details", "payment_status"))
	paidAgain := a.do(http.MethodPost, "/reservations/"+ref+"/promocode?promo_code="+PromoPercent, nil)
	assert.Equal(t, http.StatusConflict, paidAgain.status, "%s", paidAgain.body)
	assert.Equal(t, codeReservationPaid, paidAgain.errorCode(t))

	list := a.do(http.MethodGet, "/payments?order_reference="+ref, nil)
	require.Equal(t, http.StatusOK, list.status, "%s", list.body)
	assert.EqualValues(t, 1, dig(t, list.json(t), "data", "total_items"))
	assert.EqualValues(t, 0, dig(t, a.do(http.MethodGet, "/payments?payment_external_reference=other", nil).json(t), "data", "total_items"))

	part := a.do(http.MethodDelete, "/payments?payment_id="+id+"&refund_amount=20.00", nil)
	require.Equal(t, http.StatusOK, part.status, "%s", part.body)
	assert.Equal(t, "PARTIAL_REFUND", dig(t, part.json(t), "data", "payment", "payment_status"))
	assert.Equal(t, "30.00", dig(t, part.json(t), "data", "payment", "payment_total"))
	assert.Equal(t, http.StatusUnprocessableEntity, a.do(http.MethodDelete, "/payments?payment_id="+id+"&refund_amount=31.00", nil).status)
	rest := a.do(http.MethodDelete, "/payments?payment_id="+id, nil)
	assert.Equal(t, "REFUNDED", dig(t, rest.json(t), "data", "payment", "payment_status"))
	assert.Equal(t, http.StatusConflict, a.do(http.MethodDelete, "/payments?payment_id="+id, nil).status)
	assert.Equal(t, http.StatusBadRequest, a.do(http.MethodDelete, "/payments", nil).status)

	invoice := orderBody("pay-invoice", ticket{product: ProductOpen, adults: 1})
	dig(t, invoice, "data", "order").(map[string]any)["order_settlement_type"] = "INVOICE"
	o := a.do(http.MethodPost, "/orders", invoice)
	require.Equal(t, http.StatusCreated, o.status, "%s", o.body)
	refused := a.do(http.MethodPost, "/payments?order_reference="+dig(t, o.json(t), "data", "order", "order_reference").(string), paymentBody("MANUAL", "pay-ext-2"))
	assert.Equal(t, http.StatusUnprocessableEntity, refused.status, "%s", refused.body)
	assert.Equal(t, codePaymentNotAllowed, refused.errorCode(t))
	assert.Equal(t, http.StatusNotFound, a.do(http.MethodPost, "/payments?order_reference=12345678", paymentBody("MANUAL", "x")).status)
}

func TestProductListsAnswerFromTheCatalogue(t *testing.T) {
	t.Parallel()
	s := NewServer(t)
	a := newAPI(t, s).login()
	require.Equal(t, http.StatusCreated, a.do(http.MethodPost, "/orders", orderBody("stock-1", ticket{product: ProductOpen, adults: 2, children: 1})).status)
	require.Equal(t, http.StatusCreated, a.do(http.MethodPost, "/reservations", reservationBody("stock-r", ticket{product: ProductOpen, adults: 1})).status)

	stock := a.do(http.MethodGet, "/products/stock", nil)
	require.Equal(t, http.StatusOK, stock.status, "%s", stock.body)
	assert.EqualValues(t, 1, dig(t, stock.json(t), "data", "total_items"), "the retired record needs include_disabled")
	spots := dig(t, stock.json(t), "data", "items", 0, "stock_spots")
	assert.EqualValues(t, 3, dig(t, spots, "stock_items_booked"))
	assert.EqualValues(t, 1, dig(t, spots, "stock_items_reserved"))
	assert.EqualValues(t, stockTotal-4, dig(t, spots, "stock_items_available"))

	loc := a.do(http.MethodGet, "/products/locations?product_id="+ProductSlow, nil)
	assert.Equal(t, "LOC-4", dig(t, loc.json(t), "data", "items", 0, "location_id"))
	assert.Equal(t, http.StatusNotFound, a.do(http.MethodGet, "/products/routes?product_id=99999", nil).status)
	cats := a.do(http.MethodGet, "/products/categories?category_search_query=cruise", nil)
	assert.Equal(t, []any{ProductSlow}, dig(t, cats.json(t), "data", "items", 0, "category_products"))
	rates := a.do(http.MethodGet, "/products/currency_rates?currency_date=2026-03-01", nil)
	assert.Equal(t, "1.0800", dig(t, rates.json(t), "data", "items", 0, "currency_rates", "USD"))
	assert.Equal(t, http.StatusUnprocessableEntity, a.do(http.MethodGet, "/products/currency_rates?currency_date=2026-03-01&currency_base=XXX", nil).status)
}
