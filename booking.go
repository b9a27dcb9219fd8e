package prio

import (
	"slices"
	"strconv"
)

// This file holds the plain shapes a booking program writes, and their
// conversion to the generated models: the models are Prio's responses too,
// so they carry dozens of optional, pointer-typed fields that a request
// never sets.

// Tickets is one line of a booking: count tickets of one product type
// (ADULT, CHILD, ... as the product's ProductTypeId values name them).
func Tickets(productTypeID string, count int) ProductTypeDetail {
	return ProductTypeDetail{ProductTypeId: productTypeID, ProductTypeCount: count}
}

// Item is what one booking asks for, in the one shape shared by the
// bookings of an order (Bookings) and the lines of a reservation
// (ReservationLines).
type Item struct {
	// ProductID is the product booked.
	ProductID string
	// AvailabilityID is the slot or day of a timed product, an
	// Availability's AvailabilityId from Products.Availability; empty for
	// a product with open admission.
	AvailabilityID string
	// Reference is your reference for this booking or line
	// (booking_external_reference): optional on an order's bookings,
	// required on a reservation's lines, where ReservationLines makes one
	// from the product and the line's position when it is empty.
	Reference string
	// Tickets are the product types and counts (see Tickets).
	Tickets []ProductTypeDetail
}

// Booking is the item as one direct booking of an order.
func (it Item) Booking() BookingOption {
	b := BookingOption{BookingOptionType: DirectBooking, ProductId: optional(it.ProductID),
		ProductAvailabilityId: optional(it.AvailabilityID), BookingExternalReference: optional(it.Reference)}
	if it.Tickets != nil {
		t := slices.Clone(it.Tickets)
		b.ProductTypeDetails = &t
	}
	return b
}

// ReservationLine is the item as one line of a reservation.
func (it Item) ReservationLine() ReservationLine {
	return ReservationLine{ProductId: it.ProductID, ProductAvailabilityId: optional(it.AvailabilityID),
		BookingExternalReference: it.Reference, ProductTypeDetails: slices.Clone(it.Tickets)}
}

// Bookings makes the direct bookings of an order (OrderRequest's
// OrderBookings) from items.
func Bookings(items ...Item) []BookingOption {
	out := make([]BookingOption, len(items))
	for i, it := range items {
		out[i] = it.Booking()
	}
	return out
}

// ReservationLines makes the lines of a reservation (Reservation's
// ReservationDetails) from items. A line without a Reference gets
// "<product id>-<position>", since Prio requires one per line.
func ReservationLines(items ...Item) []ReservationLine {
	out := make([]ReservationLine, len(items))
	for i, it := range items {
		out[i] = it.ReservationLine()
		if out[i].BookingExternalReference == "" {
			out[i].BookingExternalReference = it.ProductID + "-" + strconv.Itoa(i+1)
		}
	}
	return out
}

// Person is a contact of an order in plain fields: the booker who gets the
// confirmation e-mails, or a guest.
type Person struct {
	// Type is the contact's role; empty means ContactBooker.
	Type      ContactType
	FirstName string
	LastName  string
	Email     string
	Phone     string
}

// Contact is the person as Prio's contact model.
func (p Person) Contact() Contact {
	role := p.Type
	if role == "" {
		role = ContactBooker
	}
	return Contact{ContactType: &role, ContactNameFirst: optional(p.FirstName), ContactNameLast: optional(p.LastName),
		ContactEmail: optional(p.Email), ContactPhone: optional(p.Phone)}
}

// Contacts makes an order's contacts (OrderRequest's OrderContacts) from
// people; nil when there are none.
func Contacts(people ...Person) *[]Contact {
	if len(people) == 0 {
		return nil
	}
	out := make([]Contact, len(people))
	for i, p := range people {
		out[i] = p.Contact()
	}
	return &out
}

// optional is nil for an empty string, so that an unset field is left out
// of the request rather than sent empty.
func optional(s string) *string {
	if s == "" {
		return nil
	}
	return &s
}
