package prio

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// fakeAuthServer issues tokens tok-1, tok-2, ... and accepts only the
// current one on /v3.8/distributor/ping.
type fakeAuthServer struct {
	mu       sync.Mutex
	issued   int
	current  string
	tokenReq []*http.Request
	bodies   []string
	apiCalls atomic.Int32
	keys     []string
}

func (f *fakeAuthServer) handler(t *testing.T) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/v3.8/distributor/oauth2/token":
			b, _ := io.ReadAll(r.Body)
			f.mu.Lock()
			f.issued++
			f.current = fmt.Sprintf("tok-%d", f.issued)
			f.tokenReq = append(f.tokenReq, r)
			f.bodies = append(f.bodies, string(b))
			tok := f.current
			f.mu.Unlock()
			w.Header().Set("Content-Type", "application/json")
			_ = json.NewEncoder(w).Encode(map[string]any{"access_token": tok, "token_type": "Bearer", "expires_in": 3600})
		case "/v3.8/distributor/ping":
			f.apiCalls.Add(1)
			b, _ := io.ReadAll(r.Body)
			f.mu.Lock()
			ok := r.Header.Get("Authorization") == "Bearer "+f.current
			f.keys = append(f.keys, r.URL.Query().Get("key"))
			f.mu.Unlock()
			if !ok {
				w.WriteHeader(http.StatusUnauthorized)
				return
			}
			_, _ = w.Write(b)
		default:
			t.Errorf("unexpected path %s", r.URL.Path)
		}
	})
}

func (f *fakeAuthServer) expire() {
	f.mu.Lock()
	f.current = "nobody-has-this"
	f.mu.Unlock()
}

func newTestAuth(t *testing.T, srv *httptest.Server, cfg config) *authTransport {
	base, err := url.Parse(srv.URL + "/v3.8/distributor")
	require.NoError(t, err)
	return newAuthTransport(srv.Client().Transport, base, &cfg, &secretSet{})
}

func TestTokenRequestIsBasicAndJSON(t *testing.T) {
	t.Parallel()
	f := &fakeAuthServer{}
	srv := httptest.NewServer(f.handler(t))
	defer srv.Close()
	a := newTestAuth(t, srv, config{clientID: "my-client", clientSecret: newSecret("my-secret"), scopes: []string{"s1", "s2"}})

	for range 3 {
		req, _ := http.NewRequest(http.MethodGet, srv.URL+"/v3.8/distributor/ping", nil)
		resp, err := a.RoundTrip(req)
		require.NoError(t, err)
		discardBody(resp.Body)
		assert.Equal(t, http.StatusOK, resp.StatusCode)
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	require.Len(t, f.tokenReq, 1, "the token is cached across calls")
	r := f.tokenReq[0]
	id, sec, ok := r.BasicAuth()
	assert.True(t, ok)
	assert.Equal(t, "my-client", id)
	assert.Equal(t, "my-secret", sec)
	assert.Equal(t, "application/json", r.Header.Get("Content-Type"))
	var body map[string]string
	require.NoError(t, json.Unmarshal([]byte(f.bodies[0]), &body))
	assert.Equal(t, map[string]string{"grant_type": "client_credentials", "scope": "s1 s2"}, body)
}

func TestUnauthorizedRefreshesOnceAndResendsOnce(t *testing.T) {
	t.Parallel()
	f := &fakeAuthServer{}
	srv := httptest.NewServer(f.handler(t))
	defer srv.Close()
	a := newTestAuth(t, srv, config{clientID: "c", clientSecret: newSecret("s")})

	// Warm the cache, then make the server forget the token.
	req, _ := http.NewRequest(http.MethodPost, srv.URL+"/v3.8/distributor/ping", strings.NewReader("payload"))
	resp, err := a.RoundTrip(req)
	require.NoError(t, err)
	discardBody(resp.Body)
	f.expire()

	const n = 16
	var wg sync.WaitGroup
	statuses := make([]int, n)
	for i := range n {
		wg.Go(func() {
			req, _ := http.NewRequest(http.MethodPost, srv.URL+"/v3.8/distributor/ping", strings.NewReader("payload"))
			resp, err := a.RoundTrip(req)
			if !assert.NoError(t, err) {
				return
			}
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			statuses[i] = resp.StatusCode
			assert.Equal(t, "payload", string(b), "the body is replayed on the re-send")
		})
	}
	wg.Wait()
	for _, s := range statuses {
		assert.Equal(t, http.StatusOK, s)
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	assert.Equal(t, 2, f.issued, "16 concurrent 401s cause a single refresh")
	assert.LessOrEqual(t, int(f.apiCalls.Load()), 1+2*n, "one re-send per call at most")
}

func TestUnauthorizedTwiceIsReturned(t *testing.T) {
	t.Parallel()
	var tokenCalls, apiCalls atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if strings.HasSuffix(r.URL.Path, "/oauth2/token") {
			tokenCalls.Add(1)
			_, _ = io.WriteString(w, `{"access_token":"t","token_type":"Bearer","expires_in":3600}`)
			return
		}
		apiCalls.Add(1)
		w.WriteHeader(http.StatusUnauthorized)
	}))
	defer srv.Close()
	a := newTestAuth(t, srv, config{clientID: "c", clientSecret: newSecret("s")})
	req, _ := http.NewRequest(http.MethodGet, srv.URL+"/v3.8/distributor/ping", nil)
	resp, err := a.RoundTrip(req)
	require.NoError(t, err)
	discardBody(resp.Body)
	assert.Equal(t, http.StatusUnauthorized, resp.StatusCode)
	assert.Equal(t, int32(2), apiCalls.Load(), "exactly one extra send after a 401")
	assert.Equal(t, int32(2), tokenCalls.Load())
}

func TestBadCredentialsGiveTypedAuthError(t *testing.T) {
	t.Parallel()
	const secretValue = "wrong-secret-987"
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusUnauthorized)
		_, _ = io.WriteString(w, `{"error":"invalid_client","error_reference":"ref-1","error_description":"client authentication failed"}`)
	}))
	defer srv.Close()
	a := newTestAuth(t, srv, config{clientID: "c", clientSecret: newSecret(secretValue)})
	req, _ := http.NewRequest(http.MethodGet, srv.URL+"/v3.8/distributor/ping", nil)
	_, err := a.RoundTrip(req)
	require.Error(t, err)
	var ae *AuthError
	require.ErrorAs(t, err, &ae)
	assert.False(t, ae.retryable())
	assert.ErrorIs(t, err, ErrUnauthorized)
	assert.NotContains(t, err.Error(), secretValue)
}

func TestCredentialsStayOnTheAPIHost(t *testing.T) {
	t.Parallel()
	f := &fakeAuthServer{}
	srv := httptest.NewServer(f.handler(t))
	defer srv.Close()
	var seen http.Header
	other := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		seen = r.Header.Clone()
		seen.Set("X-Query", r.URL.RawQuery)
	}))
	defer other.Close()
	a := newTestAuth(t, srv, config{clientID: "c", clientSecret: newSecret("s"), apiKey: newSecret("the-api-key")})
	req, _ := http.NewRequest(http.MethodGet, other.URL+"/elsewhere", nil)
	resp, err := a.RoundTrip(req)
	require.NoError(t, err)
	discardBody(resp.Body)
	assert.Empty(t, seen.Get("Authorization"))
	assert.NotContains(t, seen.Get("X-Query"), "the-api-key")

	req, _ = http.NewRequest(http.MethodGet, srv.URL+"/v3.8/distributor/ping", nil)
	resp, err = a.RoundTrip(req)
	require.NoError(t, err)
	discardBody(resp.Body)
	assert.Equal(t, "", req.URL.Query().Get("key"), "the caller's request is not modified")
	f.mu.Lock()
	assert.Equal(t, "the-api-key", f.keys[len(f.keys)-1])
	f.mu.Unlock()
}

// TestRefusedCredentialsAreNotRetried: a token endpoint that refuses the
// client id and secret is asked once per call, not once per retry, and the
// call fails with ErrUnauthorized without anything reaching the API.
func TestRefusedCredentialsAreNotRetried(t *testing.T) {
	t.Parallel()
	var tokenCalls, apiCalls atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if strings.HasSuffix(r.URL.Path, "/oauth2/token") {
			tokenCalls.Add(1)
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(http.StatusUnauthorized)
			_, _ = io.WriteString(w, `{"error":"invalid_client","error_reference":"ref-9"}`)
			return
		}
		apiCalls.Add(1)
	}))
	defer srv.Close()
	p := DefaultRetryPolicy()
	p.BaseDelay, p.MaxDelay = time.Millisecond, time.Millisecond
	c, err := NewClient(WithBaseURL(srv.URL+"/v3.8/distributor"), WithCredentials("c", "wrong"), WithDistributorID("501"), WithRetryPolicy(p))
	require.NoError(t, err)
	_, err = c.Orders.Get(t.Context(), "ORDER12345")
	require.Error(t, err)
	assert.ErrorIs(t, err, ErrUnauthorized)
	var ae *AuthError
	assert.ErrorAs(t, err, &ae)
	assert.Equal(t, int32(1), tokenCalls.Load(), "refused credentials are not asked again")
	assert.Zero(t, apiCalls.Load())
}
