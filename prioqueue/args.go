package prioqueue

import (
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/riverqueue/river"
	"github.com/riverqueue/river/rivertype"

	prio "github.com/priosdk/prio-go"
)

// Kind is the River job kind of a Create Order job. It is stored in every
// job row and must never change.
const Kind = "prio_create_order"

// CreateOrderArgs is one booking on the queue: the Create Order request and
// the identity that makes it unique. Build it with NewCreateOrderArgs.
type CreateOrderArgs struct {
	// DistributorID and ExternalReference identify the booking: River
	// keeps one job per pair (see InsertOpts).
	DistributorID     string `json:"distributor_id" river:"unique"`
	ExternalReference string `json:"external_reference" river:"unique"`
	// Order is the request sent to Create Order.
	Order prio.OrderRequest `json:"order"`
}

// ErrInvalidArgs is matched by NewCreateOrderArgs's errors and by the
// refusal of a job whose arguments cannot be booked.
var ErrInvalidArgs = errors.New("prioqueue: invalid job arguments")

// NewCreateOrderArgs makes the job arguments for booking req under
// distributorID. The distributor id is also set on req when it has none;
// the two must agree.
func NewCreateOrderArgs(distributorID string, req *prio.OrderRequest) (CreateOrderArgs, error) {
	switch {
	case req == nil:
		return CreateOrderArgs{}, fmt.Errorf("%w: nil order request", ErrInvalidArgs)
	case strings.TrimSpace(distributorID) == "":
		return CreateOrderArgs{}, fmt.Errorf("%w: empty distributor id", ErrInvalidArgs)
	case strings.TrimSpace(req.OrderExternalReference) == "":
		return CreateOrderArgs{}, fmt.Errorf("%w: order_external_reference is required: it is the job's identity", ErrInvalidArgs)
	case req.OrderDistributorId != "" && req.OrderDistributorId != distributorID:
		return CreateOrderArgs{}, fmt.Errorf("%w: order_distributor_id %q differs from distributor %q", ErrInvalidArgs, req.OrderDistributorId, distributorID)
	}
	order := *req
	order.OrderDistributorId = distributorID
	return CreateOrderArgs{DistributorID: distributorID, ExternalReference: req.OrderExternalReference, Order: order}, nil
}

// Kind returns the job kind.
func (CreateOrderArgs) Kind() string { return Kind }

// uniqueStates are the states in which an existing job makes a new insert
// of the same booking a no-op: every state but cancelled and discarded, so
// a refused booking can be corrected and enqueued again under the same
// reference.
var uniqueStates = []rivertype.JobState{
	rivertype.JobStateAvailable, rivertype.JobStateCompleted, rivertype.JobStatePending,
	rivertype.JobStateRetryable, rivertype.JobStateRunning, rivertype.JobStateScheduled,
}

// InsertOpts makes the job unique by distributor and external reference
// (the fields tagged river:"unique"), whatever the rest of the request
// says, and gives it many attempts: only database failures count as
// attempts, since waiting for an unknown outcome snoozes instead.
func (CreateOrderArgs) InsertOpts() river.InsertOpts {
	return river.InsertOpts{
		MaxAttempts: 100,
		UniqueOpts:  river.UniqueOpts{ByArgs: true, ByState: uniqueStates},
	}
}

// Result is what a job records as its output (River keeps it in the job's
// metadata under "output"): the outcome of its latest Create Order call.
type Result struct {
	// Outcome is prio.Outcome's text: "booked", "refused", "unknown" or
	// "retry later".
	Outcome           string `json:"outcome"`
	ExternalReference string `json:"external_reference"`
	OrderReference    string `json:"order_reference,omitempty"`
	OrderStatus       string `json:"order_status,omitempty"`
	// Error is the failure of the call, when there was one.
	Error string `json:"error,omitempty"`
	// StatusCode, ErrorCode and ErrorReference are Prio's answer to a
	// refused or failed call (quote ErrorReference to Prio support).
	StatusCode     int    `json:"status_code,omitempty"`
	ErrorCode      string `json:"error_code,omitempty"`
	ErrorReference string `json:"error_reference,omitempty"`
	// RetryAt is when the job is tried again, for unknown and retry later.
	RetryAt time.Time `json:"retry_at,omitzero"`
	// Sends counts the create requests of the call; Attempt is River's
	// attempt number.
	Sends   int       `json:"sends"`
	Attempt int       `json:"attempt"`
	At      time.Time `json:"at"`
}

// Booked reports whether the result is a booked order.
func (r *Result) Booked() bool { return r != nil && r.Outcome == prio.OutcomeBooked.String() }

// Refused reports whether Prio (or the client, before sending) refused the
// booking.
func (r *Result) Refused() bool { return r != nil && r.Outcome == prio.OutcomeRefused.String() }

// RefusedError is recorded on a job cancelled because its booking was
// refused. Err is the call's error (an *prio.APIError, or a local refusal
// matching prio.ErrInvalidArgument); it is nil when the refusal was read
// back from an attempt that died before cancelling the job.
type RefusedError struct {
	Result Result
	Err    error
}

// Error names the booking's external reference and the refusal: the call's
// error when there is one, else the text recorded on the job.
func (e *RefusedError) Error() string {
	msg := e.Result.Error
	if e.Err != nil {
		msg = e.Err.Error()
	}
	return fmt.Sprintf("prioqueue: booking %q refused: %s", e.Result.ExternalReference, msg)
}

// Unwrap returns the call's error.
func (e *RefusedError) Unwrap() error { return e.Err }
