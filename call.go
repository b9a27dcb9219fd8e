package prio

import (
	"context"
	"sync"
	"time"
)

// CallInfo tells what happened on the wire for one logical call: the
// idempotency key sent with every attempt, how many requests really left the
// process, how long the call took, the last HTTP status and Prio's
// error_reference when the last answer was an error.
type CallInfo struct {
	Operation      string
	IdempotencyKey string
	Sends          int
	Elapsed        time.Duration
	LastStatus     int
	ErrorReference string
	// Lookups counts the GET /orders look-ups Create Order made to settle
	// sends that ended in doubt; they are not included in Sends.
	Lookups int
}

// callState travels with one logical call from the service method through
// the generated client into the transport. The service layer creates it;
// the transport reads the per-call settings and records what happened.
// Callers never see it: it is how this package talks to itself across the
// generated code, whose only hooks are the context and request editors.
type callState struct {
	operation string
	booking   bool         // a booking POST: longer per-attempt timeout
	policy    *RetryPolicy // per-call override; nil means the client's
	// stopOnDoubt makes the transport return instead of retrying a send
	// that may have been processed (written, then timeout, reset, EOF or
	// 5xx). Create Order sets it: it looks the order up before re-sending,
	// which is safe even against a server that ignores idempotency keys.
	stopOnDoubt bool
	// followUp marks a request made to settle another call (Create
	// Order's look-up). It paid for itself from the retry budget, so its
	// first send adds nothing to the budget: during an outage a booking
	// and its look-up together cost what a booking and one retry do.
	followUp bool
	// body is the request body the call encoded, handed to the doer so
	// that it is not read and copied again (nil: the doer reads it).
	body []byte
	// ownsRequest: the request handed to the doer was built for this
	// call (by the generated client, or by newJSONPost) and nobody else
	// holds it, so the doer uses it without a copy and its first send
	// writes its headers without copying the map first.
	ownsRequest bool
	// tel is the operation's telemetry (nil: off, or looked up by
	// operation).
	tel *opTelemetry

	// run is the retry loop's state while the doer's Do runs: the one
	// per-call object the layers under the generated client share through
	// the context, so that no send adds a context value of its own.
	run callRun

	// first holds the first send's tracker and trace hooks; later sends
	// (retries, redirect hops) allocate theirs (nextSend).
	first     sendCount
	firstUsed bool

	mu   sync.Mutex
	info CallInfo
}

// nextSend returns the tracker and trace hooks of a new send of the call,
// its own: an event that arrives late for an earlier send lands in that
// send's, never in this one's.
func (cs *callState) nextSend() *sendCount {
	st := &cs.first
	if cs.firstUsed {
		st = &sendCount{}
	}
	cs.firstUsed = true
	st.cs, st.tr = cs, &st.own
	st.hook()
	return st
}

type callStateKey struct{}

func withCallState(ctx context.Context, cs *callState) context.Context {
	return context.WithValue(ctx, callStateKey{}, cs)
}

func callStateFrom(ctx context.Context) *callState {
	cs, _ := ctx.Value(callStateKey{}).(*callState)
	return cs
}

// snapshot returns a copy of what has been recorded so far.
func (cs *callState) snapshot() CallInfo {
	cs.mu.Lock()
	defer cs.mu.Unlock()
	return cs.info
}

// update changes the recorded info under the lock.
func (cs *callState) update(f func(*CallInfo)) {
	cs.mu.Lock()
	f(&cs.info)
	cs.mu.Unlock()
}
