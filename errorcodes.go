package prio

// ErrorCode is the "error" field of Prio's error model (APIError.Code): a
// machine-readable code such as NO_AVAILABILITY. Prio has more than a
// thousand codes and publishes no list, and says it may add more, so a
// switch over ErrorCode needs a default branch, and the sentinels
// (ErrInvalidRequest, ErrConflict, ...) remain the way to handle a whole
// class of failures. The constants are the codes this SDK and priotest know.
type ErrorCode string

// Prio's error codes that the booking flow meets.
const (
	// CodeInvalidRequest: the request does not match the API (400).
	CodeInvalidRequest ErrorCode = "INVALID_REQUEST"
	// CodeInvalidToken: the access token is missing, wrong or expired
	// (401); the client fetches a new one once by itself.
	CodeInvalidToken ErrorCode = "INVALID_TOKEN"
	// CodeForbidden: the credentials may not act for this distributor (403).
	CodeForbidden ErrorCode = "FORBIDDEN"
	// CodeNotFound: no such order, reservation, product or other resource
	// (404).
	CodeNotFound ErrorCode = "NOT_FOUND"
	// CodeNoAvailability: not enough open spots for the product, slot or
	// date (409).
	CodeNoAvailability ErrorCode = "NO_AVAILABILITY"
	// CodeBookingDeclined: the supplier declined the booking (422).
	CodeBookingDeclined ErrorCode = "BOOKING_DECLINED"
	// CodeInvalidProduct: the product cannot be booked by this
	// distributor (422).
	CodeInvalidProduct ErrorCode = "INVALID_PRODUCT"
	// CodeInvalidProductType: a product type is not one of the
	// product's (422).
	CodeInvalidProductType ErrorCode = "INVALID_PRODUCT_TYPE"
	// CodeInvalidAvailability: the availability id is not a slot of the
	// product (422).
	CodeInvalidAvailability ErrorCode = "INVALID_AVAILABILITY"
	// CodeInvalidPromocode: a promo code was declined (422); its Message
	// may be shown to the guest.
	CodeInvalidPromocode ErrorCode = "INVALID_PROMOCODE"
	// CodeReservationExpired: the reservation's hold has lapsed (409). A
	// confirmation refused with it matches ErrHoldExpired.
	CodeReservationExpired ErrorCode = "RESERVATION_EXPIRED"
	// CodeReservationAlreadyConfirmed: the reservation was confirmed by
	// another order (409).
	CodeReservationAlreadyConfirmed ErrorCode = "RESERVATION_ALREADY_CONFIRMED"
	// CodeReservationCancelled: the reservation was cancelled (409).
	CodeReservationCancelled ErrorCode = "RESERVATION_CANCELLED"
	// CodeReservationPaid: a paid reservation can no longer be amended
	// (409).
	CodeReservationPaid ErrorCode = "RESERVATION_PAID"
	// CodeIdempotencyKeyInUse: another request with the same key is still
	// being processed (409); a booking then counts as in doubt.
	CodeIdempotencyKeyInUse ErrorCode = "IDEMPOTENCY_KEY_IN_USE"
	// CodeIdempotencyKeyReused: the key was used before for another
	// request (409).
	CodeIdempotencyKeyReused ErrorCode = "IDEMPOTENCY_KEY_REUSED"
	// CodeTooManyErrors: the client sent too many 4XX-answered requests
	// within a minute and is banned for a minute (429).
	CodeTooManyErrors ErrorCode = "TOO_MANY_ERRORS"
	// CodeRateLimitExceeded: more requests a minute than the account may
	// send (429).
	CodeRateLimitExceeded ErrorCode = "RATE_LIMIT_EXCEEDED"
	// CodeInternalServerError: Prio failed while handling the request
	// (500).
	CodeInternalServerError ErrorCode = "INTERNAL_SERVER_ERROR"
	// CodeServiceUnavailable: Prio is down or overloaded (503).
	CodeServiceUnavailable ErrorCode = "SERVICE_UNAVAILABLE"
)
