package prio

import (
	"context"
	"errors"
	"net/http"
	"time"
)

// Outcome is what the result of a booking call (Orders.Create,
// Reservations.Confirm) means for the booking. Package batch and the queue
// worker decide with OutcomeOf, so a row, a job and a caller's own retry
// loop all read a result the same way.
type Outcome int

// The outcomes of a booking call.
const (
	// OutcomeBooked: the order exists (err is nil).
	OutcomeBooked Outcome = iota
	// OutcomeRefused: Prio refused the request, or the client refused it
	// before sending, and no order was made. Sending the same request
	// again gets the same answer; change it first.
	OutcomeRefused
	// OutcomeUnknown: the order may exist. Call Create again (or
	// Reconcile) no earlier than the time OutcomeOf returns; Create then
	// finds the order or proves it absent before it sends anything.
	OutcomeUnknown
	// OutcomeRetryLater: nothing was booked, and the refusal was about
	// this moment, not the request: a rate limit, the retry budget, a
	// server that was down, the caller's own deadline. Call Create again
	// no earlier than the time OutcomeOf returns.
	OutcomeRetryLater
)

// String is the outcome's short name, as batch journals and queue results
// record it.
func (o Outcome) String() string {
	switch o {
	case OutcomeBooked:
		return "booked"
	case OutcomeRefused:
		return "refused"
	case OutcomeUnknown:
		return "unknown"
	case OutcomeRetryLater:
		return "retry later"
	}
	return "invalid outcome"
}

// retryLaterPause is how long OutcomeOf asks to wait after a failure that
// names no time of its own (an outage, an empty retry budget).
const retryLaterPause = 5 * time.Second

// OutcomeOf says what err, returned by Orders.Create or
// Reservations.Confirm, means for the booking, and the earliest time at
// which calling Create again for it is useful (zero for booked and
// refused). An error it does not recognise counts as unknown: the safe
// reading, since Create looks an order up before sending it again.
func OutcomeOf(err error) (Outcome, time.Time) {
	now := time.Now()
	if err == nil {
		return OutcomeBooked, time.Time{}
	}
	var (
		unknown *OutcomeUnknownError
		local   *LocalLimitError
		api     *APIError
		te      *TransportError
	)
	switch {
	case errors.As(err, &unknown):
		return OutcomeUnknown, unknown.DecidableAt
	case errors.Is(err, ErrInvalidArgument), errors.Is(err, ErrKeyReused), errors.Is(err, ErrHoldExpired),
		errors.Is(err, ErrInvalidConfig):
		return OutcomeRefused, time.Time{}
	case errors.As(err, &local):
		return OutcomeRetryLater, now.Add(max(local.RetryAfter, time.Second))
	case errors.As(err, &api):
		switch {
		case api.StatusCode == http.StatusTooManyRequests:
			return OutcomeRetryLater, now.Add(max(api.RetryAfter, time.Second))
		case api.StatusCode >= 500:
			return OutcomeRetryLater, now.Add(max(api.RetryAfter, retryLaterPause))
		case api.StatusCode >= 400:
			return OutcomeRefused, time.Time{}
		}
	case errors.As(err, &te) && !te.InDoubt:
		return OutcomeRetryLater, now.Add(retryLaterPause)
	case errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded):
		return OutcomeRetryLater, now
	}
	return OutcomeUnknown, now.Add(DefaultRetryPolicy().ProcessingHorizon)
}
