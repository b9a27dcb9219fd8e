package wire_test

import (
	"encoding/json"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/priosdk/prio-go/wire"
)

// TestRawKeepsAnyValue: every JSON type decodes and is encoded back as
// received; numbers keep their digits.
func TestRawKeepsAnyValue(t *testing.T) {
	t.Parallel()
	for _, in := range []string{`"2026-12-25"`, `12.50`, `1e400`, `true`, `{"date":"2026-12-25","price":10.10}`, `[1,"a",null]`, `null`} {
		t.Run(in, func(t *testing.T) {
			t.Parallel()
			var holder struct {
				V wire.Raw   `json:"v"`
				L []wire.Raw `json:"l"`
			}
			require.NoError(t, json.Unmarshal([]byte(`{"v":`+in+`,"l":[`+in+`]}`), &holder))
			assert.Equal(t, in, holder.V.String())
			out, err := json.Marshal(holder)
			require.NoError(t, err)
			assert.Equal(t, `{"v":`+in+`,"l":[`+in+`]}`, string(out))
		})
	}
}

func TestRawAccessors(t *testing.T) {
	t.Parallel()
	var zero wire.Raw
	assert.True(t, zero.IsZero())
	assert.True(t, zero.IsNull())
	assert.Nil(t, zero.JSON())
	out, err := json.Marshal(zero)
	require.NoError(t, err)
	assert.Equal(t, "null", string(out))

	s := wire.RawText("AFTER")
	txt, ok := s.Text()
	assert.True(t, ok)
	assert.Equal(t, "AFTER", txt)
	_, ok = s.Object()
	assert.False(t, ok)

	o, err := wire.ParseRaw([]byte(` {"limit":"100.00","used":12.5} `))
	require.NoError(t, err)
	m, ok := o.Object()
	require.True(t, ok)
	assert.Equal(t, `12.5`, string(m["used"]))
	_, ok = o.Text()
	assert.False(t, ok)
	var generic map[string]any
	require.NoError(t, o.Decode(&generic))
	assert.Equal(t, json.Number("12.5"), generic["used"], "Decode keeps numbers as text")
	var typed struct {
		Limit wire.Decimal `json:"limit"`
	}
	require.NoError(t, o.Decode(&typed))
	assert.Equal(t, wire.Decimal("100.00"), typed.Limit)

	r, err := wire.RawOf(map[string]int{"n": 1})
	require.NoError(t, err)
	assert.Equal(t, `{"n":1}`, string(r.JSON()))
	assert.Equal(t, r, wire.Raw(r), "Raw is comparable")

	_, err = wire.ParseRaw([]byte(`{"open":`))
	assert.ErrorIs(t, err, wire.ErrInvalidRaw)
	_, err = wire.RawOf(func() {})
	assert.ErrorIs(t, err, wire.ErrInvalidRaw)
}
