package prio

import (
	"crypto/sha1"
	"crypto/sha256"
	"errors"
	"fmt"
	"math"
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
//
// A long-lived client holds up to 100,000 keys, so the entries hold no
// pointers: a key is known by a digest, times are offsets on the monotonic
// clock, and the least-recently-used order links slots by index. The
// garbage collector never scans them. The slots live in pages of
// slotsPerPage allocated as the guard fills and never moved: growing one
// slice instead would copy every entry, under the lock every call takes,
// at each growth (up to 9 MB at the last).
type keyGuard struct {
	maxEntries int
	maxAge     time.Duration
	epoch      time.Time // stamps count from here

	mu    sync.Mutex
	index map[keyID]int32 // slot of each key
	pages []*slotPage
	used  int32 // slots handed out so far, freed ones included
	head  int32 // least recently used slot, or none
	tail  int32 // most recently used slot, or none
	free  int32 // first unused slot, chained through next, or none
	n     int   // keys held
}

// keyID identifies a key: the first half of its SHA-256. Two keys share
// one with probability 2⁻¹²⁸ a pair.
type keyID [16]byte

// stamp is a moment as nanoseconds since the guard's epoch; noStamp is the
// zero time.
type stamp int64

const noStamp stamp = math.MinInt64

// none marks the end of a chain of slots.
const none int32 = -1

// A page holds slotsPerPage slots (96 KiB of entries): slot i is entry
// i mod slotsPerPage of page i / slotsPerPage.
const (
	pageShift    = 10
	slotsPerPage = 1 << pageShift
)

type slotPage [slotsPerPage]keyEntry

// slot returns the entry of slot i.
func (g *keyGuard) slot(i int32) *keyEntry {
	return &g.pages[i>>pageShift][i&(slotsPerPage-1)]
}

type keyEntry struct {
	id   keyID
	fp   [sha256.Size]byte
	used stamp

	inflight   int32 // calls sending this key now
	firstSend  stamp // when a call first began sending it
	lastSend   stamp // the latest moment a send of it in doubt may have been written
	doubtUntil stamp // until when a send of it may still be processed

	prev, next int32 // neighbours in the use order (next: in the free chain)
}

// keyState is what the guard knew of a key when a call took it.
type keyState struct {
	id         keyID // the key's, for end
	repeat     bool  // the key was sent before, with this body
	inflight   int   // other calls sending it right now
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
		epoch:      time.Now(),
		index:      make(map[keyID]int32),
		head:       none,
		tail:       none,
		free:       none,
	}
}

// stampOf turns t into a stamp. A time with a monotonic reading (every
// time.Now) keeps it; another is placed by its wall clock.
func (g *keyGuard) stampOf(t time.Time) stamp {
	if t.IsZero() {
		return noStamp
	}
	return stamp(t.Sub(g.epoch))
}

// timeOf turns a stamp back into a time.
func (g *keyGuard) timeOf(s stamp) time.Time {
	if s == noStamp {
		return time.Time{}
	}
	return g.epoch.Add(time.Duration(s))
}

// state is what e tells of its key.
func (g *keyGuard) state(e *keyEntry) keyState {
	return keyState{id: e.id, repeat: true, inflight: int(e.inflight), firstSend: g.timeOf(e.firstSend),
		lastSend: g.timeOf(e.lastSend), doubtUntil: g.timeOf(e.doubtUntil)}
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
// end, given what begin returned, whatever happens.
func (g *keyGuard) begin(key string, body []byte) (keyState, error) {
	return g.take(key, body, true)
}

func idOf(key string) keyID {
	sum := sha256.Sum256([]byte(key))
	return keyID(sum[:16])
}

func (g *keyGuard) take(key string, body []byte, sending bool) (keyState, error) {
	if g == nil || g.maxEntries < 1 {
		return keyState{}, nil
	}
	id, fp := idOf(key), sha256.Sum256(body)
	now := time.Now()
	at := g.stampOf(now)

	g.mu.Lock()
	defer g.mu.Unlock()
	g.expireLocked(at)
	if i, ok := g.index[id]; ok {
		e := g.slot(i)
		if e.fp != fp {
			return keyState{}, fmt.Errorf("%w: key %s was sent with another body %s ago; use a new key (or a new business reference) for a changed request",
				ErrKeyReused, key, time.Duration(at-e.used).Round(time.Second))
		}
		st := g.state(e)
		e.used = at
		if sending {
			e.inflight++
			if e.firstSend == noStamp {
				e.firstSend = at
			}
		}
		g.unlink(i)
		g.pushBack(i)
		return st, nil
	}
	e := keyEntry{id: id, fp: fp, used: at, firstSend: noStamp, lastSend: noStamp, doubtUntil: noStamp}
	if sending {
		// The call sends right away, or after a look-up: close enough for
		// the look-up window, which starts well before.
		e.inflight, e.firstSend = 1, at
	}
	i := g.alloc()
	*g.slot(i) = e
	g.index[id] = i
	g.pushBack(i)
	g.n++
	g.evictLocked(at)
	return keyState{id: id}, nil
}

// end closes a booking call begun with begin, which returned began. booked
// says the order is known to exist; otherwise lastSend and doubtUntil (zero
// when the call left nothing in doubt) extend what the guard knows.
func (g *keyGuard) end(began keyState, booked bool, lastSend, doubtUntil time.Time) {
	g.update(began.id, func(e *keyEntry) {
		e.inflight = max(e.inflight-1, 0)
		if booked {
			e.lastSend, e.doubtUntil = noStamp, noStamp
			return
		}
		e.lastSend = max(e.lastSend, g.stampOf(lastSend))
		e.doubtUntil = max(e.doubtUntil, g.stampOf(doubtUntil))
	})
}

// known returns what the guard knows of key without taking it.
func (g *keyGuard) known(key string) keyState {
	var st keyState
	if g == nil || g.maxEntries < 1 {
		return st
	}
	g.update(idOf(key), func(e *keyEntry) { st = g.state(e) })
	return st
}

// update runs f on the entry of the key with id, if the guard holds it.
func (g *keyGuard) update(id keyID, f func(*keyEntry)) {
	if g == nil || g.maxEntries < 1 {
		return
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	if i, ok := g.index[id]; ok {
		f(g.slot(i))
	}
}

// forget drops key, so it may be used with another body. Call it when the
// server has definitely refused the request without acting on it (a 4XX
// other than 409), so that a corrected request can reuse its derived key.
// A key that another call is sending, or that is in doubt, stays.
func (g *keyGuard) forget(key string) {
	if g == nil || g.maxEntries < 1 {
		return
	}
	id := idOf(key)
	g.mu.Lock()
	defer g.mu.Unlock()
	if i, ok := g.index[id]; ok && !g.slot(i).inDoubt(g.stampOf(time.Now())) {
		g.remove(i)
	}
}

// inDoubt reports an entry that must not be forgotten yet.
func (e *keyEntry) inDoubt(now stamp) bool {
	return e.inflight > 0 || e.doubtUntil > now
}

// evictLocked removes the least recently used keys beyond maxEntries,
// passing over keys still in doubt (so that a booking's repeat still looks
// the order up first); if every key is in doubt, the guard grows.
func (g *keyGuard) evictLocked(now stamp) {
	for i := g.head; g.n > g.maxEntries && i != none; {
		next := g.slot(i).next
		if !g.slot(i).inDoubt(now) {
			g.remove(i)
		}
		i = next
	}
}

// size reports how many keys are remembered.
func (g *keyGuard) size() int {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.n
}

func (g *keyGuard) expireLocked(now stamp) {
	if g.maxAge <= 0 {
		return
	}
	for i := g.head; i != none; {
		e := g.slot(i)
		if now-e.used < stamp(g.maxAge) {
			return
		}
		next := e.next
		if !e.inDoubt(now) {
			g.remove(i)
		}
		i = next
	}
}

// alloc returns an unused slot.
func (g *keyGuard) alloc() int32 {
	if i := g.free; i != none {
		g.free = g.slot(i).next
		return i
	}
	if int(g.used) == len(g.pages)*slotsPerPage {
		g.pages = append(g.pages, new(slotPage))
	}
	g.used++
	return g.used - 1
}

// remove drops slot i's key and frees the slot.
func (g *keyGuard) remove(i int32) {
	delete(g.index, g.slot(i).id)
	g.unlink(i)
	*g.slot(i) = keyEntry{next: g.free}
	g.free = i
	g.n--
}

// pushBack makes slot i the most recently used.
func (g *keyGuard) pushBack(i int32) {
	e := g.slot(i)
	e.prev, e.next = g.tail, none
	if g.tail != none {
		g.slot(g.tail).next = i
	} else {
		g.head = i
	}
	g.tail = i
}

// unlink takes slot i out of the use order.
func (g *keyGuard) unlink(i int32) {
	e := g.slot(i)
	if e.prev != none {
		g.slot(e.prev).next = e.next
	} else {
		g.head = e.next
	}
	if e.next != none {
		g.slot(e.next).prev = e.prev
	} else {
		g.tail = e.prev
	}
	e.prev, e.next = none, none
}
