package api_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/priosdk/prio-go/generated"
	"github.com/priosdk/prio-go/wire"
)

// readFixture returns the bytes of a file in testdata.
func readFixture(t testing.TB, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", name))
	require.NoError(t, err)
	return b
}

// roundTrip decodes raw into v, encodes v again and checks that nothing was
// lost or changed, comparing both documents as generic JSON trees. It also
// decodes with DisallowUnknownFields and checks that no model kept an
// unknown field, so every field of the fixture must be one the generated
// model knows.
func roundTrip(t *testing.T, raw []byte, v any) {
	t.Helper()
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.DisallowUnknownFields()
	require.NoError(t, dec.Decode(v), "decoding into %T", v)
	require.Empty(t, unknownFields(reflect.ValueOf(v), "$"), "fields the models do not know")

	out, err := json.Marshal(v)
	require.NoError(t, err)

	var want, got any
	require.NoError(t, json.Unmarshal(raw, &want))
	require.NoError(t, json.Unmarshal(out, &got))
	require.Equal(t, want, got, "re-encoded %T differs from the fixture", v)
}

// unknownFields lists, by path, the fields kept in the AdditionalProperties
// of every model reachable from v.
func unknownFields(v reflect.Value, path string) []string {
	switch v.Kind() {
	case reflect.Pointer, reflect.Interface:
		if v.IsNil() {
			return nil
		}
		return unknownFields(v.Elem(), path)
	case reflect.Slice, reflect.Array:
		var out []string
		for i := range v.Len() {
			out = append(out, unknownFields(v.Index(i), fmt.Sprintf("%s[%d]", path, i))...)
		}
		return out
	case reflect.Map:
		var out []string
		for _, k := range v.MapKeys() {
			out = append(out, unknownFields(v.MapIndex(k), fmt.Sprintf("%s[%v]", path, k))...)
		}
		return out
	case reflect.Struct:
		var out []string
		for i := range v.NumField() {
			f := v.Type().Field(i)
			if !f.IsExported() {
				continue
			}
			if f.Name == "AdditionalProperties" {
				for _, k := range v.Field(i).MapKeys() {
					out = append(out, path+"."+k.String())
				}
				continue
			}
			out = append(out, unknownFields(v.Field(i), path+"."+f.Name)...)
		}
		return out
	}
	return nil
}

func TestFixturesRoundTrip(t *testing.T) {
	t.Parallel()
	cases := []struct {
		file  string
		into  func() any
		check func(t *testing.T, v any)
	}{
		{"order.json", func() any { return new(generated.OrderDetailResponse) }, checkOrder},
		{"reservation.json", func() any { return new(generated.ReservationDetailResponse) }, checkReservation},
		{"product.json", func() any { return new(generated.ProductDetailResponse) }, checkProduct},
		{"availability.json", func() any { return new(generated.AvailabilitiesListResponse) }, checkAvailability},
		{"orders_page.json", func() any { return new(generated.OrderListResponse) }, checkOrdersPage},
		{"error.json", func() any { return new(generated.ErrorModel) }, checkError},
	}
	for _, c := range cases {
		t.Run(c.file, func(t *testing.T) {
			t.Parallel()
			v := c.into()
			roundTrip(t, readFixture(t, c.file), v)
			c.check(t, v)
		})
	}
}

func offsetOf(d wire.DateTime) time.Duration {
	_, off := d.Zone()
	return time.Duration(off) * time.Second
}

func checkOrder(t *testing.T, v any) {
	o := v.(*generated.OrderDetailResponse).Data.Order
	assert.Equal(t, "501", o.OrderDistributorId)
	assert.Equal(t, generated.ORDERCONFIRMED, o.OrderStatus)
	require.NotNil(t, o.OrderPricing.PriceTotal)
	assert.Equal(t, wire.Decimal("201.00"), *o.OrderPricing.PriceTotal, "amounts keep their decimal text")

	require.Len(t, o.OrderBookings, 3)
	products := map[string]bool{}
	types := map[generated.ProductType]bool{}
	for _, b := range o.OrderBookings {
		products[b.ProductId] = true
		for _, d := range b.ProductTypeDetails {
			types[d.ProductType] = true
		}
	}
	assert.Len(t, products, 2, "bookings span two products")
	assert.GreaterOrEqual(t, len(types), 3, "several product types")

	// The travel date keeps the activity's offset instead of moving to UTC.
	first := o.OrderBookings[0]
	require.NotNil(t, first.BookingTravelDate)
	assert.Equal(t, 4*time.Hour, offsetOf(*first.BookingTravelDate))
	assert.Equal(t, 1*time.Hour, offsetOf(*o.OrderBookings[1].BookingTravelDate))
	require.NotNil(t, first.BookingVoucherReleased)
	assert.True(t, first.BookingVoucherReleased.Bool())
	require.NotNil(t, first.ProductCancellationPolicies)
	assert.Equal(t, wire.Decimal("100"), *(*first.ProductCancellationPolicies)[0].CancellationFeePercentage)
	require.NotNil(t, o.OrderContacts)
	assert.Equal(t, generated.ContactTypeBOOKER, *(*o.OrderContacts)[0].ContactType)
}

func checkReservation(t *testing.T, v any) {
	r := v.(*generated.ReservationDetailResponse).Data.Reservation
	assert.Equal(t, "501", r.ReservationDistributorId)
	require.NotNil(t, r.ReservationValidUntil)
	assert.False(t, r.ReservationValidUntil.IsZero())
	require.NotEmpty(t, r.ReservationDetails)
	for _, d := range r.ReservationDetails {
		require.NotNil(t, d.BookingStatus)
		assert.Equal(t, generated.BOOKINGRESERVED, *d.BookingStatus)
		require.NotNil(t, d.BookingReservationReference)
		assert.NotEmpty(t, *d.BookingReservationReference)
	}
}

func checkProduct(t *testing.T, v any) {
	p := v.(*generated.ProductDetailResponse).Data.Product
	require.NotEmpty(t, p.ProductTypeSeasons)
	details := p.ProductTypeSeasons[0].ProductTypeSeasonDetails
	require.GreaterOrEqual(t, len(details), 2)
	for _, d := range details {
		assert.NotEmpty(t, d.ProductTypePricing.ProductTypeSalesPrice)
	}
	assert.True(t, p.ProductAvailability.Bool())
}

func checkAvailability(t *testing.T, v any) {
	a := v.(*generated.AvailabilitiesListResponse).Data
	require.NotEmpty(t, a.Items)
	assert.Equal(t, len(a.Items), a.TotalItems)
	var full int
	for _, s := range a.Items {
		require.NotNil(t, s.AvailabilitySpots)
		if s.AvailabilitySpots.AvailabilitySpotsOpen == 0 {
			full++
		}
	}
	assert.Positive(t, full, "the fixture includes a full slot, which Prio still lists")
}

func checkOrdersPage(t *testing.T, v any) {
	p := v.(*generated.OrderListResponse).Data
	assert.Equal(t, 2, p.PageIndex)
	assert.Equal(t, 3, p.TotalPages)
	assert.Equal(t, len(p.Items), p.CurrentItemCount)
	assert.Greater(t, p.TotalItems, p.ItemsPerPage)
}

func checkError(t *testing.T, v any) {
	e := v.(*generated.ErrorModel)
	require.NotNil(t, e.Error)
	assert.Equal(t, "INVALID_REQUEST", *e.Error)
	require.NotNil(t, e.Errors)
	assert.NotEmpty(t, *e.Errors)
}

// TestFixturesOpenEnumsAndUnknownFields: Prio adds enum values and fields
// within a version, so neither may break decoding.
func TestFixturesOpenEnumsAndUnknownFields(t *testing.T) {
	t.Parallel()
	var doc map[string]any
	require.NoError(t, json.Unmarshal(readFixture(t, "order.json"), &doc))
	order := doc["data"].(map[string]any)["order"].(map[string]any)
	order["order_status"] = "ORDER_PROCESSING"
	order["order_loyalty_tier"] = "GOLD"
	booking := order["order_bookings"].([]any)[0].(map[string]any)
	booking["booking_status"] = "BOOKING_ON_HOLD_BY_SUPPLIER"
	booking["booking_carbon_offset"] = map[string]any{"kg": "1.2"}
	doc["data"].(map[string]any)["kind"] = "location"
	raw, err := json.Marshal(doc)
	require.NoError(t, err)

	var got generated.OrderDetailResponse
	require.NoError(t, json.Unmarshal(raw, &got))
	assert.Equal(t, generated.OrderStatusTypes("ORDER_PROCESSING"), got.Data.Order.OrderStatus)
	assert.False(t, got.Data.Order.OrderStatus.Valid(), "the value is unknown to this SDK version")
	assert.Equal(t, generated.BookingStatusTypes("BOOKING_ON_HOLD_BY_SUPPLIER"), got.Data.Order.OrderBookings[0].BookingStatus)
	assert.Equal(t, generated.Kind("location"), got.Data.Kind)
}

// TestFixturesLegacyForms: v3.8 samples carry Z timestamps with milliseconds,
// and older payloads send flags as strings; both must decode, and both are
// sent back in the form Prio accepts.
func TestFixturesLegacyForms(t *testing.T) {
	t.Parallel()
	raw := []byte(`{
	  "api_version": "3.8.0",
	  "data": {"kind": "order", "order": {
	    "order_distributor_id": "501",
	    "order_external_reference": "NW-2026-000999",
	    "order_status": "ORDER_CONFIRMED",
	    "order_channel": "WPOS",
	    "order_language": "en",
	    "order_archived": "false",
	    "order_redacted": "false",
	    "order_view_type": "DISTRIBUTOR",
	    "order_created": "2025-08-05T13:11:12.716Z",
	    "order_pricing": {"price_type": "SALES_GROSS", "price_subtotal": "10.00", "price_total": "10.00"},
	    "order_options": {"price_on_voucher": "true", "email_options": {"email_types": {"send_tickets": "true", "send_receipt": "0"}}},
	    "order_bookings": [{
	      "booking_external_reference": "NW-2026-000999-1",
	      "booking_status": "BOOKING_CONFIRMED",
	      "booking_voucher_released": "true",
	      "booking_travel_date": "2025-08-06T09:00:00Z",
	      "booking_pricing": {"price_type": "SALES_GROSS", "price_subtotal": "10.00", "price_total": "10.00"},
	      "product_id": "70102",
	      "product_admission_type": "TIME_DATE",
	      "product_cancellation_allowed": "false",
	      "product_code_settings": {"product_code_format": "QR_CODE", "product_code_source": "PRIO",
	        "product_group_code": "false", "product_combi_code": "false", "product_voucher_settings": "PER_PERSON"},
	      "product_cancellation_policies": [{"cancellation_type": "TRAVEL_DATE", "cancellation_fee_percentage": 50.5}],
	      "product_type_details": []
	    }]
	  }}
	}`)
	var got generated.OrderDetailResponse
	require.NoError(t, json.Unmarshal(raw, &got))
	o := got.Data.Order
	require.NotNil(t, o.OrderCreated)
	assert.True(t, o.OrderCreated.Equal(time.Date(2025, 8, 5, 13, 11, 12, 716_000_000, time.UTC)))
	b := o.OrderBookings[0]
	assert.True(t, b.BookingVoucherReleased.Bool())
	assert.False(t, b.ProductCancellationAllowed.Bool())
	assert.True(t, o.OrderOptions.PriceOnVoucher.Bool())
	assert.True(t, o.OrderOptions.EmailOptions.EmailTypes.SendTickets.Bool())
	assert.False(t, o.OrderOptions.EmailOptions.EmailTypes.SendReceipt.Bool())
	assert.Equal(t, wire.Decimal("50.5"), *(*b.ProductCancellationPolicies)[0].CancellationFeePercentage)

	out, err := json.Marshal(got)
	require.NoError(t, err)
	s := string(out)
	assert.Contains(t, s, `"order_created":"2025-08-05T13:11:12.716+00:00"`)
	assert.Contains(t, s, `"booking_travel_date":"2025-08-06T09:00:00+00:00"`)
	assert.Contains(t, s, `"booking_voucher_released":true`)
	assert.Contains(t, s, `"cancellation_fee_percentage":"50.5"`)
	assert.NotContains(t, s, `Z"`, "no timestamp may leave with Z")
	assert.NotContains(t, s, `"true"`, "flags leave as JSON booleans")
}

// TestGeneratedCodeHasNoFloats: amounts must never pass through floating
// point, so the generated models may not use float32 or float64 anywhere.
func TestGeneratedCodeHasNoFloats(t *testing.T) {
	t.Parallel()
	src, err := os.ReadFile(filepath.Join("..", "generated", "prio.gen.go"))
	require.NoError(t, err)
	text := string(src)
	require.Contains(t, text, "package generated", "not the generated models")
	require.Contains(t, text, "wire.Decimal", "the decimal type should be in use")
	for _, banned := range []string{"float32", "float64"} {
		if i := strings.Index(text, banned); i >= 0 {
			line := strings.Count(text[:i], "\n") + 1
			t.Errorf("generated/prio.gen.go:%d uses %s", line, banned)
		}
	}
}
