package wire

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"time"
)

// DateLayout is how a Date is written: a calendar date, 2006-01-02.
const DateLayout = time.DateOnly

// ErrInvalidDate is returned when a date cannot be parsed.
var ErrInvalidDate = errors.New("wire: invalid date")

// Date is a calendar date: the from_date and to_date of availability,
// birth dates, validity ranges. Only the year, month and day of Time count;
// it is written as 2006-01-02 in JSON, in query parameters and as text.
//
// It has the same layout as oapi-codegen's runtime date (a struct of one
// embedded time.Time), which is what makes the runtime format and parse it
// as a date in query parameters.
type Date struct {
	time.Time
}

// NewDate is the calendar date of t in t's location.
func NewDate(t time.Time) Date {
	y, m, d := t.Date()
	return Date{Time: time.Date(y, m, d, 0, 0, 0, 0, time.UTC)}
}

// ParseDate reads a date written as 2006-01-02.
func ParseDate(s string) (Date, error) {
	t, err := time.Parse(DateLayout, s)
	if err != nil {
		return Date{}, fmt.Errorf("%w: %q", ErrInvalidDate, truncate(s))
	}
	return Date{Time: t}, nil
}

// String is the date as 2006-01-02 (empty for the zero Date).
func (d Date) String() string {
	if d.IsZero() {
		return ""
	}
	return d.Format(DateLayout)
}

// MarshalText writes 2006-01-02.
func (d Date) MarshalText() ([]byte, error) { return []byte(d.Format(DateLayout)), nil }

// UnmarshalText reads 2006-01-02.
func (d *Date) UnmarshalText(b []byte) error {
	v, err := ParseDate(string(b))
	if err != nil {
		return err
	}
	*d = v
	return nil
}

// MarshalJSON writes the date as a JSON string.
func (d Date) MarshalJSON() ([]byte, error) { return json.Marshal(d.Format(DateLayout)) }

// UnmarshalJSON reads a JSON string holding 2006-01-02; null leaves d
// unchanged.
func (d *Date) UnmarshalJSON(b []byte) error {
	if bytes.Equal(bytes.TrimSpace(b), []byte("null")) {
		return nil
	}
	var s string
	if err := json.Unmarshal(b, &s); err != nil {
		return fmt.Errorf("%w: %s", ErrInvalidDate, truncate(string(b)))
	}
	return d.UnmarshalText([]byte(s))
}

// Bind reads a query or path parameter (the runtime's Binder).
func (d *Date) Bind(src string) error { return d.UnmarshalText([]byte(src)) }
