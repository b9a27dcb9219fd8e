package priotest

import (
	"net/http"
	"testing"
	"testing/synctest"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestTokenEndpoint(t *testing.T) {
	t.Parallel()
	s := NewServer(t, WithCredentials("id-1", "secret-1"))
	a := newAPI(t, s)
	tests := []struct {
		name       string
		id, secret string
		body       string
		status     int
		code       string
	}{
		{"no credentials", "", "", `{"grant_type":"client_credentials"}`, http.StatusBadRequest, "invalid_request"},
		{"wrong secret", "id-1", "nope", `{"grant_type":"client_credentials"}`, http.StatusUnauthorized, "invalid_client"},
		{"unknown client", "id-2", "secret-1", `{"grant_type":"client_credentials"}`, http.StatusUnauthorized, "invalid_client"},
		{"other grant", "id-1", "secret-1", `{"grant_type":"password"}`, http.StatusBadRequest, "unsupported_grant_type"},
		{"no body", "id-1", "secret-1", ``, http.StatusBadRequest, "INVALID_REQUEST"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := a.tokenRequest(tt.id, tt.secret, tt.body)
			assert.Equal(t, tt.status, r.status, "%s", r.body)
			assert.Equal(t, tt.code, r.errorCode(t))
			if tt.status == http.StatusUnauthorized {
				assert.Contains(t, r.header.Get("WWW-Authenticate"), "Basic")
			}
		})
	}
	t.Run("valid", func(t *testing.T) {
		r := a.tokenRequest("id-1", "secret-1", `{"grant_type":"client_credentials","scope":"s1"}`)
		require.Equal(t, http.StatusOK, r.status, "%s", r.body)
		m := r.json(t)
		assert.Equal(t, "Bearer", m["token_type"])
		assert.EqualValues(t, 3600, m["expires_in"])
		assert.Equal(t, "s1", m["scope"])
		assert.NotEmpty(t, m["access_token"])
	})
}

func TestBearerRules(t *testing.T) {
	t.Parallel()
	s := NewServer(t)
	good := newAPI(t, s).login()
	tests := []struct {
		name   string
		auth   string
		status int
		code   string
	}{
		{"no Authorization header", "", http.StatusBadRequest, "INVALID_REQUEST"},
		{"unknown token", "Bearer not-a-token", http.StatusUnauthorized, "INVALID_TOKEN"},
		{"Basic instead of Bearer", "Basic c2FuZGJveC1jbGllbnQ6c2FuZGJveC1zZWNyZXQ=", http.StatusUnauthorized, "INVALID_TOKEN"},
		{"scheme only", "Bearer", http.StatusUnauthorized, "INVALID_TOKEN"},
		{"valid token", "Bearer " + good.token, http.StatusOK, ""},
		{"scheme is case-insensitive", "bearer " + good.token, http.StatusOK, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a := newAPI(t, s)
			req := a.request(http.MethodGet, "/products", nil)
			if tt.auth != "" {
				req.Header.Set("Authorization", tt.auth)
			}
			r := a.send(req)
			assert.Equal(t, tt.status, r.status, "%s", r.body)
			if tt.code != "" {
				assert.Equal(t, tt.code, r.errorCode(t))
				assert.NotEmpty(t, r.json(t)["error_reference"])
			}
		})
	}
}

func TestPingNeedsNoToken(t *testing.T) {
	t.Parallel()
	s := NewServer(t)
	r := newAPI(t, s).do(http.MethodGet, "/system/ping", nil)
	assert.Equal(t, http.StatusOK, r.status)
	assert.Equal(t, "Ping", string(r.body))
}

func TestTokenExpires(t *testing.T) {
	t.Parallel()
	synctest.Test(t, func(t *testing.T) {
		s, err := NewUnstarted(WithTokenTTL(time.Minute))
		require.NoError(t, err)
		defer s.Close()
		a := pipeAPI(t, s).login()
		assert.Equal(t, http.StatusOK, a.do(http.MethodGet, "/products", nil).status)

		time.Sleep(time.Minute - time.Second)
		assert.Equal(t, http.StatusOK, a.do(http.MethodGet, "/products", nil).status, "still valid just before the TTL")

		time.Sleep(time.Second)
		r := a.do(http.MethodGet, "/products", nil)
		assert.Equal(t, http.StatusUnauthorized, r.status)
		assert.Equal(t, "INVALID_TOKEN", r.errorCode(t))

		a.login()
		assert.Equal(t, http.StatusOK, a.do(http.MethodGet, "/products", nil).status, "a new token works")
	})
}

// TestSubSecondTokens: a token may live less than a second; expires_in
// rounds up to a whole second, while the server keeps the exact lifetime.
func TestSubSecondTokens(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		ttl       time.Duration
		expiresIn int
	}{
		{300 * time.Millisecond, 1},
		{time.Millisecond, 1},
		{1500 * time.Millisecond, 2},
	} {
		t.Run(tc.ttl.String(), func(t *testing.T) {
			t.Parallel()
			clock := &fakeClock{now: time.Date(2030, 3, 1, 9, 0, 0, 0, time.UTC)}
			s := NewServer(t, WithClock(clock.Now), WithTokenTTL(tc.ttl))
			a := newAPI(t, s)
			r := a.tokenRequest(DefaultClientID, DefaultClientSecret, `{"grant_type":"client_credentials"}`)
			require.Equal(t, http.StatusOK, r.status, "%s", r.body)
			assert.EqualValues(t, tc.expiresIn, r.json(t)["expires_in"])
			a.token = r.json(t)["access_token"].(string)

			clock.Add(tc.ttl - time.Nanosecond)
			assert.Equal(t, http.StatusOK, a.do(http.MethodGet, "/products", nil).status, "valid until its TTL")
			clock.Add(time.Nanosecond)
			assert.Equal(t, http.StatusUnauthorized, a.do(http.MethodGet, "/products", nil).status, "expired at its TTL")
			a.login()
			assert.Equal(t, http.StatusOK, a.do(http.MethodGet, "/products", nil).status, "a new token works")
		})
	}
}
