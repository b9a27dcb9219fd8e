// Package wire holds the small value types that carry Prio's wire formats
// through the generated models: date-times that never leave as "Z", flags
// that arrive as either JSON booleans or strings, and decimal amounts that are
// never turned into floating point.
//
// The generated package uses these types through x-go-type in
// api/openapi.yaml; the root package re-exports them.
package wire

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"time"
)

// outLayout is how a DateTime is sent: RFC 3339 with a numeric offset, so UTC
// goes out as +00:00 (Prio rejects the Z suffix) and a caller's offset, which
// Prio reads as the activity's local time, is kept as given.
const outLayout = "2006-01-02T15:04:05.999999999-07:00"

// inLayouts are tried in order on input. Prio's own samples contain Z and
// fractional seconds, so both are accepted; a bare date is accepted for
// travel dates that some suppliers return without a time.
var inLayouts = []string{
	time.RFC3339Nano,
	"2006-01-02T15:04:05.999999999-0700",
	"2006-01-02T15:04:05.999999999",
	"2006-01-02",
}

// ErrInvalidDateTime is returned when a date-time cannot be parsed.
var ErrInvalidDateTime = errors.New("wire: invalid date-time")

// DateTime is a point in time in the offset it was given. Its zero value
// encodes as JSON null.
//
// The blank field keeps DateTime from being convertible to
// oapi-codegen's types.Date (a struct of one embedded time.Time too), which
// the runtime would otherwise use to format a query parameter as a bare
// date. With it, query parameters go through MarshalText.
type DateTime struct {
	_ struct{}
	time.Time
}

// NewDateTime wraps t, keeping its location.
func NewDateTime(t time.Time) DateTime { return DateTime{Time: t} }

// ParseDateTime parses any date-time form Prio sends: RFC 3339 with Z or a
// numeric offset, with or without fractional seconds.
func ParseDateTime(s string) (DateTime, error) {
	for _, l := range inLayouts {
		if t, err := time.Parse(l, s); err == nil {
			return DateTime{Time: t}, nil
		}
	}
	return DateTime{}, fmt.Errorf("%w: %q", ErrInvalidDateTime, truncate(s))
}

// String formats d as it is sent: never with Z.
func (d DateTime) String() string { return d.Time.Format(outLayout) }

// MarshalText implements encoding.TextMarshaler (used for query parameters).
func (d DateTime) MarshalText() ([]byte, error) {
	return []byte(d.String()), nil
}

// UnmarshalText implements encoding.TextUnmarshaler.
func (d *DateTime) UnmarshalText(b []byte) error {
	v, err := ParseDateTime(string(b))
	if err != nil {
		return err
	}
	*d = v
	return nil
}

// Bind lets oapi-codegen's runtime read a DateTime from a query or path
// parameter (the generated server's parameter binding).
func (d *DateTime) Bind(s string) error { return d.UnmarshalText([]byte(s)) }

// MarshalJSON implements json.Marshaler.
func (d DateTime) MarshalJSON() ([]byte, error) {
	if d.IsZero() {
		return []byte("null"), nil
	}
	return []byte(`"` + d.String() + `"`), nil
}

// UnmarshalJSON implements json.Unmarshaler. null and "" leave d zero.
func (d *DateTime) UnmarshalJSON(b []byte) error {
	if bytes.Equal(b, []byte("null")) {
		*d = DateTime{}
		return nil
	}
	var s string
	if err := json.Unmarshal(b, &s); err != nil {
		return fmt.Errorf("%w: not a string", ErrInvalidDateTime)
	}
	if s == "" {
		*d = DateTime{}
		return nil
	}
	return d.UnmarshalText([]byte(s))
}

func truncate(s string) string {
	const max = 64
	if len(s) > max {
		return s[:max] + "..."
	}
	return s
}
