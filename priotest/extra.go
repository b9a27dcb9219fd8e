package priotest

import (
	"encoding/json"
	"maps"

	"github.com/priosdk/prio-go/generated"
)

// orderExtra holds the fields of an order that the spec does not know: Prio
// adds fields within a version, and the sandbox plays that with
// AddOrderFields.
type orderExtra struct {
	order    map[string]json.RawMessage
	bookings map[string]map[string]json.RawMessage // by booking reference
}

// AddOrderFields gives the order ref fields the spec does not know, the way
// Prio adds fields within a version: order at the order's top level, and
// bookings[booking reference] at that booking's. Every answer that renders
// the order carries them. Update Order replaces them with the unknown fields
// it sends (those of the order, and of each booking it sends), as Prio
// replaces the order with what is sent. It reports false when there is no
// order ref.
func (s *Server) AddOrderFields(ref string, order map[string]json.RawMessage, bookings map[string]map[string]json.RawMessage) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	o, ok := s.st.ordersByRef[ref]
	if !ok {
		return false
	}
	if len(order) > 0 {
		if o.extra.order == nil {
			o.extra.order = map[string]json.RawMessage{}
		}
		maps.Copy(o.extra.order, order)
	}
	for b, fields := range bookings {
		if o.extra.bookings == nil {
			o.extra.bookings = map[string]map[string]json.RawMessage{}
		}
		if o.extra.bookings[b] == nil {
			o.extra.bookings[b] = map[string]json.RawMessage{}
		}
		maps.Copy(o.extra.bookings[b], fields)
	}
	return true
}

// attach puts the unknown fields into a rendering of the order.
func (x orderExtra) attach(m *generated.ConfirmedOrderModel) {
	if len(x.order) > 0 {
		m.AdditionalProperties = maps.Clone(x.order)
	}
	for i := range m.OrderBookings {
		b := &m.OrderBookings[i]
		if b.BookingReference == nil {
			continue
		}
		if f := x.bookings[*b.BookingReference]; len(f) > 0 {
			b.AdditionalProperties = maps.Clone(f)
		}
	}
}

// replace keeps the unknown fields an Update Order sent: those of the order
// replace the order's, those of a booking sent with its reference replace
// that booking's.
func (x *orderExtra) replace(in generated.UpdateOrderModel) {
	x.order = maps.Clone(in.AdditionalProperties)
	if in.OrderBookings == nil {
		return
	}
	for _, b := range *in.OrderBookings {
		if b.BookingReference == nil {
			continue
		}
		if x.bookings == nil {
			x.bookings = map[string]map[string]json.RawMessage{}
		}
		x.bookings[*b.BookingReference] = maps.Clone(b.AdditionalProperties)
	}
}
