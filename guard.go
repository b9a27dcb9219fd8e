package prio

import (
	"context"
	"fmt"
	"math"
	"sync"
	"time"

	"golang.org/x/time/rate"
)

// Client-wide protections shared by every call of one Client: the retry
// budget (no load multiplication during an outage), the 4XX guard (never
// trip Prio's ban of clients with 60 4XX answers in a minute) and the
// request-rate limiter (Prio's cap of 1,000 requests a minute).

// LocalLimitError reports a send the client refused to make because one of
// its own limits said no: the 4XX guard or the request-rate limiter. Nothing
// was sent for the refused send. It matches ErrRateLimited.
type LocalLimitError struct {
	Reason     string        // which limit refused, and why
	RetryAfter time.Duration // when the limit allows again (0 if unknown)
	Info       CallInfo      // the call so far (earlier sends, if any)
}

func (e *LocalLimitError) Error() string {
	msg := "prio: "
	if e.Info.Operation != "" {
		msg += e.Info.Operation + ": "
	}
	msg += "not sent: " + e.Reason
	if e.RetryAfter > 0 {
		msg += fmt.Sprintf(" [retry after %s]", e.RetryAfter.Round(time.Millisecond))
	}
	if e.Info.IdempotencyKey != "" {
		msg += " [key " + e.Info.IdempotencyKey + "]"
	}
	if e.Info.Sends > 0 {
		msg += fmt.Sprintf(" [sends %d]", e.Info.Sends)
	}
	return msg
}

// Is matches ErrRateLimited.
func (e *LocalLimitError) Is(target error) bool { return target == ErrRateLimited }

// retryBudget is a token bucket in the spirit of AWS's retry quota and
// gRPC's retry throttling. It starts full with burst tokens; every first
// send of a call adds ratio tokens (up to burst) and every retry takes one.
// When sends fail for everyone, retries therefore stop after the burst and
// then run at ratio per first send: total sends <= (1+ratio) x first sends
// + burst, however many calls and goroutines there are.
type retryBudget struct {
	ratio, burst float64

	mu     sync.Mutex
	tokens float64
}

// newRetryBudget returns nil (no budget) when ratio < 0.
func newRetryBudget(ratio, burst float64) *retryBudget {
	if ratio < 0 || math.IsNaN(ratio) {
		return nil
	}
	burst = max(burst, 0)
	return &retryBudget{ratio: ratio, burst: burst, tokens: burst}
}

// deposit is called once per logical call, when its first send leaves.
func (b *retryBudget) deposit() {
	if b == nil {
		return
	}
	b.mu.Lock()
	b.tokens = min(b.burst, b.tokens+b.ratio)
	b.mu.Unlock()
}

// withdraw takes the token a retry needs; false means no retry.
func (b *retryBudget) withdraw() bool {
	if b == nil {
		return true
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.tokens < 1 {
		return false
	}
	b.tokens--
	return true
}

// clientErrorGuard counts 4XX answers over a sliding window and refuses to
// send once limit of them fall within it, until the oldest leaves the
// window. It keeps at most limit timestamps.
type clientErrorGuard struct {
	limit  int
	window time.Duration

	mu    sync.Mutex
	times []time.Time // oldest first
}

// newClientErrorGuard returns nil (no guard) when limit < 1.
func newClientErrorGuard(limit int, window time.Duration) *clientErrorGuard {
	if limit < 1 {
		return nil
	}
	return &clientErrorGuard{limit: limit, window: window, times: make([]time.Time, 0, limit)}
}

// record notes a 4XX answer received at now.
func (g *clientErrorGuard) record(now time.Time) {
	if g == nil {
		return
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	g.pruneLocked(now)
	if len(g.times) == g.limit {
		// Already blocking: answers to sends that were in flight when the
		// guard closed. The newest timestamps decide when it reopens.
		copy(g.times, g.times[1:])
		g.times = g.times[:len(g.times)-1]
	}
	g.times = append(g.times, now)
}

// wait returns how long sending stays refused; 0 means send.
func (g *clientErrorGuard) wait(now time.Time) time.Duration {
	if g == nil {
		return 0
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	g.pruneLocked(now)
	if len(g.times) < g.limit {
		return 0
	}
	return g.times[0].Add(g.window).Sub(now)
}

func (g *clientErrorGuard) pruneLocked(now time.Time) {
	i := 0
	for i < len(g.times) && now.Sub(g.times[i]) >= g.window {
		i++
	}
	if i > 0 {
		n := copy(g.times, g.times[i:])
		g.times = g.times[:n]
	}
}

// newRequestLimiter returns a limiter that lets at most perMinute sends
// through in any minute, or nil (no limit) when perMinute < 1. A tenth of
// the minute's allowance may go at once; the rest refills evenly, so
// burst + refill over a minute never exceeds perMinute (for perMinute >= 2).
func newRequestLimiter(perMinute int) *rate.Limiter {
	if perMinute < 1 {
		return nil
	}
	burst := max(1, perMinute/10)
	refill := max(1, perMinute-burst)
	return rate.NewLimiter(rate.Limit(float64(refill)/time.Minute.Seconds()), burst)
}

// localLimits is what must say yes before any send leaves.
type localLimits struct {
	guard   *clientErrorGuard
	limiter *rate.Limiter
}

// admit returns nil when a send may leave now. It waits for the rate
// limiter when that wait ends before ctx does, and otherwise refuses with a
// *LocalLimitError at once. The waits select on ctx; nothing sleeps.
func (l *localLimits) admit(ctx context.Context) error {
	if w := l.guard.wait(time.Now()); w > 0 {
		return &LocalLimitError{
			Reason:     fmt.Sprintf("%d 4XX answers within a minute (Prio blocks a client after 60)", l.guard.limit),
			RetryAfter: w,
		}
	}
	if l.limiter == nil {
		return nil
	}
	r := l.limiter.Reserve()
	if !r.OK() {
		return &LocalLimitError{Reason: "client-side request rate limit"}
	}
	delay := r.Delay()
	if delay <= 0 {
		return nil
	}
	if dl, ok := ctx.Deadline(); ok && !time.Now().Add(delay).Before(dl) {
		r.Cancel()
		return &LocalLimitError{Reason: "client-side request rate limit: the wait would outlast the deadline", RetryAfter: delay}
	}
	t := time.NewTimer(delay)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		r.Cancel()
		return ctx.Err()
	}
}
