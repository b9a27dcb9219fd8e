package wire

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
)

// ErrInvalidObject is returned by UnknownFields and AppendFields for bytes
// that are not a JSON object.
var ErrInvalidObject = errors.New("wire: invalid JSON object")

// UnknownFields returns the members of the JSON object b whose names are
// not in known, each as the JSON text received, or nil when there are none.
// JSON null gives nil. The generated models that keep unknown fields call it
// from UnmarshalJSON, after decoding the fields they know, so the members it
// skips are only scanned, never decoded.
func UnknownFields(b []byte, known map[string]struct{}) (map[string]json.RawMessage, error) {
	i := skipSpace(b, 0)
	if bytes.Equal(bytes.TrimSpace(b), []byte("null")) {
		return nil, nil
	}
	if i >= len(b) || b[i] != '{' {
		return nil, fmt.Errorf("%w: %s", ErrInvalidObject, truncate(string(b)))
	}
	var out map[string]json.RawMessage
	i = skipSpace(b, i+1)
	if i < len(b) && b[i] == '}' {
		return nil, nil
	}
	for {
		if i >= len(b) || b[i] != '"' {
			return nil, fmt.Errorf("%w: member name expected at byte %d", ErrInvalidObject, i)
		}
		end, escaped, ok := skipString(b, i)
		if !ok {
			return nil, fmt.Errorf("%w: unterminated name at byte %d", ErrInvalidObject, i)
		}
		quoted := b[i:end]
		i = skipSpace(b, end)
		if i >= len(b) || b[i] != ':' {
			return nil, fmt.Errorf("%w: ':' expected at byte %d", ErrInvalidObject, i)
		}
		start := skipSpace(b, i+1)
		stop, ok := skipValue(b, start)
		if !ok {
			return nil, fmt.Errorf("%w: bad value at byte %d", ErrInvalidObject, start)
		}
		var key string
		var isKnown bool
		if escaped {
			if err := json.Unmarshal(quoted, &key); err != nil {
				return nil, fmt.Errorf("%w: %v", ErrInvalidObject, err)
			}
			_, isKnown = known[key]
		} else {
			// The conversion in the index expression does not allocate.
			_, isKnown = known[string(quoted[1:len(quoted)-1])]
		}
		if !isKnown {
			if !escaped {
				key = string(quoted[1 : len(quoted)-1])
			}
			if out == nil {
				out = make(map[string]json.RawMessage)
			}
			out[key] = bytes.Clone(b[start:stop])
		}
		i = skipSpace(b, stop)
		if i < len(b) && b[i] == ',' {
			i = skipSpace(b, i+1)
			continue
		}
		if i < len(b) && b[i] == '}' {
			return out, nil
		}
		return nil, fmt.Errorf("%w: ',' or '}' expected at byte %d", ErrInvalidObject, i)
	}
}

// AppendFields returns the JSON object obj with the members of extra added
// after its own, in name order. Names in known are skipped, so a field the
// model defines is never written twice. Each value must be valid JSON. The
// generated models that keep unknown fields call it from MarshalJSON.
func AppendFields(obj []byte, extra map[string]json.RawMessage, known map[string]struct{}) ([]byte, error) {
	if len(extra) == 0 {
		return obj, nil
	}
	obj = bytes.TrimSpace(obj)
	if len(obj) < 2 || obj[0] != '{' || obj[len(obj)-1] != '}' {
		return nil, fmt.Errorf("%w: %s", ErrInvalidObject, truncate(string(obj)))
	}
	names := make([]string, 0, len(extra))
	for k := range extra {
		if _, isKnown := known[k]; !isKnown {
			names = append(names, k)
		}
	}
	slices.Sort(names)
	var buf bytes.Buffer
	buf.Grow(len(obj) + 32*len(names))
	buf.Write(obj[:len(obj)-1])
	first := len(bytes.TrimSpace(obj[1:len(obj)-1])) == 0
	for _, k := range names {
		if !first {
			buf.WriteByte(',')
		}
		first = false
		key, err := json.Marshal(k)
		if err != nil {
			return nil, err
		}
		buf.Write(key)
		buf.WriteByte(':')
		v := extra[k]
		if len(v) == 0 {
			buf.WriteString("null")
			continue
		}
		if err := json.Compact(&buf, v); err != nil {
			return nil, fmt.Errorf("%w: field %q: %v", ErrInvalidObject, k, err)
		}
	}
	buf.WriteByte('}')
	return buf.Bytes(), nil
}

func skipSpace(b []byte, i int) int {
	for i < len(b) {
		switch b[i] {
		case ' ', '\t', '\n', '\r':
			i++
		default:
			return i
		}
	}
	return i
}

// skipString returns the index just past the string starting at b[i] (a
// quote), and whether its text differs from its bytes: it has an escape, or
// a byte outside ASCII that may be invalid UTF-8 (which encoding/json
// replaces).
func skipString(b []byte, i int) (end int, escaped, ok bool) {
	for j := i + 1; j < len(b); j++ {
		switch c := b[j]; {
		case c == '\\':
			escaped = true
			j++
		case c == '"':
			return j + 1, escaped, true
		case c >= 0x80:
			escaped = true
		}
	}
	return 0, false, false
}

// skipValue returns the index just past the JSON value starting at b[i].
// It trusts b to be valid JSON (json.Unmarshal has checked it) and only
// finds where the value ends.
func skipValue(b []byte, i int) (int, bool) {
	if i >= len(b) {
		return 0, false
	}
	switch b[i] {
	case '"':
		end, _, ok := skipString(b, i)
		return end, ok
	case '{', '[':
		depth := 0
		for j := i; j < len(b); j++ {
			switch b[j] {
			case '"':
				end, _, ok := skipString(b, j)
				if !ok {
					return 0, false
				}
				j = end - 1
			case '{', '[':
				depth++
			case '}', ']':
				depth--
				if depth == 0 {
					return j + 1, true
				}
			}
		}
		return 0, false
	default:
		j := i
		for j < len(b) {
			switch b[j] {
			case ',', '}', ']', ' ', '\t', '\n', '\r':
				return j, j > i
			}
			j++
		}
		return j, j > i
	}
}
