package priotest

import (
	"net/http"
	"strconv"
	"sync"
	"time"
)

// Prio's fair-use windows: limits count over a rolling minute, and too many
// 4XX answers ban the client for a minute.
const (
	limitWindow = time.Minute
	banDuration = time.Minute
)

// limiter enforces the request limit and the 4XX ban per client.
type limiter struct {
	mu        sync.Mutex
	errLimit  int
	reqLimit  int
	clients   map[string]*clientWindow
	lastSweep time.Time
}

type clientWindow struct {
	requests    []time.Time
	errors      []time.Time
	bannedUntil time.Time
}

func newLimiter(errLimit, reqLimit int) *limiter {
	return &limiter{errLimit: errLimit, reqLimit: reqLimit, clients: map[string]*clientWindow{}}
}

func (l *limiter) window(client string) *clientWindow {
	w := l.clients[client]
	if w == nil {
		w = &clientWindow{}
		l.clients[client] = w
	}
	return w
}

// prune drops the times that left the window ending at now.
func prune(ts []time.Time, now time.Time) []time.Time {
	i := 0
	for i < len(ts) && !ts[i].After(now.Add(-limitWindow)) {
		i++
	}
	if i == 0 {
		return ts
	}
	return append(ts[:0], ts[i:]...)
}

func retryAfter(d time.Duration) http.Header {
	secs := max(int((d+time.Second-1)/time.Second), 1)
	return http.Header{"Retry-After": []string{strconv.Itoa(secs)}}
}

// admit answers a request of client: nil to let it through, or the 429 of
// a ban (banned is then true) or of the request limit.
func (l *limiter) admit(client string, now time.Time) (e *apiError, banned bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.sweep(now)
	w := l.window(client)
	if now.Before(w.bannedUntil) {
		e := errorf(http.StatusTooManyRequests, "TOO_MANY_ERRORS",
			"More than %d 4XX answers within a minute: this client is blocked for a minute.", l.errLimit)
		e.header = retryAfter(w.bannedUntil.Sub(now))
		return e, true
	}
	if l.reqLimit == 0 {
		return nil, false
	}
	w.requests = prune(w.requests, now)
	if len(w.requests) >= l.reqLimit {
		e := errorf(http.StatusTooManyRequests, "RATE_LIMIT_EXCEEDED",
			"More than %d requests within a minute.", l.reqLimit)
		e.header = retryAfter(w.requests[0].Add(limitWindow).Sub(now))
		return e, false
	}
	w.requests = append(w.requests, now)
	return nil, false
}

// countError records a 4XX answer to client and bans it when it had more
// than the limit within a minute.
func (l *limiter) countError(client string, now time.Time) {
	if l.errLimit == 0 {
		return
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	w := l.window(client)
	w.errors = append(prune(w.errors, now), now)
	if len(w.errors) > l.errLimit {
		w.bannedUntil = now.Add(banDuration)
		w.errors = w.errors[:0]
	}
}

// sweep forgets clients that have been quiet for a while, so a long-running
// sandbox does not grow.
func (l *limiter) sweep(now time.Time) {
	if now.Sub(l.lastSweep) < limitWindow {
		return
	}
	l.lastSweep = now
	for k, w := range l.clients {
		w.requests, w.errors = prune(w.requests, now), prune(w.errors, now)
		if len(w.requests) == 0 && len(w.errors) == 0 && !now.Before(w.bannedUntil) {
			delete(l.clients, k)
		}
	}
}

func (l *limiter) reset() {
	l.mu.Lock()
	defer l.mu.Unlock()
	clear(l.clients)
}
