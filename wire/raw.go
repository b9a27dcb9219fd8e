package wire

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
)

// Raw is a value of a schema that Prio's inventory names without defining
// (CreditLimit, ProductBlockoutDate, ...; the guessed_types of
// api/exceptions.yaml). The spec guesses a shape for it, but a guess must
// never make a response undecodable, so Raw accepts any JSON value, keeps the
// JSON text it received and encodes it back unchanged. Text, Object and
// Decode read it as the guess, or as whatever type the caller expects.
//
// The zero value holds nothing and encodes as JSON null. Raw values are
// comparable.
type Raw struct {
	// text is the JSON text; empty for the zero value.
	text string
}

// ErrInvalidRaw is returned for bytes that are not one JSON value.
var ErrInvalidRaw = errors.New("wire: invalid JSON value")

// ParseRaw returns a Raw holding the JSON text b, which must be one valid
// JSON value.
func ParseRaw(b []byte) (Raw, error) {
	b = bytes.TrimSpace(b)
	if !json.Valid(b) {
		return Raw{}, fmt.Errorf("%w: %s", ErrInvalidRaw, truncate(string(b)))
	}
	return Raw{text: string(b)}, nil
}

// RawOf returns a Raw holding v encoded as JSON.
func RawOf(v any) (Raw, error) {
	b, err := json.Marshal(v)
	if err != nil {
		return Raw{}, fmt.Errorf("%w: %v", ErrInvalidRaw, err)
	}
	return Raw{text: string(b)}, nil
}

// RawText returns a Raw holding the JSON string s, for the schemas guessed
// as open strings (CurrencySymbolPosition, PaymentClass).
func RawText(s string) Raw {
	b, _ := json.Marshal(s) // a string always encodes
	return Raw{text: string(b)}
}

// IsZero reports whether r holds nothing (it was never set or decoded).
func (r Raw) IsZero() bool { return r.text == "" }

// IsNull reports whether r holds nothing or JSON null.
func (r Raw) IsNull() bool { return r.text == "" || r.text == "null" }

// JSON returns a copy of the JSON text, or nil for the zero value.
func (r Raw) JSON() json.RawMessage {
	if r.text == "" {
		return nil
	}
	return json.RawMessage(r.text)
}

// String returns the JSON text ("" for the zero value).
func (r Raw) String() string { return r.text }

// Text returns the value and true when it is a JSON string.
func (r Raw) Text() (string, bool) {
	if len(r.text) == 0 || r.text[0] != '"' {
		return "", false
	}
	var s string
	if err := json.Unmarshal([]byte(r.text), &s); err != nil {
		return "", false
	}
	return s, true
}

// Object returns the members of the value and true when it is a JSON object.
// The members are JSON text, so numbers keep their digits.
func (r Raw) Object() (map[string]json.RawMessage, bool) {
	if len(r.text) == 0 || r.text[0] != '{' {
		return nil, false
	}
	var m map[string]json.RawMessage
	if err := json.Unmarshal([]byte(r.text), &m); err != nil {
		return nil, false
	}
	return m, true
}

// Decode decodes the value into v as encoding/json would, except that
// numbers decoded into an interface value become json.Number, not float64.
func (r Raw) Decode(v any) error {
	text := r.text
	if text == "" {
		text = "null"
	}
	dec := json.NewDecoder(strings.NewReader(text))
	dec.UseNumber()
	return dec.Decode(v)
}

// MarshalJSON implements json.Marshaler: the text received, or null.
func (r Raw) MarshalJSON() ([]byte, error) {
	if r.text == "" {
		return []byte("null"), nil
	}
	return []byte(r.text), nil
}

// UnmarshalJSON implements json.Unmarshaler. It keeps any valid JSON value.
func (r *Raw) UnmarshalJSON(b []byte) error {
	v, err := ParseRaw(b)
	if err != nil {
		return err
	}
	*r = v
	return nil
}
