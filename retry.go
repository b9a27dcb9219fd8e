package prio

import "time"

// RetryPolicy decides how a call is retried. It is plain data: copy it,
// change a field, pass it to WithRetryPolicy (client-wide) or
// WithCallRetryPolicy (one call). DefaultRetryPolicy documents each default.
type RetryPolicy struct {
	// MaxSends is the total number of sends for one call, first included.
	MaxSends int
	// BookingAttemptTimeout bounds one send of a booking POST (Create
	// Order, Create Reservation). Prio advises 60 s.
	BookingAttemptTimeout time.Duration
	// AttemptTimeout bounds one send of any other request.
	AttemptTimeout time.Duration
	// BaseDelay and MaxDelay shape the exponential backoff with full
	// jitter: the n-th wait is uniform in [0, min(MaxDelay, BaseDelay*2^n)).
	BaseDelay time.Duration
	MaxDelay  time.Duration
	// MaxRetryAfter caps how long a Retry-After is obeyed; a longer ask
	// stops retrying and the call fails with ErrRateLimited.
	MaxRetryAfter time.Duration
	// RateLimitedDelay is the wait after a 429 without Retry-After (Prio
	// blocks a client for a minute).
	RateLimitedDelay time.Duration
	// BudgetRatio and BudgetBurst size the client-wide retry budget: each
	// first send adds BudgetRatio tokens, each retry spends one, and the
	// bucket holds at most BudgetBurst. During an outage sends stay below
	// (1+BudgetRatio) x first sends + BudgetBurst. BudgetRatio < 0 turns
	// the budget off.
	BudgetRatio float64
	BudgetBurst float64
	// ClientErrorLimit is how many 4XX answers the client accepts within a
	// sliding minute before it refuses to send (Prio bans a client for a
	// minute after 60). 0 turns the guard off.
	ClientErrorLimit int
	// RequestsPerMinute is the client-side rate limit (Prio's fair-use cap
	// is 1,000 a minute). 0 turns the limiter off.
	RequestsPerMinute int
}
