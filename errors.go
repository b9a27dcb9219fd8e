package prio

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"strings"
	"time"
)

// Sentinels that errors returned by this package match with errors.Is.
// An *APIError matches the one that fits its HTTP status.
var (
	ErrInvalidRequest = errors.New("prio: invalid request")     // 400, 422
	ErrUnauthorized   = errors.New("prio: unauthorized")        // 401
	ErrForbidden      = errors.New("prio: forbidden")           // 403
	ErrNotFound       = errors.New("prio: not found")           // 404
	ErrConflict       = errors.New("prio: conflict")            // 409
	ErrRateLimited    = errors.New("prio: rate limited")        // 429, and local limits
	ErrServer         = errors.New("prio: server error")        // 5xx
	ErrOutcomeUnknown = errors.New("prio: outcome unknown")     // a booking that may or may not exist
	ErrHoldExpired    = errors.New("prio: reservation expired") // confirming a dead hold
)

// maxErrorBody caps how much of an error response is read.
const maxErrorBody = 64 << 10

// APIError is a non-2xx answer from Prio (or from something in front of it,
// such as a proxy answering with HTML). The fields under "Prio's error body"
// are empty when the body was not Prio's JSON error model.
type APIError struct {
	StatusCode int // HTTP status of the last answer

	// Prio's error body.
	Code        ErrorCode // "error", e.g. CodeNoAvailability
	Reference   string    // "error_reference": quote it to Prio support
	Message     string    // "error_message": may be shown to end users
	Description string    // "error_description": for developers
	URI         string    // "error_uri"
	Details     []string  // "errors": e.g. validation problems

	// What the SDK knows about the call.
	Operation      string        // operationId, e.g. createOrder
	IdempotencyKey string        // key sent with every attempt, if any
	Sends          int           // requests actually sent
	RetryAfter     time.Duration // asked delay for 429/503, if any
	ContentType    string        // media type of the body
	BodyTruncated  bool          // the body was longer than 64 KiB
}

// Error is one line: the operation, the status, Prio's error code and
// description (with personal data redacted), then error_reference, the key,
// the number of sends and any Retry-After, each in brackets.
func (e *APIError) Error() string {
	var b strings.Builder
	b.WriteString("prio: ")
	if e.Operation != "" {
		b.WriteString(e.Operation)
		b.WriteString(": ")
	}
	fmt.Fprintf(&b, "HTTP %d", e.StatusCode)
	if e.Code != "" {
		b.WriteString(" ")
		b.WriteString(string(e.Code))
	}
	if e.Description != "" {
		b.WriteString(": ")
		b.WriteString(redactText(e.Description))
	} else if e.Message != "" {
		b.WriteString(": ")
		b.WriteString(redactText(e.Message))
	} else if e.Code == "" && e.ContentType != "" {
		fmt.Fprintf(&b, " (%s body)", e.ContentType)
	}
	if e.Reference != "" {
		fmt.Fprintf(&b, " [error_reference %s]", e.Reference)
	}
	if e.IdempotencyKey != "" {
		fmt.Fprintf(&b, " [key %s]", e.IdempotencyKey)
	}
	if e.Sends > 0 {
		fmt.Fprintf(&b, " [sends %d]", e.Sends)
	}
	if e.RetryAfter > 0 {
		fmt.Fprintf(&b, " [retry after %s]", e.RetryAfter)
	}
	return oneLine(b.String()) // Prio's texts may hold line breaks
}

// Is maps the status to the package's sentinels.
func (e *APIError) Is(target error) bool {
	switch target {
	case ErrInvalidRequest:
		return e.StatusCode == http.StatusBadRequest || e.StatusCode == http.StatusUnprocessableEntity
	case ErrUnauthorized:
		return e.StatusCode == http.StatusUnauthorized
	case ErrForbidden:
		return e.StatusCode == http.StatusForbidden
	case ErrNotFound:
		return e.StatusCode == http.StatusNotFound
	case ErrConflict:
		return e.StatusCode == http.StatusConflict
	case ErrRateLimited:
		return e.StatusCode == http.StatusTooManyRequests
	case ErrServer:
		return e.StatusCode >= 500 && e.StatusCode <= 599
	}
	return false
}

// errorBody is Prio's ErrorModel as it arrives; every field is optional here
// so that partial bodies still yield what they have.
type errorBody struct {
	Error            json.RawMessage `json:"error"`
	ErrorReference   json.RawMessage `json:"error_reference"`
	ErrorMessage     json.RawMessage `json:"error_message"`
	ErrorDescription json.RawMessage `json:"error_description"`
	ErrorURI         json.RawMessage `json:"error_uri"`
	Errors           json.RawMessage `json:"errors"`
}

// text reads a field that should be a string; a number or other scalar is
// kept as its JSON text, so one odd field does not lose the others.
func text(raw json.RawMessage) string {
	if len(raw) == 0 || string(raw) == "null" {
		return ""
	}
	var s string
	if json.Unmarshal(raw, &s) == nil {
		return s
	}
	return string(raw)
}

// details reads "errors": normally an array of strings, but an array of
// objects or a single string is kept too.
func details(raw json.RawMessage) []string {
	if len(raw) == 0 || string(raw) == "null" {
		return nil
	}
	var list []json.RawMessage
	if json.Unmarshal(raw, &list) != nil {
		return []string{text(raw)}
	}
	out := make([]string, 0, len(list))
	for _, item := range list {
		out = append(out, text(item))
	}
	return out
}

// newAPIError builds an *APIError from a non-2xx response. It reads at most
// 64 KiB of the body and closes it. It never fails: a body that is not
// Prio's JSON (HTML from a proxy, truncated JSON, nothing) still gives an
// *APIError carrying the status.
func newAPIError(resp *http.Response, operation string) *APIError {
	e := &APIError{StatusCode: resp.StatusCode, Operation: operation}
	if ct := resp.Header.Get("Content-Type"); ct != "" {
		if mt, _, err := mime.ParseMediaType(ct); err == nil {
			e.ContentType = mt
		} else {
			e.ContentType = "invalid"
		}
	}
	e.RetryAfter, _ = parseRetryAfter(resp.Header.Get("Retry-After"), time.Now())
	if resp.Body != nil {
		body, truncated, _ := readCapped(resp.Body, maxErrorBody)
		resp.Body.Close()
		e.BodyTruncated = truncated
		parseErrorBody(e, body)
	}
	return e
}

// parseErrorBody fills e from a JSON ErrorModel, if body is one.
func parseErrorBody(e *APIError, body []byte) {
	body = bytes.TrimSpace(body)
	if len(body) == 0 || body[0] != '{' {
		return
	}
	var eb errorBody
	if err := json.Unmarshal(body, &eb); err != nil {
		return
	}
	e.Code = ErrorCode(text(eb.Error))
	e.Reference = text(eb.ErrorReference)
	e.Message = text(eb.ErrorMessage)
	e.Description = text(eb.ErrorDescription)
	e.URI = text(eb.ErrorURI)
	e.Details = details(eb.Errors)
}

// readCapped reads up to max bytes of r and reports whether more remained.
func readCapped(r io.Reader, max int64) ([]byte, bool, error) {
	b, err := io.ReadAll(io.LimitReader(r, max+1))
	if int64(len(b)) > max {
		return b[:max], true, err
	}
	return b, false, err
}

// OutcomeUnknownError reports a booking call whose effect could not be
// established: a send of it may have been processed by Prio, and nothing has
// yet proved the order present or absent. The booking may exist. Call Create
// again (same request, same external reference) no earlier than
// DecidableAt, or settle it with Orders.Reconcile; never book it again under
// a new external reference.
//
// It matches ErrOutcomeUnknown and nothing else: a possible booking is not a
// server error, whatever the last answer was. SendErr and LookupErr hold
// the causes.
type OutcomeUnknownError struct {
	Operation         string // operationId, e.g. createOrder
	IdempotencyKey    string // the key every send carried
	ExternalReference string // the booking's identity: settle by it
	Sends             int    // requests that left the process in this call
	Lookups           int    // look-ups by external reference in this call
	LastStatus        int    // HTTP status of the last answer; 0 when none arrived
	Elapsed           time.Duration
	// LastSend is the latest moment a send of the booking may have been
	// written: the end of the last send in doubt, or the time an earlier
	// attempt was known to have sent (WithPreviousAttempt). Zero when no
	// send of this call or an earlier one is known.
	LastSend time.Time
	// DecidableAt is when the booking can be settled: from then on no
	// send of it can still be processed by Prio, so a look-up that finds
	// nothing proves it absent. Call Create again (or Reconcile) then.
	DecidableAt time.Time
	// SendErr is what became of the last send: an *APIError, a
	// *TransportError, or nil when the call sent nothing itself (an
	// earlier attempt is still in doubt).
	SendErr error
	// LookupErr is why the look-up by external reference failed; nil when
	// it ran and found nothing, or did not run.
	LookupErr error
}

// Error is one line: the external reference to settle, what was tried, when
// it becomes decidable, and the folded text of SendErr and LookupErr.
func (e *OutcomeUnknownError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "prio: %s: outcome unknown for external reference %q after %d sends and %d look-ups in %s",
		e.Operation, e.ExternalReference, e.Sends, e.Lookups, e.Elapsed.Round(time.Millisecond))
	if !e.DecidableAt.IsZero() {
		fmt.Fprintf(&b, "; decidable at %s", e.DecidableAt.Format(time.RFC3339))
	}
	if e.IdempotencyKey != "" {
		fmt.Fprintf(&b, " [key %s]", e.IdempotencyKey)
	}
	if e.LastStatus != 0 {
		fmt.Fprintf(&b, " [last status %d]", e.LastStatus)
	}
	if e.SendErr != nil {
		b.WriteString("; send: ")
		b.WriteString(oneLine(e.SendErr.Error()))
	}
	if e.LookupErr != nil {
		b.WriteString("; look-up: ")
		b.WriteString(oneLine(e.LookupErr.Error()))
	}
	return b.String()
}

// Is matches ErrOutcomeUnknown.
func (e *OutcomeUnknownError) Is(target error) bool { return target == ErrOutcomeUnknown }

// oneLine folds line breaks, so that every error of this package is one
// line however its causes were built.
func oneLine(s string) string {
	if !strings.ContainsAny(s, "\r\n") {
		return s
	}
	return strings.Join(strings.FieldsFunc(s, func(r rune) bool { return r == '\n' || r == '\r' }), "; ")
}

// ReferenceConflictError reports that Create found an order under its
// external reference that is not the booking it was asked to make: other
// products, product types or counts. It happens when a reference is reused
// for a changed request (after a restart, or by another process). Order is
// the order found; Create sent nothing after finding it. It matches
// ErrKeyReused.
type ReferenceConflictError struct {
	ExternalReference string
	Order             *Order
	Reason            string // how the found order differs from the request
}

// Error names the reference, the order found under it and how that order
// differs from the request.
func (e *ReferenceConflictError) Error() string {
	ref := ""
	if e.Order != nil && e.Order.OrderReference != nil {
		ref = " (order " + *e.Order.OrderReference + ")"
	}
	return oneLine(fmt.Sprintf("prio: createOrder: external reference %q is already booked%s for another request: %s",
		e.ExternalReference, ref, e.Reason))
}

// Is matches ErrKeyReused.
func (e *ReferenceConflictError) Is(target error) bool { return target == ErrKeyReused }
