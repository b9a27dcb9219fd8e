package prio

import (
	"net/url"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestRedactText(t *testing.T) {
	t.Parallel()
	cases := map[string]string{
		"Authorization: Bearer abc.DEF-123_x~+/=":     "Authorization: Bearer [REDACTED]",
		"authorization: basic dXNlcjpwYXNz":           "authorization: basic [REDACTED]",
		"token eyJhbGciOi.eyJzdWIiOiIx.sig-nature ok": "token [REDACTED] ok",
		"guest jane.doe+tag@mail.example.org booked":  "guest [REDACTED] booked",
		"call +31 (0)6-1234 5678 now":                 "call [REDACTED] now",
		"GET /x?key=abc123&page=2":                    "GET /x?key=[REDACTED]&page=2",
		"client_secret=s3cr3t password=hunter2":       "client_secret=[REDACTED] password=[REDACTED]",
		"HTTP 503 after 3 sends":                      "HTTP 503 after 3 sends",
		"dial tcp 127.0.0.1:443: connection refused":  "dial tcp 127.0.0.1:443: connection refused",
	}
	for in, want := range cases {
		assert.Equal(t, want, redactText(in), in)
	}
}

func TestRedactURL(t *testing.T) {
	t.Parallel()
	assert.Empty(t, redactURL(nil))
	u, err := url.Parse("https://user:pw@prio.test/v3.8/distributor/orders?items_per_page=10&key=APIKEY&guest_email=a%40b.c&order_external_reference=ext-1")
	require.NoError(t, err)
	got := redactURL(u)
	assert.Equal(t, "https://prio.test/v3.8/distributor/orders?guest_email=REDACTED&items_per_page=10&key=REDACTED&order_external_reference=ext-1", got)
	assert.Equal(t, "user:pw", u.User.String(), "the URL itself is not changed")
	plain, _ := url.Parse("https://prio.test/orders")
	assert.Equal(t, "https://prio.test/orders", redactURL(plain))
}

func TestRedactorValues(t *testing.T) {
	t.Parallel()
	r := redactor{values: &secretSet{}}
	r.values.addFixed("plain-secret-value")
	r.values.addToken("opaque-token-value")
	assert.Equal(t, "got [REDACTED] and [REDACTED]", r.text("got plain-secret-value and opaque-token-value"))
	assert.Equal(t, "only patterns: [REDACTED]", redactor{}.text("only patterns: a@b.co"))
}
