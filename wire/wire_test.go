package wire_test

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/oapi-codegen/runtime"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/priosdk/prio-go/wire"
)

func zone(name string, hours, minutes int) *time.Location {
	off := hours*3600 + minutes*60
	if hours < 0 {
		off = hours*3600 - minutes*60
	}
	return time.FixedZone(name, off)
}

func TestDateTimeEncodesWithNumericOffset(t *testing.T) {
	t.Parallel()
	dubai := zone("GST", 4, 0)
	newYork := zone("EST", -5, 0)
	kathmandu := zone("NPT", 5, 45)
	cases := []struct {
		name string
		in   time.Time
		want string
	}{
		{"utc becomes +00:00", time.Date(2026, 5, 12, 10, 0, 0, 0, time.UTC), "2026-05-12T10:00:00+00:00"},
		{"caller offset kept", time.Date(2026, 5, 12, 14, 0, 0, 0, dubai), "2026-05-12T14:00:00+04:00"},
		{"negative offset kept", time.Date(2026, 1, 3, 8, 30, 0, 0, newYork), "2026-01-03T08:30:00-05:00"},
		{"odd offset kept", time.Date(2026, 1, 3, 8, 30, 0, 0, kathmandu), "2026-01-03T08:30:00+05:45"},
		{"milliseconds kept", time.Date(2026, 5, 12, 14, 0, 0, 716_000_000, dubai), "2026-05-12T14:00:00.716+04:00"},
		{"nanoseconds kept", time.Date(2026, 5, 12, 10, 0, 0, 123_456_789, time.UTC), "2026-05-12T10:00:00.123456789+00:00"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			d := wire.NewDateTime(c.in)
			assert.Equal(t, c.want, d.String())

			j, err := json.Marshal(d)
			require.NoError(t, err)
			assert.Equal(t, `"`+c.want+`"`, string(j))

			txt, err := d.MarshalText()
			require.NoError(t, err)
			assert.Equal(t, c.want, string(txt))
			assert.NotContains(t, string(txt), "Z")
		})
	}
}

func TestDateTimeZeroIsNull(t *testing.T) {
	t.Parallel()
	j, err := json.Marshal(wire.DateTime{})
	require.NoError(t, err)
	assert.Equal(t, "null", string(j))

	// A pointer field left nil disappears with omitempty; a set one is sent.
	type body struct {
		At *wire.DateTime `json:"at,omitempty"`
	}
	j, err = json.Marshal(body{})
	require.NoError(t, err)
	assert.Equal(t, `{}`, string(j))
}

func TestParseDateTime(t *testing.T) {
	t.Parallel()
	cases := []struct {
		in      string
		instant time.Time
		offset  int // seconds east of UTC the value keeps
	}{
		{"2025-08-05T13:11:12Z", time.Date(2025, 8, 5, 13, 11, 12, 0, time.UTC), 0},
		{"2025-08-05T13:11:12.716Z", time.Date(2025, 8, 5, 13, 11, 12, 716_000_000, time.UTC), 0},
		{"2026-05-12T14:00:00+04:00", time.Date(2026, 5, 12, 10, 0, 0, 0, time.UTC), 4 * 3600},
		{"2026-05-12T14:00:00+0400", time.Date(2026, 5, 12, 10, 0, 0, 0, time.UTC), 4 * 3600},
		{"2026-05-12T14:00:00.5+0400", time.Date(2026, 5, 12, 10, 0, 0, 500_000_000, time.UTC), 4 * 3600},
		{"2026-01-03T08:30:00-05:00", time.Date(2026, 1, 3, 13, 30, 0, 0, time.UTC), -5 * 3600},
		{"2026-05-12T14:00:00.123456789+02:00", time.Date(2026, 5, 12, 12, 0, 0, 123_456_789, time.UTC), 2 * 3600},
		{"2026-05-12", time.Date(2026, 5, 12, 0, 0, 0, 0, time.UTC), 0},
	}
	for _, c := range cases {
		t.Run(c.in, func(t *testing.T) {
			t.Parallel()
			d, err := wire.ParseDateTime(c.in)
			require.NoError(t, err)
			assert.True(t, d.Equal(c.instant), "got %s, want %s", d.Time, c.instant)
			_, off := d.Zone()
			assert.Equal(t, c.offset, off)

			var viaJSON wire.DateTime
			require.NoError(t, json.Unmarshal([]byte(`"`+c.in+`"`), &viaJSON))
			assert.True(t, viaJSON.Equal(c.instant))

			var viaText wire.DateTime
			require.NoError(t, viaText.UnmarshalText([]byte(c.in)))
			assert.True(t, viaText.Equal(c.instant))
		})
	}
}

func TestDateTimeNullAndEmptyGiveZero(t *testing.T) {
	t.Parallel()
	for _, in := range []string{`null`, `""`} {
		d := wire.NewDateTime(time.Now())
		require.NoError(t, json.Unmarshal([]byte(in), &d), in)
		assert.True(t, d.IsZero(), in)
	}
}

func TestDateTimeRejectsGarbage(t *testing.T) {
	t.Parallel()
	for _, in := range []string{
		`"yesterday"`, `"2026-13-01T00:00:00Z"`, `"2026-05-12T25:00:00+04:00"`, `"2026-05-12 14:00"`,
		`"12/05/2026"`, `1715508000`, `true`, `{}`, `["2026-05-12"]`, `"` + strings.Repeat("9", 200) + `"`,
	} {
		var d wire.DateTime
		err := json.Unmarshal([]byte(in), &d)
		require.Error(t, err, in)
		assert.ErrorIs(t, err, wire.ErrInvalidDateTime, in)
		assert.LessOrEqual(t, len(err.Error()), 120, "the message quotes a bounded part of the input")
	}
	_, err := wire.ParseDateTime("not a date")
	assert.ErrorIs(t, err, wire.ErrInvalidDateTime)
	var d wire.DateTime
	assert.ErrorIs(t, d.UnmarshalText([]byte("soon")), wire.ErrInvalidDateTime)
}

// TestDateTimeQueryParameter: query parameters go through MarshalText, so a
// UTC time must reach the URL as +00:00 (escaped), never as Z.
func TestDateTimeQueryParameter(t *testing.T) {
	t.Parallel()
	d := wire.NewDateTime(time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC))
	txt, err := d.MarshalText()
	require.NoError(t, err)
	q := url.Values{"order_created_from": {string(txt)}}
	assert.Equal(t, "order_created_from=2026-03-01T00%3A00%3A00%2B00%3A00", q.Encode())
}

func TestDateTimeJSONRoundTripKeepsOffset(t *testing.T) {
	t.Parallel()
	type slot struct {
		From wire.DateTime  `json:"from"`
		To   *wire.DateTime `json:"to,omitempty"`
	}
	in := `{"from":"2026-03-20T18:00:00+04:00","to":"2026-03-20T20:00:00.25+04:00"}`
	var s slot
	require.NoError(t, json.Unmarshal([]byte(in), &s))
	out, err := json.Marshal(s)
	require.NoError(t, err)
	assert.JSONEq(t, in, string(out))
}

func TestBoolDecodesFlags(t *testing.T) {
	t.Parallel()
	cases := []struct {
		in   string
		want bool
	}{
		{`true`, true}, {`false`, false},
		{`"true"`, true}, {`"false"`, false},
		{`"1"`, true}, {`"0"`, false},
		{`"yes"`, true}, {`"no"`, false},
		{`"TRUE"`, true}, {`"False"`, false}, {`"Yes"`, true}, {`"NO"`, false},
		{`""`, false}, {` true `, true}, {`"tr\u0075e"`, true},
	}
	for _, c := range cases {
		t.Run(c.in, func(t *testing.T) {
			t.Parallel()
			b := wire.NewBool(!c.want)
			require.NoError(t, json.Unmarshal([]byte(c.in), &b))
			v, ok := b.Value()
			assert.True(t, ok, "a flag")
			assert.Equal(t, c.want, v)
			assert.Equal(t, c.want, b.Bool())
			assert.Nil(t, b.Raw())
			out, err := json.Marshal(b)
			require.NoError(t, err)
			assert.Equal(t, fmt.Sprint(c.want), string(out), "a flag leaves as a JSON boolean")
		})
	}
}

// TestBoolKeepsOtherValues: a value that is not a flag is not an error; it
// is kept and sent back as received.
func TestBoolKeepsOtherValues(t *testing.T) {
	t.Parallel()
	for _, in := range []string{`"maybe"`, `"t"`, `1`, `0`, `12.50`, `{"a":1.10}`, `[true]`, `null`, `"tr\u0075th"`} {
		t.Run(in, func(t *testing.T) {
			t.Parallel()
			b := wire.NewBool(true)
			require.NoError(t, json.Unmarshal([]byte(in), &b))
			v, ok := b.Value()
			assert.False(t, ok)
			assert.False(t, v)
			assert.False(t, b.Bool())
			assert.Equal(t, in, string(b.Raw()))
			out, err := json.Marshal(b)
			require.NoError(t, err)
			assert.Equal(t, in, string(out))
		})
	}
	var b wire.Bool
	assert.ErrorIs(t, b.UnmarshalJSON([]byte(`{`)), wire.ErrInvalidBool, "only broken JSON fails")
}

func TestBoolInStructs(t *testing.T) {
	t.Parallel()
	type flags struct {
		Released wire.Bool  `json:"released"`
		Archived *wire.Bool `json:"archived,omitempty"`
		Visible  *wire.Bool `json:"visible,omitempty"`
	}
	out, err := json.Marshal(flags{Released: wire.NewBool(true), Archived: wire.NewBool(false).Ptr()})
	require.NoError(t, err)
	assert.JSONEq(t, `{"released":true,"archived":false}`, string(out))

	var f flags
	require.NoError(t, json.Unmarshal([]byte(`{"released":"sometimes","archived":"0","visible":null}`), &f))
	assert.Nil(t, f.Visible, "null leaves an optional flag unset")
	out, err = json.Marshal(f)
	require.NoError(t, err)
	assert.JSONEq(t, `{"released":"sometimes","archived":false}`, string(out))
	assert.Equal(t, wire.NewBool(false), *f.Archived, "Bool is comparable")
}

func TestBoolText(t *testing.T) {
	t.Parallel()
	txt, err := wire.NewBool(true).MarshalText()
	require.NoError(t, err)
	assert.Equal(t, "true", string(txt))
	var b wire.Bool
	require.NoError(t, b.UnmarshalText([]byte("yes")))
	assert.True(t, b.Bool())
	require.NoError(t, b.Bind("0"))
	assert.False(t, b.Bool())
	assert.ErrorIs(t, b.UnmarshalText([]byte("maybe")), wire.ErrInvalidBool, "a query parameter is strict")

	require.NoError(t, json.Unmarshal([]byte(`"maybe"`), &b))
	_, err = b.MarshalText()
	assert.ErrorIs(t, err, wire.ErrInvalidBool, "a kept value has no text form")
}

func TestBoolBindsFromParameters(t *testing.T) {
	t.Parallel()
	var b *wire.Bool
	require.NoError(t, runtime.BindQueryParameterWithOptions("form", true, false, "force_release",
		url.Values{"force_release": {"true"}}, &b, runtime.BindQueryParameterOptions{Type: "boolean"}))
	require.NotNil(t, b)
	assert.True(t, b.Bool())
	q, err := runtime.StyleParamWithOptions("form", true, "force_release", *b,
		runtime.StyleParamOptions{ParamLocation: runtime.ParamLocationQuery, Type: "boolean"})
	require.NoError(t, err)
	assert.Equal(t, "force_release=true", q)
}

func TestDecimalKeepsText(t *testing.T) {
	t.Parallel()
	cases := []struct {
		in   string
		want wire.Decimal
	}{
		{`"12.50"`, "12.50"},
		{`12.50`, "12.50"},
		{`"0.10"`, "0.10"},
		{`0.1`, "0.1"},
		{`21`, "21"},
		{`-4.50`, "-4.50"},
		{`1e3`, "1e3"},
		{`12345678901234567890.123456789`, "12345678901234567890.123456789"},
		{` 7.25 `, "7.25"},
		{`null`, ""},
		{`"12.5\u0030"`, "12.50"},
		{`-0.5`, "-0.5"},
	}
	for _, c := range cases {
		t.Run(c.in, func(t *testing.T) {
			t.Parallel()
			d := wire.Decimal("unset")
			require.NoError(t, json.Unmarshal([]byte(c.in), &d))
			assert.Equal(t, c.want, d)
			assert.Equal(t, string(c.want), d.String())
		})
	}
}

func TestDecimalEncodesAsString(t *testing.T) {
	t.Parallel()
	type price struct {
		Total wire.Decimal  `json:"total"`
		Fee   *wire.Decimal `json:"fee,omitempty"`
	}
	var p price
	require.NoError(t, json.Unmarshal([]byte(`{"total":12.50,"fee":"0.99"}`), &p))
	out, err := json.Marshal(p)
	require.NoError(t, err)
	assert.JSONEq(t, `{"total":"12.50","fee":"0.99"}`, string(out))
}

func TestDecimalRejectsNonNumbers(t *testing.T) {
	t.Parallel()
	for _, in := range []string{`{}`, `{"amount":"1.00"}`, `[]`, `["1.00"]`, `true`} {
		var d wire.Decimal
		err := d.UnmarshalJSON([]byte(in))
		require.Error(t, err, in)
		assert.ErrorIs(t, err, wire.ErrInvalidDecimal, in)
		assert.True(t, errors.Is(err, wire.ErrInvalidDecimal))
	}
	// Through encoding/json the same inputs fail too.
	var d wire.Decimal
	assert.Error(t, json.Unmarshal([]byte(`{}`), &d))
}

// FuzzParseDateTime: whatever arrives from the network must not panic, and
// whatever parses must be sent back without Z and mean the same instant in
// the same offset.
func FuzzParseDateTime(f *testing.F) {
	for _, s := range []string{
		"2025-08-05T13:11:12.716Z",
		"2026-05-12T14:00:00+04:00",
		"2026-05-12T14:00:00+0400",
		"2026-05-12",
		"2026-05-12T14:00:00",
		"",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		d, err := wire.ParseDateTime(s)
		if err != nil {
			if !errors.Is(err, wire.ErrInvalidDateTime) {
				t.Fatalf("ParseDateTime(%q) error %v is not ErrInvalidDateTime", s, err)
			}
			return
		}
		out := d.String()
		if strings.ContainsAny(out, "Zz") {
			t.Fatalf("ParseDateTime(%q).String() = %q contains Z", s, out)
		}
		again, err := wire.ParseDateTime(out)
		if err != nil {
			t.Fatalf("re-parsing %q (from %q): %v", out, s, err)
		}
		if !again.Equal(d.Time) {
			t.Fatalf("%q -> %q -> %v, want instant %v", s, out, again.Time, d.Time)
		}
		_, off1 := d.Zone()
		_, off2 := again.Zone()
		if off1 != off2 {
			t.Fatalf("%q -> %q: offset %d became %d", s, out, off1, off2)
		}
	})
}

func TestDateTimeBindsFromParameters(t *testing.T) {
	t.Parallel()
	var d wire.DateTime
	if err := runtime.BindStyledParameterWithOptions("form", "order_created_from", url.QueryEscape("2026-01-01T09:30:00+01:00"), &d,
		runtime.BindStyledParameterOptions{ParamLocation: runtime.ParamLocationQuery, Explode: true, Required: true}); err != nil {
		t.Fatalf("binding a date-time query parameter: %v", err)
	}
	if got := d.String(); got != "2026-01-01T09:30:00+01:00" {
		t.Fatalf("bound %q", got)
	}
	if err := d.Bind("yesterday"); !errors.Is(err, wire.ErrInvalidDateTime) {
		t.Fatalf("Bind(yesterday) = %v, want ErrInvalidDateTime", err)
	}
}
