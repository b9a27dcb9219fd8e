package prio

import (
	"fmt"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestNewClientValidates(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name string
		opts []Option
	}{
		{"no credentials", []Option{WithDistributorID("501")}},
		{"no distributor", []Option{WithCredentials("id", "secret")}},
		{"empty secret", []Option{WithCredentials("id", ""), WithDistributorID("501")}},
		{"relative base URL", []Option{WithCredentials("id", "s"), WithDistributorID("501"), WithBaseURL("/v3.8/distributor")}},
		{"ftp base URL", []Option{WithCredentials("id", "s"), WithDistributorID("501"), WithBaseURL("ftp://x/v3.8/distributor")}},
		{"base URL with query", []Option{WithCredentials("id", "s"), WithDistributorID("501"), WithBaseURL("https://x/v3.8/distributor?key=1")}},
		{"base URL without the API root", []Option{WithCredentials("id", "s"), WithDistributorID("501"), WithBaseURL("http://x/")}},
		{"base URL of another version", []Option{WithCredentials("id", "s"), WithDistributorID("501"), WithBaseURL("https://x/v3.7/distributor")}},
		{"nil server", []Option{WithServer(nil)}},
		{"unknown environment", []Option{WithCredentials("id", "s"), WithDistributorID("501"), WithEnvironment("internal-distributor-api")}},
		{"bad app header", []Option{WithCredentials("id", "s"), WithDistributorID("501"), WithAppHeader("X-Name", "v")}},
		{"app reference is ours", []Option{WithCredentials("id", "s"), WithDistributorID("501"), WithAppHeader("App-Reference", "v")}},
		{"zero max sends", []Option{WithCredentials("id", "s"), WithDistributorID("501"), WithRetryPolicy(RetryPolicy{})}},
		{"negative delay", []Option{WithCredentials("id", "s"), WithDistributorID("501"), WithRetryPolicy(func() RetryPolicy {
			p := DefaultRetryPolicy()
			p.BaseDelay = -time.Second
			return p
		}())}},
		{"nil http client", []Option{WithCredentials("id", "s"), WithDistributorID("501"), WithHTTPClient(nil)}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			c, err := NewClient(tc.opts...)
			require.Error(t, err)
			assert.Nil(t, c)
			assert.ErrorIs(t, err, ErrInvalidConfig)
		})
	}
}

func TestEnvironmentsAndDefaults(t *testing.T) {
	t.Parallel()
	assert.Equal(t, "https://distributor-api.prioticket.com/v3.8/distributor", Production.BaseURL())
	assert.Equal(t, "https://sandbox-distributor-api.prioticket.com/v3.8/distributor", Sandbox.BaseURL())
	assert.Equal(t, "https://staging-distributor-api.prioticket.com/v3.8/distributor", Staging.BaseURL())

	c, err := NewClient(WithCredentials("id", "s"), WithDistributorID("501"))
	require.NoError(t, err)
	assert.Equal(t, Sandbox.BaseURL(), c.BaseURL())
	assert.Equal(t, "501", c.DistributorID())
	assert.NotNil(t, c.API())

	c, err = NewClient(WithCredentials("id", "s"), WithDistributorID("501"), WithEnvironment(Staging))
	require.NoError(t, err)
	assert.Equal(t, Staging.BaseURL(), c.BaseURL())
}

func TestFromEnv(t *testing.T) {
	t.Setenv("PRIO_CLIENT_ID", "")
	t.Setenv("PRIO_CLIENT_SECRET", "")
	t.Setenv("PRIO_ENV", "")
	t.Setenv("PRIO_BASE_URL", "")
	opts, ok, err := FromEnv()
	require.NoError(t, err)
	assert.False(t, ok)
	assert.Empty(t, opts)

	t.Setenv("PRIO_CLIENT_ID", "client")
	_, ok, err = FromEnv()
	assert.True(t, ok)
	assert.ErrorIs(t, err, ErrInvalidConfig, "a secret-less id is an error, not a silent fallback")

	t.Setenv("PRIO_CLIENT_SECRET", "s3cr3t-value")
	t.Setenv("PRIO_DISTRIBUTOR_ID", "777")
	t.Setenv("PRIO_ENV", "staging")
	t.Setenv("PRIO_API_KEY", "api-key-value")
	opts, ok, err = FromEnv()
	require.NoError(t, err)
	require.True(t, ok)
	c, err := NewClient(opts...)
	require.NoError(t, err)
	assert.Equal(t, Staging.BaseURL(), c.BaseURL())
	assert.Equal(t, "777", c.DistributorID())

	t.Setenv("PRIO_BASE_URL", "http://127.0.0.1:1/v3.8/distributor")
	_, _, err = FromEnv()
	assert.ErrorIs(t, err, ErrInvalidConfig, "PRIO_ENV and PRIO_BASE_URL together are ambiguous")

	t.Setenv("PRIO_ENV", "")
	opts, _, err = FromEnv()
	require.NoError(t, err)
	c, err = NewClient(opts...)
	require.NoError(t, err)
	assert.Equal(t, "http://127.0.0.1:1/v3.8/distributor", c.BaseURL())

	t.Setenv("PRIO_BASE_URL", "")
	t.Setenv("PRIO_ENV", "moon")
	_, _, err = FromEnv()
	assert.ErrorIs(t, err, ErrInvalidConfig)
}

func TestSecretsNeverPrinted(t *testing.T) {
	t.Parallel()
	const secretValue, apiKey = "very-secret-value-123", "api-key-value-456"
	c, err := NewClient(WithCredentials("client-id", secretValue), WithDistributorID("501"), WithAPIKey(apiKey))
	require.NoError(t, err)
	for _, format := range []string{"%v", "%+v", "%#v", "%s"} {
		for _, v := range []any{c, c.cfg, &c.cfg, c.cfg.clientSecret} {
			out := fmt.Sprintf(format, v)
			assert.NotContains(t, out, secretValue, format)
			assert.NotContains(t, out, apiKey, format)
		}
	}
}

func TestBaseURLMustEndInTheAPIRoot(t *testing.T) {
	t.Parallel()
	_, err := NewClient(WithCredentials("id", "s"), WithDistributorID("501"), WithBaseURL("http://x/"))
	require.ErrorIs(t, err, ErrInvalidConfig)
	assert.Contains(t, err.Error(), "/v3.8/distributor", "the message names the expected form")
	assert.Contains(t, err.Error(), Sandbox.BaseURL())

	c, err := NewClient(WithCredentials("id", "s"), WithDistributorID("501"), WithBaseURL("https://proxy.example/prio/v3.8/distributor/"))
	require.NoError(t, err)
	assert.Equal(t, "https://proxy.example/prio/v3.8/distributor", c.BaseURL(), "one trailing slash is dropped")
}

// fixedServer is a Server that is not a priotest one.
type fixedServer struct{ url, id, secret, distributor string }

func (f fixedServer) URL() string                   { return f.url }
func (f fixedServer) Credentials() (string, string) { return f.id, f.secret }
func (f fixedServer) DistributorID() string         { return f.distributor }

func TestWithServer(t *testing.T) {
	t.Parallel()
	c, err := NewClient(WithServer(fixedServer{"https://x/v3.8/distributor", "id", "s", "777"}))
	require.NoError(t, err)
	assert.Equal(t, "https://x/v3.8/distributor", c.BaseURL())
	assert.Equal(t, "777", c.DistributorID())
	assert.Equal(t, "id", c.cfg.clientID)
	assert.Equal(t, "s", c.cfg.clientSecret.value())

	_, err = NewClient(WithServer(fixedServer{"https://x/", "id", "s", "777"}))
	assert.ErrorIs(t, err, ErrInvalidConfig, "the server's URL is checked like any base URL")
	_, err = NewClient(WithServer(fixedServer{"https://x/v3.8/distributor", "", "", "777"}))
	assert.ErrorIs(t, err, ErrInvalidConfig)
}
