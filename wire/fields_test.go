package wire_test

import (
	"encoding/json"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/priosdk/prio-go/wire"
)

var knownTwo = map[string]struct{}{"a": {}, "b": {}}

func TestUnknownFields(t *testing.T) {
	t.Parallel()
	got, err := wire.UnknownFields([]byte(` { "a" : 1, "x\u0079" : {"n": [1.10, "}", "\"]"]}, "b":"s", "z" : -2.50e1 } `), knownTwo)
	require.NoError(t, err)
	assert.Equal(t, map[string]json.RawMessage{
		"xy": json.RawMessage(`{"n": [1.10, "}", "\"]"]}`),
		"z":  json.RawMessage(`-2.50e1`),
	}, got)

	for _, in := range []string{`{}`, `{"a":null,"b":[]}`, `null`} {
		got, err := wire.UnknownFields([]byte(in), knownTwo)
		require.NoError(t, err, in)
		assert.Nil(t, got, in)
	}
	for _, in := range []string{`[]`, `"a"`, `{"a"`, `{"a":}`, `{"a":1 "b":2}`, `{"a":"open}`} {
		_, err := wire.UnknownFields([]byte(in), knownTwo)
		assert.ErrorIs(t, err, wire.ErrInvalidObject, in)
	}
}

func TestAppendFields(t *testing.T) {
	t.Parallel()
	extra := map[string]json.RawMessage{"z": json.RawMessage(` 1.50 `), "a": json.RawMessage(`"dup"`), "m": json.RawMessage(`{"k": true}`)}
	out, err := wire.AppendFields([]byte(`{"a":1}`), extra, knownTwo)
	require.NoError(t, err)
	assert.Equal(t, `{"a":1,"m":{"k":true},"z":1.50}`, string(out), "sorted, compacted, known names skipped")

	out, err = wire.AppendFields([]byte(`{}`), map[string]json.RawMessage{"q": nil}, knownTwo)
	require.NoError(t, err)
	assert.Equal(t, `{"q":null}`, string(out))

	out, err = wire.AppendFields([]byte(`{"a":1}`), nil, knownTwo)
	require.NoError(t, err)
	assert.Equal(t, `{"a":1}`, string(out))

	_, err = wire.AppendFields([]byte(`{"a":1}`), map[string]json.RawMessage{"q": json.RawMessage(`{`)}, knownTwo)
	assert.ErrorIs(t, err, wire.ErrInvalidObject)
	_, err = wire.AppendFields([]byte(`[1]`), map[string]json.RawMessage{"q": json.RawMessage(`1`)}, knownTwo)
	assert.ErrorIs(t, err, wire.ErrInvalidObject)
}

// FuzzUnknownFields: on any valid JSON object, UnknownFields agrees with
// encoding/json about the members and their text.
func FuzzUnknownFields(f *testing.F) {
	for _, s := range []string{`{"a":1,"x":{"y":[1,"]"]}}`, `{}`, `{"\u0061":"b","c":"\\"}`, `{"a" : true , "b":null}`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		var want map[string]json.RawMessage
		if json.Unmarshal(b, &want) != nil || want == nil {
			return
		}
		got, err := wire.UnknownFields(b, knownTwo)
		if err != nil {
			t.Fatalf("UnknownFields(%q): %v", b, err)
		}
		for k := range knownTwo {
			delete(want, k)
		}
		if len(want) != len(got) {
			t.Fatalf("UnknownFields(%q) = %d members, want %d", b, len(got), len(want))
		}
		for k, v := range want {
			if string(got[k]) != string(v) {
				t.Fatalf("UnknownFields(%q)[%q] = %s, want %s", b, k, got[k], v)
			}
		}
	})
}
