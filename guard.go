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

// Error says which local limit refused the send and when it allows again.
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
// + burst + perSecond x seconds, however many calls and goroutines there
// are.
//
// The floor (perSecond) keeps a client with little traffic from going
// without retries long after an outage: fed by first sends alone, an empty
// bucket would take ten calls to earn one retry, however much time has
// passed. An empty bucket therefore still allows perSecond retries a
// second, saving up at most one (a rate.Limiter of burst 1), so the floor
// adds a bounded rate, not a multiple of the load.
type retryBudget struct {
	ratio, burst float64
	floor        *rate.Limiter // nil: no floor

	mu     sync.Mutex
	tokens float64
}

// newRetryBudget returns nil (no budget) when ratio < 0; perSecond <= 0
// means no floor.
func newRetryBudget(ratio, burst, perSecond float64) *retryBudget {
	if ratio < 0 || math.IsNaN(ratio) {
		return nil
	}
	burst = max(burst, 0)
	b := &retryBudget{ratio: ratio, burst: burst, tokens: burst}
	if perSecond > 0 {
		b.floor = rate.NewLimiter(rate.Limit(perSecond), 1)
	}
	return b
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

// level returns the tokens in the bucket, for the telemetry gauge. The
// floor's token is left out: at most one, it would only blur how full the
// bucket is.
func (b *retryBudget) level() float64 {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.tokens
}

// withdraw takes the token a retry needs, from the bucket or else from the
// floor; false means no retry.
func (b *retryBudget) withdraw() bool {
	if b == nil {
		return true
	}
	b.mu.Lock()
	if b.tokens >= 1 {
		b.tokens--
		b.mu.Unlock()
		return true
	}
	b.mu.Unlock()
	return b.floor != nil && b.floor.Allow()
}

// clientErrorGuard keeps the client under Prio's ban of clients with too
// many 4XX answers in a minute. It counts 4XX answers over a sliding window,
// and it counts every send that is on its way as a 4XX to come: a send
// reserves a place before it leaves and gives it back (or turns it into a
// counted answer) when its answer arrives. So however many goroutines send
// at once, the answers of a window can never exceed the limit: at most
// limit minus the answers already counted may be in flight, and a send
// beyond that waits for one to come back. Once limit answers fall within
// the window, nothing is sent until the oldest leaves it. It keeps at most
// limit timestamps.
type clientErrorGuard struct {
	limit  int
	window time.Duration

	mu       sync.Mutex
	times    []time.Time   // counted 4XX answers, oldest first
	inflight int           // reserved places of sends on their way
	waiting  int           // reserve calls waiting for a place
	freed    chan struct{} // closed (and replaced) when a place is given back to waiters
}

// newClientErrorGuard returns nil (no guard) when limit < 1.
func newClientErrorGuard(limit int, window time.Duration) *clientErrorGuard {
	if limit < 1 {
		return nil
	}
	return &clientErrorGuard{limit: limit, window: window, times: make([]time.Time, 0, limit), freed: make(chan struct{})}
}

// guardPlace is one send's reserved place, held by value (no allocation
// per send). Settling it twice, or settling the zero place, is harmless.
type guardPlace struct{ g *clientErrorGuard }

// settle gives the place back; clientError says the answer was a 4XX,
// which then counts in the window.
func (p *guardPlace) settle(clientError bool) {
	if p.g == nil {
		return
	}
	g := p.g
	p.g = nil
	g.release(clientError, time.Now())
}

// reserve takes a place for a send, waiting while in-flight sends hold the
// rest of the allowance. It refuses at once with a *LocalLimitError when
// the window already holds limit answers, and returns ctx's error when ctx
// ends first. A nil guard gives the zero place.
func (g *clientErrorGuard) reserve(ctx context.Context) (guardPlace, error) {
	if g == nil {
		return guardPlace{}, nil
	}
	for {
		now := time.Now()
		g.mu.Lock()
		g.pruneLocked(now)
		if len(g.times) >= g.limit {
			w := g.times[0].Add(g.window).Sub(now)
			g.mu.Unlock()
			return guardPlace{}, g.refusal(w)
		}
		if len(g.times)+g.inflight < g.limit {
			g.inflight++
			g.mu.Unlock()
			return guardPlace{g: g}, nil
		}
		freed := g.freed
		g.waiting++
		var t *time.Timer
		var oldest <-chan time.Time
		if len(g.times) > 0 {
			t = time.NewTimer(g.times[0].Add(g.window).Sub(now))
			oldest = t.C
		}
		g.mu.Unlock()
		var err error
		select {
		case <-freed:
		case <-oldest:
		case <-ctx.Done():
			err = ctx.Err()
		}
		if t != nil {
			t.Stop()
		}
		g.mu.Lock()
		g.waiting--
		g.mu.Unlock()
		if err != nil {
			return guardPlace{}, err
		}
	}
}

// reserveNow takes a place without waiting for in-flight sends, refusing
// only when the window already holds limit answers. It is for the token
// request, which runs while the send that needs the token holds a place of
// its own: waiting there could wait for itself.
func (g *clientErrorGuard) reserveNow() (guardPlace, error) {
	if g == nil {
		return guardPlace{}, nil
	}
	now := time.Now()
	g.mu.Lock()
	defer g.mu.Unlock()
	g.pruneLocked(now)
	if len(g.times) >= g.limit {
		return guardPlace{}, g.refusal(g.times[0].Add(g.window).Sub(now))
	}
	g.inflight++
	return guardPlace{g: g}, nil
}

func (g *clientErrorGuard) refusal(wait time.Duration) *LocalLimitError {
	return &LocalLimitError{
		Reason:     fmt.Sprintf("%d 4XX answers within a minute (Prio blocks a client after 60)", g.limit),
		RetryAfter: wait,
	}
}

// release gives a place back at now, counting a 4XX answer.
func (g *clientErrorGuard) release(clientError bool, now time.Time) {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.inflight = max(g.inflight-1, 0)
	if clientError {
		g.recordLocked(now)
	}
	if g.waiting > 0 {
		close(g.freed)
		g.freed = make(chan struct{})
	}
}

// record counts a 4XX answer received at now that held no place.
func (g *clientErrorGuard) record(now time.Time) {
	if g == nil {
		return
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	g.recordLocked(now)
}

func (g *clientErrorGuard) recordLocked(now time.Time) {
	g.pruneLocked(now)
	if len(g.times) == g.limit {
		// Already closed: the newest timestamps decide when it reopens.
		copy(g.times, g.times[1:])
		g.times = g.times[:len(g.times)-1]
	}
	g.times = append(g.times, now)
}

// level returns the 4XX answers within the window at now plus the places
// held by sends on their way: how much of the allowance is used.
func (g *clientErrorGuard) level(now time.Time) int {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.pruneLocked(now)
	return len(g.times) + g.inflight
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

// admit returns the send's place in the 4XX guard when it may leave now
// (settle it with the answer). It waits for a place in the guard and for
// the rate limiter while those waits end before ctx does, and otherwise
// refuses with a *LocalLimitError at once. The waits select on ctx;
// nothing sleeps.
func (l *localLimits) admit(ctx context.Context) (guardPlace, error) {
	place, err := l.guard.reserve(ctx)
	if err != nil {
		return guardPlace{}, err
	}
	if err := l.waitRate(ctx); err != nil {
		place.settle(false)
		return guardPlace{}, err
	}
	return place, nil
}

func (l *localLimits) waitRate(ctx context.Context) error {
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
