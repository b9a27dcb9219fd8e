package prio

import (
	"time"

	openapi_types "github.com/oapi-codegen/runtime/types"

	"github.com/priosdk/prio-go/generated"
	"github.com/priosdk/prio-go/wire"
)

// The generated models carry these wire types; they are re-exported so
// callers need not import package wire.
type (
	// DateTime is a date-time sent with its offset and never with Z.
	DateTime = wire.DateTime
	// Decimal is a money amount or percentage kept as decimal text.
	Decimal = wire.Decimal
	// Bool is a flag that decodes from true and "true", and keeps any other
	// value as received.
	Bool = wire.Bool
	// Raw is a value of a schema Prio names without defining, kept as
	// received.
	Raw = wire.Raw
)

// ProductTypeDetail is one line of a booking: a product type (ADULT,
// CHILD, ...) and how many. Prio answers with one line per ticket.
type ProductTypeDetail = generated.RegularBookingItem

// Contact is a booker or guest contact.
type Contact = generated.ContactDetails

// Ptr returns a pointer to v, for the optional fields of the models.
func Ptr[T any](v T) *T { return &v }

// ReservationLine is one line of a reservation (a cart item).
type ReservationLine = generated.ReservationDetail

// Date returns the calendar date of t (in t's location) for the date
// parameters of the availability calls.
func Date(t time.Time) openapi_types.Date { return openapi_types.Date{Time: t} }
