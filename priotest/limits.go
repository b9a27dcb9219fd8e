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

// limiter enforces the request limit and the 4XX ban per client, and
// counts the 4XX answers for Stats.
type limiter struct {
	mu        sync.Mutex
	errLimit  int
	reqLimit  int
	clients   map[string]*clientWindow
	lastSweep time.Time

	clientErrors int // 4XX answers counted
	bans         int // times a client was banned
	maxPerMinute int // most counted 4XX answers one client got within a minute
}

type clientWindow struct {
	requests    timeWindow
	errors      timeWindow
	bannedUntil time.Time
}

// timeWindow holds the times of the last minute, oldest first. Pruning
// advances a head index and compacts only once the dead prefix is half the
// slice, so adding and pruning cost O(1) amortised.
type timeWindow struct {
	ts   []time.Time
	head int
}

// prune drops the times that left the window ending at now.
func (w *timeWindow) prune(now time.Time) {
	cut := now.Add(-limitWindow)
	for w.head < len(w.ts) && !w.ts[w.head].After(cut) {
		w.head++
	}
	if w.head == len(w.ts) {
		w.ts, w.head = w.ts[:0], 0
	} else if w.head > 0 && 2*w.head >= len(w.ts) {
		n := copy(w.ts, w.ts[w.head:])
		w.ts, w.head = w.ts[:n], 0
	}
}

func (w *timeWindow) len() int          { return len(w.ts) - w.head }
func (w *timeWindow) add(t time.Time)   { w.ts = append(w.ts, t) }
func (w *timeWindow) oldest() time.Time { return w.ts[w.head] }

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
	w.requests.prune(now)
	if w.requests.len() >= l.reqLimit {
		e := errorf(http.StatusTooManyRequests, "RATE_LIMIT_EXCEEDED",
			"More than %d requests within a minute.", l.reqLimit)
		e.header = retryAfter(w.requests.oldest().Add(limitWindow).Sub(now))
		return e, false
	}
	w.requests.add(now)
	return nil, false
}

// countError records a 4XX answer to client and bans it when it had more
// than the limit within a minute. Answers sent while the client is already
// banned (requests admitted just before the ban) count, but do not extend
// the ban.
func (l *limiter) countError(client string, now time.Time) {
	l.mu.Lock()
	defer l.mu.Unlock()
	w := l.window(client)
	w.errors.prune(now)
	w.errors.add(now)
	n := w.errors.len()
	l.clientErrors++
	// The most errors within any rolling minute is reached by a window
	// ending at an error, so checking at each error is exact.
	l.maxPerMinute = max(l.maxPerMinute, n)
	if l.errLimit > 0 && n > l.errLimit && !now.Before(w.bannedUntil) {
		w.bannedUntil = now.Add(banDuration)
		l.bans++
	}
}

// counts returns the 4XX answers counted, the bans and the most counted
// 4XX answers one client got within a minute.
func (l *limiter) counts() (clientErrors, bans, maxPerMinute int) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.clientErrors, l.bans, l.maxPerMinute
}

// sweep forgets clients that have been quiet for a while, so a long-running
// sandbox does not grow.
func (l *limiter) sweep(now time.Time) {
	if now.Sub(l.lastSweep) < limitWindow {
		return
	}
	l.lastSweep = now
	for k, w := range l.clients {
		w.requests.prune(now)
		w.errors.prune(now)
		if w.requests.len() == 0 && w.errors.len() == 0 && !now.Before(w.bannedUntil) {
			delete(l.clients, k)
		}
	}
}

func (l *limiter) reset() {
	l.mu.Lock()
	defer l.mu.Unlock()
	clear(l.clients)
	l.clientErrors, l.bans, l.maxPerMinute = 0, 0, 0
}
