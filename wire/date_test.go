package wire_test

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/oapi-codegen/runtime"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/priosdk/prio-go/wire"
)

func TestDate(t *testing.T) {
	t.Parallel()
	late := time.Date(2026, 3, 9, 23, 30, 0, 0, time.FixedZone("", -5*3600))
	d := wire.NewDate(late)
	assert.Equal(t, "2026-03-09", d.String(), "the date in t's own location, not in UTC")

	b, err := json.Marshal(struct {
		D wire.Date  `json:"d"`
		P *wire.Date `json:"p,omitempty"`
	}{D: d})
	require.NoError(t, err)
	assert.JSONEq(t, `{"d":"2026-03-09"}`, string(b))

	var back struct{ D, N wire.Date }
	require.NoError(t, json.Unmarshal([]byte(`{"D":"2026-03-09","N":null}`), &back))
	assert.Equal(t, d, back.D)
	assert.True(t, back.N.IsZero())
	assert.ErrorIs(t, json.Unmarshal([]byte(`{"D":"2026-03-09T10:00:00+01:00"}`), &back), wire.ErrInvalidDate)

	// The runtime writes and reads it as a bare date in a query.
	q, err := runtime.StyleParamWithLocation("form", true, "from_date", runtime.ParamLocationQuery, d)
	require.NoError(t, err)
	assert.Equal(t, "from_date=2026-03-09", q)
	var bound wire.Date
	require.NoError(t, runtime.BindStyledParameterWithOptions("simple", "from_date", "2026-03-09", &bound, runtime.BindStyledParameterOptions{ParamLocation: runtime.ParamLocationQuery, Explode: false, Required: true}))
	assert.Equal(t, d, bound)
}
