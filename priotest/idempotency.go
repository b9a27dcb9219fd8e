package priotest

import (
	"crypto/sha256"
	"net/http"
	"sync"
	"time"
)

const (
	headerIdempotencyKey = "Idempotency-Key"
	headerReplayed       = "Idempotent-Replayed"
	maxKeyLength         = 255
	// keyRetention is how long a stored answer can be replayed.
	keyRetention = 24 * time.Hour
)

// validKey reports whether k is 1 to 255 visible ASCII characters.
func validKey(k string) bool {
	if len(k) == 0 || len(k) > maxKeyLength {
		return false
	}
	for i := 0; i < len(k); i++ {
		if k[i] < 0x21 || k[i] > 0x7e {
			return false
		}
	}
	return true
}

// captured is a complete answer kept in memory: what the handler wrote, or
// what a key replays.
type captured struct {
	status int
	header http.Header
	body   []byte
}

// captureWriter records what a handler writes.
type captureWriter struct {
	captured
	wrote bool
}

func newCaptureWriter() *captureWriter {
	return &captureWriter{captured: captured{header: http.Header{}}}
}

func (c *captureWriter) Header() http.Header { return c.header }

func (c *captureWriter) WriteHeader(status int) {
	if !c.wrote {
		c.status, c.wrote = status, true
	}
}

func (c *captureWriter) Write(b []byte) (int, error) {
	if !c.wrote {
		c.WriteHeader(http.StatusOK)
	}
	c.body = append(c.body, b...)
	return len(b), nil
}

func (c *captureWriter) result() captured {
	out := c.captured
	if !c.wrote {
		out.status = http.StatusOK
	}
	return out
}

// idemEntry is one key: in flight until done, then its stored answer.
type idemEntry struct {
	fingerprint [32]byte
	done        bool
	answer      captured
	at          time.Time
}

// idemStore holds the keys of all clients, each scoped to its client.
type idemStore struct {
	mu      sync.Mutex
	entries map[string]*idemEntry
	// sweepAt is the size at which expired keys are next swept out. It
	// doubles with the live keys, so sweeping costs O(1) per key on
	// average instead of a full scan on every new key.
	sweepAt int
}

const minSweepAt = 10_000

func newIdemStore() *idemStore {
	return &idemStore{entries: map[string]*idemEntry{}, sweepAt: minSweepAt}
}

func fingerprint(method, path string, body []byte) [32]byte {
	h := sha256.New()
	h.Write([]byte(method + " " + path + "\n"))
	h.Write(body)
	var out [32]byte
	h.Sum(out[:0])
	return out
}

// begin claims key for a request. It returns a stored answer to replay, or
// an error answer (409 while the key is in flight or when it was used for
// another request), or neither: then the caller runs the request and calls
// finish.
func (st *idemStore) begin(key string, fp [32]byte, now time.Time) (*captured, *apiError) {
	st.mu.Lock()
	defer st.mu.Unlock()
	if e, ok := st.entries[key]; ok && now.Sub(e.at) < keyRetention {
		switch {
		case e.fingerprint != fp:
			return nil, errorf(http.StatusConflict, codeIdempotencyMismatch,
				"This Idempotency-Key was already used with a different request.")
		case !e.done:
			return nil, errorf(http.StatusConflict, codeIdempotencyInUse,
				"A request with this Idempotency-Key is still being processed.")
		}
		a := e.answer
		return &a, nil
	}
	if len(st.entries) >= st.sweepAt {
		for k, e := range st.entries {
			if e.done && now.Sub(e.at) >= keyRetention {
				delete(st.entries, k)
			}
		}
		st.sweepAt = max(minSweepAt, 2*len(st.entries))
	}
	st.entries[key] = &idemEntry{fingerprint: fp, at: now}
	return nil, nil
}

// finish stores the answer of a claimed key. Server errors are not stored,
// so the key can be used again.
func (st *idemStore) finish(key string, answer captured) {
	st.mu.Lock()
	defer st.mu.Unlock()
	e, ok := st.entries[key]
	if !ok {
		return
	}
	if answer.status >= 500 {
		delete(st.entries, key)
		return
	}
	e.done, e.answer = true, answer
}

func (st *idemStore) reset() {
	st.mu.Lock()
	defer st.mu.Unlock()
	clear(st.entries)
	st.sweepAt = minSweepAt
}
