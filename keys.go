package prio

import (
	"container/list"
	"crypto/sha1"
	"crypto/sha256"
	"errors"
	"fmt"
	"strconv"
	"sync"
	"time"

	"github.com/google/uuid"
)

// Header names of the idempotency machinery. The key travels twice: as
// Idempotency-Key (which net/http and most servers understand) and as
// App-Reference (Prio's documented "unique request reference from your
// application", which Prio support can search for). App-Attempt numbers the
// sends of one logical call, starting at 1.
const (
	keyHeader       = "Idempotency-Key"
	referenceHeader = "App-Reference"
	attemptHeader   = "App-Attempt"
)

// Errors about idempotency keys, matched with errors.Is.
var (
	// ErrInvalidKey is matched by the error for a caller-supplied key that
	// is empty, longer than 255 bytes or not made of visible ASCII.
	ErrInvalidKey = errors.New("prio: invalid idempotency key")
	// ErrKeyReused is matched when a key already used in this process is
	// used again with a different request body. Nothing is sent: the
	// server would either reject the second body or, worse, answer it with
	// the result of the first.
	ErrKeyReused = errors.New("prio: idempotency key reused with a different body")
)

// keyNamespace is the UUIDv5 namespace of derived keys. It must never
// change: a derived key is only useful if every version of this SDK, on
// every machine, derives the same key for the same booking.
var keyNamespace = uuid.MustParse("ac99e1b6-70bc-4fb1-8a22-6b3d18b5b63d")

// DeriveKey returns the idempotency key of a booking identified by a
// business reference, such as the order_external_reference of Create Order:
// a UUIDv5 of the distributor id, the operation and the reference. A
// restarted process, another replica or another machine derives the same
// key for the same booking, so Prio can recognise a re-send of it.
func DeriveKey(distributorID, operation, reference string) string {
	// Length prefixes keep ("ab", "c") and ("a", "bc") apart.
	var stack [128]byte
	name := append(stack[:0], keyNamespace[:]...)
	for _, part := range [...]string{distributorID, operation, reference} {
		name = strconv.AppendInt(name, int64(len(part)), 10)
		name = append(name, ':')
		name = append(name, part...)
	}
	// uuid.NewSHA1(keyNamespace, name) without its hash object and
	// buffers: SHA-1 of namespace and name, version 5, RFC 4122 variant.
	sum := sha1.Sum(name)
	var u uuid.UUID
	copy(u[:], sum[:])
	u[6] = u[6]&0x0f | 0x50
	u[8] = u[8]&0x3f | 0x80
	return u.String()
}

// NewRandomKey returns a fresh random idempotency key (a UUIDv4). Keep it
// with the request for as long as the request may be re-sent.
func NewRandomKey() string { return uuid.NewString() }

// maxKeyLen bounds caller-supplied keys.
const maxKeyLen = 255

// ValidateKey checks a caller-supplied idempotency key: 1 to 255 visible
// ASCII characters (no spaces or control characters), so that it survives
// as an HTTP header value unchanged. The error matches ErrInvalidKey.
func ValidateKey(k string) error {
	if k == "" {
		return fmt.Errorf("%w: empty", ErrInvalidKey)
	}
	if len(k) > maxKeyLen {
		return fmt.Errorf("%w: %d bytes long, at most %d allowed", ErrInvalidKey, len(k), maxKeyLen)
	}
	for i := 0; i < len(k); i++ {
		if c := k[i]; c < 0x21 || c > 0x7e {
			return fmt.Errorf("%w: byte %d is 0x%02x, only visible ASCII (0x21-0x7e) is allowed", ErrInvalidKey, i, c)
		}
	}
	return nil
}

// keyGuard remembers which body each recent key was sent with, so that the
// same key is never sent with two different bodies, and what this process
// knows about the sends of each booking key: whether a call is sending it
// now, when it was first sent, and until when an earlier send of it may
// still be processed. It holds at most maxEntries keys, each for at most
// maxAge since it was last used (a key still in doubt is kept), and is safe
// for concurrent use.
type keyGuard struct {
	maxEntries int
	maxAge     time.Duration

	mu    sync.Mutex
	byKey map[string]*list.Element // of *keyEntry
	order *list.List               // least recently used first
}

type keyEntry struct {
	key  string
	fp   [sha256.Size]byte
	used time.Time

	inflight   int       // calls sending this key now
	firstSend  time.Time // when a call first began sending it
	lastSend   time.Time // the latest moment a send of it in doubt may have been written
	doubtUntil time.Time // until when a send of it may still be processed
}

// keyState is what the guard knew of a key when a call took it.
type keyState struct {
	repeat     bool // the key was sent before, with this body
	inflight   int  // other calls sending it right now
	firstSend  time.Time
	lastSend   time.Time
	doubtUntil time.Time
}

// newKeyGuard returns a guard holding at most maxEntries keys for at most
// maxAge each. maxEntries < 1 turns the guard off; maxAge <= 0 means keys
// leave only when the guard is full.
func newKeyGuard(maxEntries int, maxAge time.Duration) *keyGuard {
	return &keyGuard{
		maxEntries: maxEntries,
		maxAge:     maxAge,
		byKey:      make(map[string]*list.Element),
		order:      list.New(),
	}
}

// check records that key is about to be sent with body. It returns an error
// matching ErrKeyReused when the key was recently used with another body.
func (g *keyGuard) check(key string, body []byte) error {
	_, err := g.record(key, body)
	return err
}

// record is check that also reports whether the key was already sent with
// this body: a repeat of a call whose outcome the caller may not know.
func (g *keyGuard) record(key string, body []byte) (repeat bool, err error) {
	st, err := g.take(key, body, false)
	return st.repeat, err
}

// begin records that a booking call is about to send key with body, and
// returns what the guard knew of the key before. The call must end with
// end, whatever happens.
func (g *keyGuard) begin(key string, body []byte) (keyState, error) {
	return g.take(key, body, true)
}

func (g *keyGuard) take(key string, body []byte, sending bool) (keyState, error) {
	if g == nil || g.maxEntries < 1 {
		return keyState{}, nil
	}
	fp := sha256.Sum256(body)
	now := time.Now()

	g.mu.Lock()
	defer g.mu.Unlock()
	g.expireLocked(now)
	if el, ok := g.byKey[key]; ok {
		e := el.Value.(*keyEntry)
		if e.fp != fp {
			return keyState{}, fmt.Errorf("%w: key %s was sent with another body %s ago; use a new key (or a new business reference) for a changed request",
				ErrKeyReused, key, now.Sub(e.used).Round(time.Second))
		}
		st := keyState{repeat: true, inflight: e.inflight, firstSend: e.firstSend, lastSend: e.lastSend, doubtUntil: e.doubtUntil}
		e.used = now
		if sending {
			e.inflight++
			if e.firstSend.IsZero() {
				e.firstSend = now
			}
		}
		g.order.MoveToBack(el)
		return st, nil
	}
	e := &keyEntry{key: key, fp: fp, used: now}
	if sending {
		// The call sends right away, or after a look-up: close enough for
		// the look-up window, which starts well before.
		e.inflight, e.firstSend = 1, now
	}
	g.byKey[key] = g.order.PushBack(e)
	g.evictLocked(now)
	return keyState{}, nil
}

// end closes a booking call begun with begin. booked says the order is
// known to exist; otherwise lastSend and doubtUntil (zero when the call left
// nothing in doubt) extend what the guard knows.
func (g *keyGuard) end(key string, booked bool, lastSend, doubtUntil time.Time) {
	g.update(key, func(e *keyEntry) {
		e.inflight = max(e.inflight-1, 0)
		if booked {
			e.lastSend, e.doubtUntil = time.Time{}, time.Time{}
			return
		}
		if lastSend.After(e.lastSend) {
			e.lastSend = lastSend
		}
		if doubtUntil.After(e.doubtUntil) {
			e.doubtUntil = doubtUntil
		}
	})
}

// known returns what the guard knows of key without taking it.
func (g *keyGuard) known(key string) keyState {
	var st keyState
	g.update(key, func(e *keyEntry) {
		st = keyState{repeat: true, inflight: e.inflight, firstSend: e.firstSend, lastSend: e.lastSend, doubtUntil: e.doubtUntil}
	})
	return st
}

func (g *keyGuard) update(key string, f func(*keyEntry)) {
	if g == nil || g.maxEntries < 1 {
		return
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	if el, ok := g.byKey[key]; ok {
		f(el.Value.(*keyEntry))
	}
}

// forget drops key, so it may be used with another body. Call it when the
// server has definitely refused the request without acting on it (a 4XX
// other than 409), so that a corrected request can reuse its derived key.
// A key that another call is sending, or that is in doubt, stays.
func (g *keyGuard) forget(key string) {
	if g == nil {
		return
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	if el, ok := g.byKey[key]; ok {
		e := el.Value.(*keyEntry)
		if e.inflight > 0 || e.doubtUntil.After(time.Now()) {
			return
		}
		g.removeLocked(el)
	}
}

// inDoubt reports an entry that must not be forgotten yet.
func (e *keyEntry) inDoubt(now time.Time) bool {
	return e.inflight > 0 || e.doubtUntil.After(now)
}

// evictLocked removes the least recently used keys beyond maxEntries,
// passing over keys still in doubt (so that a booking's repeat still looks
// the order up first); if every key is in doubt, the guard grows.
func (g *keyGuard) evictLocked(now time.Time) {
	el := g.order.Front()
	for g.order.Len() > g.maxEntries && el != nil {
		next := el.Next()
		if !el.Value.(*keyEntry).inDoubt(now) {
			g.removeLocked(el)
		}
		el = next
	}
}

// size reports how many keys are remembered.
func (g *keyGuard) size() int {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.order.Len()
}

func (g *keyGuard) expireLocked(now time.Time) {
	if g.maxAge <= 0 {
		return
	}
	for el := g.order.Front(); el != nil; {
		e := el.Value.(*keyEntry)
		if now.Sub(e.used) < g.maxAge {
			return
		}
		next := el.Next()
		if !e.inDoubt(now) {
			g.removeLocked(el)
		}
		el = next
	}
}

func (g *keyGuard) removeLocked(el *list.Element) {
	delete(g.byKey, el.Value.(*keyEntry).key)
	g.order.Remove(el)
}
