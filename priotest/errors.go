package priotest

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"
	"sync/atomic"
)

// apiVersion is what every answer carries in api_version.
const apiVersion = "3.8.0"

// Error codes the sandbox answers with, beyond the usual per-status ones.
// They are listed in the package documentation.
const (
	codeInvalidRequest       = "INVALID_REQUEST"
	codeIdempotencyInUse     = "IDEMPOTENCY_KEY_IN_USE"
	codeIdempotencyMismatch  = "IDEMPOTENCY_KEY_REUSED"
	codeReservationExpired   = "RESERVATION_EXPIRED"
	codeReservationConfirmed = "RESERVATION_ALREADY_CONFIRMED"
	codeReservationCancelled = "RESERVATION_CANCELLED"
	codeBookingDeclined      = "BOOKING_DECLINED"
	codeNoAvailability       = "NO_AVAILABILITY"
	codeInvalidProduct       = "INVALID_PRODUCT"
)

// apiError is an answer in Prio's ErrorModel. Handlers return it as their
// error and the strict server's error hook renders it.
type apiError struct {
	status      int
	code        string
	message     string
	description string
	details     []string
	header      http.Header
}

func (e *apiError) Error() string {
	return fmt.Sprintf("%d %s: %s", e.status, e.code, e.message)
}

func errorf(status int, code, format string, args ...any) *apiError {
	return &apiError{status: status, code: code, message: fmt.Sprintf(format, args...)}
}

// errorModel is Prio's ErrorModel as the sandbox writes it.
type errorModel struct {
	Error            string   `json:"error"`
	ErrorReference   string   `json:"error_reference"`
	ErrorMessage     string   `json:"error_message,omitempty"`
	ErrorDescription string   `json:"error_description,omitempty"`
	Errors           []string `json:"errors,omitempty"`
}

var errorSeq atomic.Int64

func (e *apiError) body() []byte {
	m := errorModel{
		Error:            e.code,
		ErrorReference:   "SBX-ERR-" + strconv.FormatInt(errorSeq.Add(1), 10),
		ErrorMessage:     e.message,
		ErrorDescription: e.description,
		Errors:           e.details,
	}
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	_ = enc.Encode(m)
	return buf.Bytes()
}

func (e *apiError) write(w http.ResponseWriter) {
	for k, v := range e.header {
		w.Header()[k] = v
	}
	b := e.body()
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Content-Length", strconv.Itoa(len(b)))
	w.WriteHeader(e.status)
	_, _ = w.Write(b)
}

// asAPIError turns any handler error into an answer: its own when it is an
// *apiError, a 500 otherwise.
func asAPIError(err error) *apiError {
	if e, ok := err.(*apiError); ok {
		return e
	}
	return errorf(http.StatusInternalServerError, "INTERNAL_SERVER_ERROR", "%v", err)
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	enc.SetIndent("", "  ")
	if err := enc.Encode(v); err != nil {
		asAPIError(err).write(w)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_, _ = w.Write(buf.Bytes())
}
