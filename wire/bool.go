package wire

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
)

// Bool is a flag whose type the spec guesses: Prio's v3.5 models typed these
// flags as strings and v3.8 sends JSON booleans, so the spec calls them
// booleans (the boolean rule of api/exceptions.yaml). A guess must never make
// a response undecodable, so Bool decodes any JSON value:
//
//   - true and false, the strings "true", "false", "1", "0", "yes" and "no"
//     (in any letter case) and the empty string (false) are flags: Value
//     reports them and they are sent back as a JSON boolean, the form v3.8
//     wants;
//   - anything else (another string, a number, an object, an array, null) is
//     kept as it was received: Value reports it as unknown, Raw returns it,
//     and encoding writes it back unchanged.
//
// The zero value is the flag false. Bool values are comparable.
type Bool struct {
	v bool
	// raw is the JSON text of a received value that is not a flag; empty
	// for a flag.
	raw string
}

// ErrInvalidBool is returned by the text forms (query parameters) for a
// value that is not a flag. JSON decoding never returns it.
var ErrInvalidBool = errors.New("wire: invalid boolean")

// NewBool returns the flag v.
func NewBool(v bool) Bool { return Bool{v: v} }

// Ptr returns a pointer to b, for optional fields of generated models.
func (b Bool) Ptr() *Bool { return &b }

// Bool returns the flag, and false for a value that is not one.
func (b Bool) Bool() bool { return b.raw == "" && b.v }

// Value returns the flag and true, or false and false when the value
// received was not a flag (see Raw).
func (b Bool) Value() (v, ok bool) {
	if b.raw != "" {
		return false, false
	}
	return b.v, true
}

// Raw returns the JSON text received when it was not a flag, and nil for a
// flag.
func (b Bool) Raw() json.RawMessage {
	if b.raw == "" {
		return nil
	}
	return json.RawMessage(b.raw)
}

// String returns "true" or "false", or the JSON text of a value that is not
// a flag.
func (b Bool) String() string {
	if b.raw != "" {
		return b.raw
	}
	if b.v {
		return "true"
	}
	return "false"
}

// MarshalJSON implements json.Marshaler: a JSON boolean for a flag, the
// received text otherwise.
func (b Bool) MarshalJSON() ([]byte, error) { return []byte(b.String()), nil }

// UnmarshalJSON implements json.Unmarshaler. It never fails on valid JSON;
// see Bool for what is a flag.
func (b *Bool) UnmarshalJSON(data []byte) error {
	data = bytes.TrimSpace(data)
	switch {
	case string(data) == "true":
		*b = Bool{v: true}
		return nil
	case string(data) == "false":
		*b = Bool{}
		return nil
	case len(data) >= 2 && data[0] == '"' && data[len(data)-1] == '"':
		t := data[1 : len(data)-1]
		if bytes.IndexByte(t, '\\') >= 0 {
			var s string
			if json.Unmarshal(data, &s) == nil {
				t = []byte(s)
			}
		}
		if v, ok := parseFlag(t); ok {
			*b = Bool{v: v}
			return nil
		}
	}
	if !json.Valid(data) {
		return fmt.Errorf("%w: not JSON: %s", ErrInvalidBool, truncate(string(data)))
	}
	*b = Bool{raw: string(data)}
	return nil
}

// parseFlag reads the text forms of a flag.
func parseFlag(t []byte) (v, ok bool) {
	switch {
	case len(t) == 0, string(t) == "0", bytes.EqualFold(t, []byte("false")), bytes.EqualFold(t, []byte("no")):
		return false, true
	case string(t) == "1", bytes.EqualFold(t, []byte("true")), bytes.EqualFold(t, []byte("yes")):
		return true, true
	}
	return false, false
}

// MarshalText implements encoding.TextMarshaler (used for query
// parameters). Only a flag has a text form.
func (b Bool) MarshalText() ([]byte, error) {
	if b.raw != "" {
		return nil, fmt.Errorf("%w: %s is not a flag", ErrInvalidBool, truncate(b.raw))
	}
	return []byte(b.String()), nil
}

// UnmarshalText implements encoding.TextUnmarshaler. It accepts the text
// forms of a flag ("true", "1", "yes", ...) and rejects anything else with
// ErrInvalidBool: a query parameter is not a guessed field.
func (b *Bool) UnmarshalText(t []byte) error {
	v, ok := parseFlag(t)
	if !ok {
		return fmt.Errorf("%w: %q", ErrInvalidBool, truncate(string(t)))
	}
	*b = Bool{v: v}
	return nil
}

// Bind lets oapi-codegen's runtime read a Bool from a query parameter (the
// generated server's parameter binding).
func (b *Bool) Bind(s string) error { return b.UnmarshalText([]byte(s)) }
