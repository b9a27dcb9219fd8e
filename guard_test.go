package prio

import (
	"testing"
	"testing/synctest"
	"time"

	"github.com/stretchr/testify/assert"
	"golang.org/x/time/rate"
)

func TestClientErrorGuardWindow(t *testing.T) {
	t.Parallel()
	synctest.Test(t, func(t *testing.T) {
		g := newClientErrorGuard(3, time.Minute)
		for range 2 {
			g.record(time.Now())
		}
		assert.Zero(t, g.wait(time.Now()), "below the limit")
		time.Sleep(10 * time.Second)
		g.record(time.Now())
		assert.Equal(t, 50*time.Second, g.wait(time.Now()), "closed until the first answer is a minute old")

		// Answers to sends already in flight keep the memory bounded.
		for range 10 {
			g.record(time.Now())
		}
		assert.Len(t, g.times, 3)
		assert.Equal(t, time.Minute, g.wait(time.Now()), "the newest answers decide")
		time.Sleep(time.Minute)
		assert.Zero(t, g.wait(time.Now()))
		assert.Empty(t, g.times)
	})
	var off *clientErrorGuard
	off.record(time.Now())
	assert.Zero(t, off.wait(time.Now()))
	assert.Nil(t, newClientErrorGuard(0, time.Minute))
}

func TestRequestLimiterShape(t *testing.T) {
	t.Parallel()
	l := newRequestLimiter(1000)
	assert.Equal(t, 100, l.Burst())
	assert.Equal(t, rate.Limit(15), l.Limit(), "900 more a minute after the burst")
	l = newRequestLimiter(1)
	assert.Equal(t, 1, l.Burst())
}
