package prio

import (
	"errors"
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
)

func errorResponse(status int, contentType, body string) *http.Response {
	h := http.Header{}
	if contentType != "" {
		h.Set("Content-Type", contentType)
	}
	return &http.Response{StatusCode: status, Header: h, Body: io.NopCloser(strings.NewReader(body))}
}

func TestAPIErrorParsing(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name, ct, body string
		status         int
		want           APIError
		is             error
	}{
		{"prio error model", "application/json", `{"error":"INVALID_REQUEST","error_reference":"ER-1","error_message":"Check the date","error_description":"from_date is required","error_uri":"https://docs","errors":["from_date missing","to_date malformed"]}`,
			400, APIError{StatusCode: 400, Code: "INVALID_REQUEST", Reference: "ER-1", Message: "Check the date", Description: "from_date is required", URI: "https://docs", Details: []string{"from_date missing", "to_date malformed"}, ContentType: "application/json"}, ErrInvalidRequest},
		{"errors of odd shape keep the rest", "application/json", `{"error":"CONFLICT","error_reference":"ER-2","errors":[{"field":"x"},7]}`,
			409, APIError{StatusCode: 409, Code: "CONFLICT", Reference: "ER-2", Details: []string{`{"field":"x"}`, "7"}, ContentType: "application/json"}, ErrConflict},
		{"numeric reference", "application/json", `{"error":"NOT_FOUND","error_reference":12345}`,
			404, APIError{StatusCode: 404, Code: "NOT_FOUND", Reference: "12345", ContentType: "application/json"}, ErrNotFound},
		{"html from a proxy", "text/html", `<html><body>502 Bad Gateway</body></html>`,
			502, APIError{StatusCode: 502, ContentType: "text/html"}, ErrServer},
		{"truncated json", "application/json", `{"error":"INVALID_REQ`,
			400, APIError{StatusCode: 400, ContentType: "application/json"}, ErrInvalidRequest},
		{"empty", "", ``, 429, APIError{StatusCode: 429}, ErrRateLimited},
		{"forbidden", "application/json", `{"error":"FORBIDDEN","error_reference":"ER-3"}`, 403,
			APIError{StatusCode: 403, Code: "FORBIDDEN", Reference: "ER-3", ContentType: "application/json"}, ErrForbidden},
		{"unauthorized", "application/json", `{"error":"invalid_token","error_reference":"ER-4"}`, 401,
			APIError{StatusCode: 401, Code: "invalid_token", Reference: "ER-4", ContentType: "application/json"}, ErrUnauthorized},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			got := newAPIError(errorResponse(tc.status, tc.ct, tc.body), "")
			assert.Equal(t, tc.want, *got)
			assert.ErrorIs(t, got, tc.is)
			for _, other := range []error{ErrInvalidRequest, ErrUnauthorized, ErrForbidden, ErrNotFound, ErrConflict, ErrRateLimited, ErrServer} {
				if other != tc.is {
					assert.NotErrorIs(t, got, other)
				}
			}
		})
	}
}

func TestAPIErrorStringRedacts(t *testing.T) {
	t.Parallel()
	e := newAPIError(errorResponse(422, "application/json",
		`{"error":"INVALID_CONTACT","error_reference":"ER-9","error_description":"contact jane.doe@example.com / +31 6 1234 5678 rejected"}`), "createOrder")
	msg := e.Error()
	assert.Contains(t, msg, "INVALID_CONTACT")
	assert.Contains(t, msg, "ER-9")
	assert.NotContains(t, msg, "jane.doe@example.com")
	assert.NotContains(t, msg, "1234 5678")
}

// Every error of the package is one line, whatever text Prio sent.
func TestErrorsAreOneLine(t *testing.T) {
	t.Parallel()
	api := &APIError{StatusCode: 422, Code: CodeBookingDeclined, Description: "the supplier said:\r\nno\nnot today", Reference: "ref-1"}
	for _, err := range []error{
		api,
		&OutcomeUnknownError{Operation: "createOrder", SendErr: api, LookupErr: errors.New("first\nsecond")},
		&ReferenceConflictError{ExternalReference: "r", Reason: "product 1\nproduct 2"},
		&AuthError{Err: api},
	} {
		if msg := err.Error(); strings.ContainsAny(msg, "\r\n") {
			t.Errorf("%T: %q has a line break", err, msg)
		}
	}
	assert.Contains(t, api.Error(), "the supplier said:; no; not today")
}
