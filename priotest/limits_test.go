package priotest

import (
	"io"
	"net/http"
	"testing"
	"testing/synctest"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestClientErrorBan(t *testing.T) {
	t.Parallel()
	synctest.Test(t, func(t *testing.T) {
		s, err := NewUnstarted(WithClientErrorLimit(3))
		require.NoError(t, err)
		defer s.Close()
		a := pipeAPI(t, s).login()
		for i := range 3 {
			require.Equal(t, http.StatusNotFound, a.do(http.MethodGet, "/orders/99999999", nil).status, "4XX %d", i+1)
			time.Sleep(time.Second)
		}
		require.Equal(t, http.StatusOK, a.do(http.MethodGet, "/products", nil).status, "three 4XX are allowed")

		require.Equal(t, http.StatusNotFound, a.do(http.MethodGet, "/orders/99999999", nil).status, "the fourth 4XX")
		banned := a.do(http.MethodGet, "/products", nil)
		assert.Equal(t, http.StatusTooManyRequests, banned.status)
		assert.Equal(t, "TOO_MANY_ERRORS", banned.errorCode(t))
		assert.Equal(t, "60", banned.header.Get("Retry-After"))

		time.Sleep(59 * time.Second)
		assert.Equal(t, http.StatusTooManyRequests, a.do(http.MethodGet, "/products", nil).status, "still banned")
		time.Sleep(time.Second)
		assert.Equal(t, http.StatusOK, a.do(http.MethodGet, "/products", nil).status, "the ban lasts a minute")
	})
}

func TestErrorsOutsideTheWindowDoNotCount(t *testing.T) {
	t.Parallel()
	synctest.Test(t, func(t *testing.T) {
		s, err := NewUnstarted(WithClientErrorLimit(2))
		require.NoError(t, err)
		defer s.Close()
		a := pipeAPI(t, s).login()
		for range 6 {
			require.Equal(t, http.StatusNotFound, a.do(http.MethodGet, "/orders/99999999", nil).status)
			time.Sleep(31 * time.Second)
		}
		assert.Equal(t, http.StatusOK, a.do(http.MethodGet, "/products", nil).status, "never more than two 4XX in one minute")
	})
}

func TestRequestLimit(t *testing.T) {
	t.Parallel()
	synctest.Test(t, func(t *testing.T) {
		s, err := NewUnstarted(WithRequestLimit(5))
		require.NoError(t, err)
		defer s.Close()
		a := pipeAPI(t, s).login() // request 1
		for i := range 4 {
			require.Equal(t, http.StatusOK, a.do(http.MethodGet, "/products", nil).status, "request %d", i+2)
			time.Sleep(10 * time.Second)
		}
		over := a.do(http.MethodGet, "/products", nil)
		assert.Equal(t, http.StatusTooManyRequests, over.status)
		assert.Equal(t, "RATE_LIMIT_EXCEEDED", over.errorCode(t))
		assert.Equal(t, "20", over.header.Get("Retry-After"), "until the first request leaves the window")

		time.Sleep(20 * time.Second)
		assert.Equal(t, http.StatusOK, a.do(http.MethodGet, "/products", nil).status)
	})
}

func TestLimitsOff(t *testing.T) {
	t.Parallel()
	s := NewServer(t, WithClientErrorLimit(0), WithRequestLimit(0))
	a := newAPI(t, s).login()
	for range 70 {
		require.Equal(t, http.StatusNotFound, a.do(http.MethodGet, "/orders/99999999", nil).status)
	}
	assert.Equal(t, http.StatusOK, a.do(http.MethodGet, "/products", nil).status)
}

func TestDefaultErrorLimitIsSixty(t *testing.T) {
	t.Parallel()
	synctest.Test(t, func(t *testing.T) {
		s, err := NewUnstarted()
		require.NoError(t, err)
		defer s.Close()
		a := pipeAPI(t, s).login()
		for i := range 60 {
			require.Equal(t, http.StatusNotFound, a.do(http.MethodGet, "/orders/99999999", nil).status, "4XX %d", i+1)
			time.Sleep(900 * time.Millisecond)
		}
		require.Equal(t, http.StatusOK, a.do(http.MethodGet, "/products", nil).status)
		require.Equal(t, http.StatusNotFound, a.do(http.MethodGet, "/orders/99999999", nil).status)
		assert.Equal(t, http.StatusTooManyRequests, a.do(http.MethodGet, "/products", nil).status, "the 61st 4XX within a minute bans")
	})
}

// rawStatus sends req on a fresh connection and returns the status, or 0
// when no status arrived; a body cut short is not an error here.
func rawStatus(t *testing.T, req *http.Request) int {
	t.Helper()
	tr := &http.Transport{DisableKeepAlives: true}
	defer tr.CloseIdleConnections()
	resp, err := (&http.Client{Transport: tr, Timeout: 30 * time.Second}).Do(req)
	if err != nil {
		return 0
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, resp.Body)
	return resp.StatusCode
}

// TestEvery4XXCounts sends the same failing request twice under a limit of
// one 4XX a minute: when the answer counts, the second one bans the client
// and a third gets the ban's 429, which itself does not count.
func TestEvery4XXCounts(t *testing.T) {
	t.Parallel()
	missing := func(a *api) *http.Request { return a.request(http.MethodGet, "/orders/99999999", nil) }
	products := func(a *api) *http.Request { return a.request(http.MethodGet, "/products", nil) }
	token := func(id, secret string) func(a *api) *http.Request {
		return func(a *api) *http.Request {
			req := a.request(http.MethodPost, "/oauth2/token", `{"grant_type":"client_credentials"}`)
			req.Header.Del("Authorization")
			if id != "" {
				req.SetBasicAuth(id, secret)
			}
			return req
		}
	}
	tests := []struct {
		name    string
		faults  Profile
		req     func(a *api) *http.Request
		status  int // of each of the two sends; 0 for no answer
		counted bool
	}{
		{"404 unknown order", Profile{}, missing, http.StatusNotFound, true},
		{"injected 429", Sequence("getProducts", Fault429, Fault429), products, http.StatusTooManyRequests, true},
		{"injected 429 without Retry-After", Sequence("getProducts", Fault429NoRetryAfter, Fault429NoRetryAfter), products, http.StatusTooManyRequests, true},
		{"404 with a malformed body", Sequence("getOrder", FaultMalformedJSON, FaultMalformedJSON), missing, http.StatusNotFound, true},
		{"404 with a truncated body", Sequence("getOrder", FaultTruncatedJSON, FaultTruncatedJSON), missing, http.StatusNotFound, true},
		{"404 reset mid-body", Sequence("getOrder", FaultResetMidBody, FaultResetMidBody), missing, http.StatusNotFound, true},
		{"token without credentials", Profile{}, token("", ""), http.StatusBadRequest, true},
		{"token with a wrong secret", Profile{}, token(DefaultClientID, "nope"), http.StatusUnauthorized, true},
		{"unknown path", Profile{}, func(a *api) *http.Request {
			return a.request(http.MethodGet, "/no-such-thing", nil)
		}, http.StatusNotFound, true},
		{"503 before processing", Sequence("getProducts", Fault5xxBefore, Fault5xxBefore), products, http.StatusServiceUnavailable, false},
		{"500 instead of a 404", Sequence("getOrder", Fault5xxAfter, Fault5xxAfter), missing, http.StatusInternalServerError, false},
		{"404 dropped", Sequence("getOrder", FaultDropAfter, FaultDropAfter), missing, 0, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			s := NewServer(t, WithClientErrorLimit(1), WithFaults(tt.faults))
			a := newAPI(t, s).login()
			for i := range 2 {
				require.Equal(t, tt.status, rawStatus(t, tt.req(a)), "send %d", i+1)
			}
			if !tt.counted {
				st := s.Stats()
				assert.Zero(t, st.ClientErrors)
				assert.Zero(t, st.Bans)
				assert.Equal(t, http.StatusOK, a.do(http.MethodGet, "/products", nil).status, "not banned")
				return
			}
			third := a.send(tt.req(a))
			assert.Equal(t, http.StatusTooManyRequests, third.status, "%s", third.body)
			assert.Equal(t, "TOO_MANY_ERRORS", third.errorCode(t))
			st := s.Stats()
			assert.Equal(t, 2, st.ClientErrors, "the ban's own 429 is not counted")
			assert.Equal(t, 1, st.Bans)
			assert.Equal(t, 2, st.MaxClientErrorsPerMinute)
		})
	}
}

// TestExpiredTokenErrorsCountAgainstTheClient: the 401s of an expired token
// count against its client, so they ban the client, not just its address.
func TestExpiredTokenErrorsCountAgainstTheClient(t *testing.T) {
	t.Parallel()
	clock := &fakeClock{now: time.Date(2030, 3, 1, 9, 0, 0, 0, time.UTC)}
	s := NewServer(t, WithClock(clock.Now), WithTokenTTL(time.Minute), WithClientErrorLimit(1))
	old := newAPI(t, s).login()
	clock.Add(time.Minute)
	for range 2 {
		require.Equal(t, http.StatusUnauthorized, old.do(http.MethodGet, "/products", nil).status)
	}
	r := newAPI(t, s).tokenRequest(DefaultClientID, DefaultClientSecret, `{"grant_type":"client_credentials"}`)
	assert.Equal(t, http.StatusTooManyRequests, r.status, "the client is banned, even for a new token: %s", r.body)
	assert.Equal(t, "TOO_MANY_ERRORS", r.errorCode(t))
}

// TestMaxClientErrorsPerMinute checks the rolling-minute maximum at window
// edges, and that another client's errors do not add to it.
func TestMaxClientErrorsPerMinute(t *testing.T) {
	t.Parallel()
	synctest.Test(t, func(t *testing.T) {
		s, err := NewUnstarted(WithClientErrorLimit(100))
		require.NoError(t, err)
		defer s.Close()
		a := pipeAPI(t, s).login()
		errs := func(n int) {
			for range n {
				require.Equal(t, http.StatusNotFound, a.do(http.MethodGet, "/orders/99999999", nil).status)
			}
		}
		steps := []struct {
			sleep time.Duration
			n     int
			max   int
		}{
			{0, 3, 3},
			{30 * time.Second, 3, 6}, // (−30s, 30s]: 3 + 3
			{30 * time.Second, 2, 6}, // (0s, 60s]: the first 3 left, 3 + 2
			{time.Second, 2, 7},      // (1s, 61s]: 3 + 2 + 2
			{2 * time.Minute, 1, 7},  // alone in its minute
		}
		total := 0
		for i, st := range steps {
			time.Sleep(st.sleep)
			errs(st.n)
			total += st.n
			got := s.Stats()
			assert.Equal(t, st.max, got.MaxClientErrorsPerMinute, "step %d", i)
			assert.Equal(t, total, got.ClientErrors, "step %d", i)
		}
		other := pipeAPI(t, s) // no token: its 400s count against its address
		for range 5 {
			require.Equal(t, http.StatusBadRequest, other.do(http.MethodGet, "/products", nil).status)
		}
		got := s.Stats()
		assert.Equal(t, total+5, got.ClientErrors)
		assert.Equal(t, 7, got.MaxClientErrorsPerMinute, "five errors of another client")
		assert.Zero(t, got.Bans)

		s.Reset()
		assert.Zero(t, s.Stats().ClientErrors)
		assert.Zero(t, s.Stats().MaxClientErrorsPerMinute)
	})
}

func TestBansAreCounted(t *testing.T) {
	t.Parallel()
	synctest.Test(t, func(t *testing.T) {
		s, err := NewUnstarted(WithClientErrorLimit(2))
		require.NoError(t, err)
		defer s.Close()
		a := pipeAPI(t, s).login()
		for round := 1; round <= 2; round++ {
			for range 3 {
				require.Equal(t, http.StatusNotFound, a.do(http.MethodGet, "/orders/99999999", nil).status)
			}
			for range 5 {
				require.Equal(t, http.StatusTooManyRequests, a.do(http.MethodGet, "/orders/99999999", nil).status)
			}
			st := s.Stats()
			assert.Equal(t, round, st.Bans)
			assert.Equal(t, 3*round, st.ClientErrors, "the ban's 429s are not counted")
			time.Sleep(time.Minute)
		}
	})
}
