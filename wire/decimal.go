package wire

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
)

// Decimal is a money amount, price, fee, tax or percentage kept as its
// decimal text ("12.50", "21"), so no rounding ever happens between Prio and
// the caller. Every such field of the spec uses it (the money rule of
// api/exceptions.yaml). It decodes a JSON string or a JSON number, whose
// digits are kept exactly as received and never pass through floating
// point, and it is always sent as a JSON string. JSON null decodes as "".
type Decimal string

// ErrInvalidDecimal is returned for a value that is neither a string nor a
// number.
var ErrInvalidDecimal = errors.New("wire: invalid decimal")

// MarshalJSON implements json.Marshaler: always a JSON string.
func (d Decimal) MarshalJSON() ([]byte, error) { return json.Marshal(string(d)) }

// UnmarshalJSON implements json.Unmarshaler.
func (d *Decimal) UnmarshalJSON(b []byte) error {
	b = bytes.TrimSpace(b)
	if len(b) == 0 {
		return fmt.Errorf("%w: empty", ErrInvalidDecimal)
	}
	switch c := b[0]; {
	case string(b) == "null":
		*d = ""
		return nil
	case c == '"':
		// The common case, a plain string without escapes, needs no decoder.
		if len(b) >= 2 && b[len(b)-1] == '"' && bytes.IndexByte(b, '\\') < 0 && bytes.IndexByte(b[1:len(b)-1], '"') < 0 {
			*d = Decimal(b[1 : len(b)-1])
			return nil
		}
		var s string
		if err := json.Unmarshal(b, &s); err != nil {
			return fmt.Errorf("%w: %v", ErrInvalidDecimal, err)
		}
		*d = Decimal(s)
		return nil
	case c == '-' || (c >= '0' && c <= '9'):
		// A JSON number: valid JSON starting with a digit or a minus sign is
		// nothing else, and its text is the decimal.
		if !json.Valid(b) {
			return fmt.Errorf("%w: %s", ErrInvalidDecimal, truncate(string(b)))
		}
		*d = Decimal(b)
		return nil
	default:
		return fmt.Errorf("%w: %s", ErrInvalidDecimal, truncate(string(b)))
	}
}

// String returns the decimal text.
func (d Decimal) String() string { return string(d) }

// Ptr returns a pointer to d, for optional fields of generated models.
func (d Decimal) Ptr() *Decimal { return &d }
