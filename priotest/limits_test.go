package priotest

import (
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
