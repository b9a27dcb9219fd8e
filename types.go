package prio

import (
	"time"

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

// Ptr returns a pointer to v, for the optional fields of the models that
// Item, Person and the getters do not cover.
func Ptr[T any](v T) *T { return &v }

// CalendarDate is a date without a time of day: the from_date and to_date
// of the availability calls, birth dates, validity ranges. It is written as
// 2006-01-02.
type CalendarDate = wire.Date

// Date returns the calendar date of t (its year, month and day in t's
// location), for the date fields and parameters.
func Date(t time.Time) CalendarDate { return wire.NewDate(t) }
