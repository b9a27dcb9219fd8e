package prio

import (
	"context"
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

// TestClientErrorGuardReserves: sends on their way hold places, so a send
// beyond the allowance waits for an answer; an answer that is a 4XX keeps
// its place counted for the window, and once the window is full the guard
// refuses at once.
func TestClientErrorGuardReserves(t *testing.T) {
	t.Parallel()
	synctest.Test(t, func(t *testing.T) {
		g := newClientErrorGuard(2, time.Minute)
		a, err := g.reserve(t.Context())
		assert.NoError(t, err)
		b, err := g.reserve(t.Context())
		assert.NoError(t, err)

		got := make(chan error, 1)
		go func() {
			p, err := g.reserve(t.Context())
			p.settle(true)
			got <- err
		}()
		synctest.Wait()
		assert.Empty(t, got, "a third send waits while two are on their way")
		a.settle(false)
		assert.NoError(t, <-got, "an answer that was no 4XX frees its place")
		a.settle(true) // settling twice changes nothing

		b.settle(true)
		_, err = g.reserve(t.Context())
		var le *LocalLimitError
		assert.ErrorAs(t, err, &le, "two 4XX in the window: refused without waiting")

		ctx, cancel := context.WithCancel(t.Context())
		cancel()
		g2 := newClientErrorGuard(1, time.Minute)
		held, _ := g2.reserve(t.Context())
		_, err = g2.reserve(ctx)
		assert.ErrorIs(t, err, context.Canceled, "the wait ends with the caller's context")
		held.settle(false)

		var off *clientErrorGuard
		p, err := off.reserve(t.Context())
		assert.NoError(t, err)
		p.settle(true)
	})
}
