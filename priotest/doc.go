// Package priotest is a stateful sandbox of the Prio Distributor API v3.8
// for tests, examples and benchmarks, in the spirit of net/http/httptest:
// it keeps orders and holds like Prio, fails like a real network when asked
// to, and counts what really happened on the server.
//
// In a test:
//
//	s := priotest.NewServer(t, priotest.WithFaults(priotest.Sequence("createOrder", priotest.FaultDropAfter)))
//	client, err := prio.NewClient(prio.WithServer(s)) // URL, credentials, distributor id
//	// ... book priotest.ProductOpen for one adult (priotest.ProductTypeAdult) under reference "r-1" ...
//	if n := s.OrdersFor("r-1"); n != 1 {
//		t.Fatalf("booked %d times", n)
//	}
//
// The API is served under /v3.8/distributor (URL ends there), so a client
// with a wrong base path fails. Every request is validated against
// api/openapi.yaml; a non-conforming one gets 400 with Prio's ErrorModel
// (error INVALID_REQUEST, details in errors[]).
//
// # Behaviour
//
//   - POST /oauth2/token takes HTTP Basic credentials and a JSON body with
//     grant_type client_credentials. Tokens expire after WithTokenTTL. A
//     request without an Authorization header gets 400, a bad or expired
//     token 401.
//   - The seeded catalogue: ProductOpen (TIME_OPEN), ProductTimeSlot
//     (TIME_SLOT, SlotCapacity per slot), ProductTimeDate (TIME_DATE,
//     DayCapacity per day), ProductSlow (its orders stay ORDER_PENDING with
//     bookings BOOKING_PROCESSING_CONFIRMATION for WithSlowSupplierDelay)
//     and ProductDeclined (every booking declined). ProductTypeAdult and
//     ProductTypeChild are valid for all of them. Availability ids come from
//     the availability endpoints.
//   - Reservations hold capacity until reservation_valid_until
//     (WithHoldTime), then expire and release it. Orders book directly or
//     confirm a reservation; cancellation releases capacity. List Orders
//     filters by order_external_reference, order_reference, order_status and
//     creation dates and paginates (items_per_page, start_index, page) in
//     Prio's list envelope. GET answers carry Last-Modified and answer
//     If-Modified-Since with 304.
//   - Order reads (List Orders, Get Order) come from Prio's cache unless the
//     request says cache=false (or 0). WithOrderCacheLag puts that cache
//     behind the live orders: a cached read sees each order as it stood
//     that long ago, so an order just booked is missing from the list and
//     404 on its own, and a fresh cancellation, update or slow-supplier
//     confirmation shows the version before it. A look-up that must prove
//     an order absent has to ask with cache=false.
//   - Date-times must carry a numeric offset: a Z gets 400. More than 60
//     4XX answers to one client within a minute ban it with 429 for a minute;
//     more than 1,000 requests a minute get 429 (WithClientErrorLimit,
//     WithRequestLimit). As at Prio, every 4XX a client is sent counts
//     towards the ban, whatever produced it: bad requests, 401s of the
//     token endpoint or of an expired token, 404s, 409s, rate-limit and
//     injected 429s, even a 4XX whose body a fault then broke. Only the
//     429s of the ban itself do not count, so a ban ends after its minute.
//     A banned client is refused on every path, the token endpoint too.
//   - Webhooks (POST/GET /webhooks, DELETE /webhooks/{id}, POST
//     /notifications) are called on order create, update and cancel, with
//     Basic webhook_auth and a few retries; GET /notifications lists what
//     was sent, with its delivery status.
//   - Update Reservation adds lines and replaces lines (product, slot,
//     counts); held capacity moves with them, all or nothing, and the hold
//     is extended. Promocodes PromoPercent and PromoFixed reprice a
//     reservation (price_promocodes, reservation_promocodes) and the order
//     that confirms it; PromoExpired and unknown codes answer 422
//     INVALID_PROMOCODE.
//   - Contacts sent with an order join the Contacts module (a contact_uid
//     is drawn when missing): List, Get (include_versions) and Update
//     Contact, which can push the new version onto orders. The spec has no
//     Create or Delete Contact.
//   - Payments of an order or reservation (order_reference): MANUAL,
//     ADYEN_RECURRING and MEWS_BILL are PAID at once, other flows PENDING
//     with a payment link until Submit Additional Payment Details. Cancel
//     Payment cancels a pending payment or refunds a paid one, fully or by
//     refund_amount. A paid reservation can no longer be amended.
//   - Categories, destinations, locations, routes, taxes, currency rates
//     and stock answer from seeded data naming the catalogue's products;
//     the stock of ProductOpen counts its bookings and holds. GET
//     /system/docs answers the spec the sandbox validates against.
//
// Error codes the sandbox chooses where Prio's are unknown: 422
// BOOKING_DECLINED (ProductDeclined), 409 NO_AVAILABILITY (not enough open
// spots), 422 INVALID_PRODUCT / INVALID_PRODUCT_TYPE / INVALID_AVAILABILITY,
// 409 RESERVATION_EXPIRED, RESERVATION_ALREADY_CONFIRMED and
// RESERVATION_CANCELLED when confirming a reservation that cannot be, 404
// NOT_FOUND, 403 FORBIDDEN for another distributor, 429 TOO_MANY_ERRORS (the
// ban) and RATE_LIMIT_EXCEEDED, 409 IDEMPOTENCY_KEY_IN_USE and
// IDEMPOTENCY_KEY_REUSED, 409 RESERVATION_PAID (amending a paid
// reservation), 422 PAYMENT_NOT_ALLOWED (EXTERNAL or INVOICE settlement,
// or paid already), 422 INVALID_PAYMENT_AMOUNT, 409 PAYMENT_NOT_CHANGEABLE
// (cancelling a finished payment) and 422 INVALID_CURRENCY. Every
// operation of the spec is served.
//
// # Idempotency
//
// WithIdempotency selects what the server deduplicates. IdempotencyHeader:
// a POST repeating an Idempotency-Key (per client) with the same method,
// path and body gets the stored answer again, byte for byte, with header
// Idempotent-Replayed: true; the same key with another request gets 409
// IDEMPOTENCY_KEY_REUSED, and a repeat while the first is still running 409
// IDEMPOTENCY_KEY_IN_USE. IdempotencyReference: a Create Order whose
// order_external_reference already has an order answers 201 with that order.
// IdempotencyBoth (the default) applies both; IdempotencyNone neither, to
// prove a client safe against a server that does nothing.
//
// # Faults
//
// A Profile injects faults per operation (operationId, or "*"), by
// probability with a seed or as an exact Sequence: FaultDelay, FaultHang,
// Fault5xxBefore, Fault5xxAfter, FaultDropAfter, FaultResetMidBody,
// Fault429, Fault429NoRetryAfter, FaultMalformedJSON, FaultTruncatedJSON,
// FaultHTML and the gateway faults. "After" faults run the operation first,
// so the order exists although the client never learns it.
//
// The gateway faults (FaultGateway502, FaultGateway503, FaultGateway504,
// FaultGateway524) put a proxy that gives up in front of a slow origin. The
// client gets the proxy's HTML page (nginx's, or Cloudflare's for 524), not
// Prio's error model, after Profile.GatewayDelay; the origin meanwhile
// keeps the request and carries it out Profile.OriginDelay after it
// arrived, so an order appears a little after the client was told the call
// failed. Until then its Idempotency-Key answers 409
// IDEMPOTENCY_KEY_IN_USE; afterwards it replays the origin's answer.
//
// ProfileByName gives "none", "flaky" and "hostile". SetFaults changes the
// profile at run time.
//
// # Observing
//
// Stats counts orders, distinct and duplicated external references,
// requests and faults, order reads with and without the cache, the 4XX
// answers counted towards bans, the bans, and the most 4XX answers one
// client got within a rolling minute; OrdersFor counts the orders of one reference;
// Requests lists every request (method, path, operation, idempotency key,
// App-Attempt, body hash, status, fault). The same is served outside the
// API path: GET /_sandbox/stats, GET /_sandbox/requests, GET and PUT
// /_sandbox/faults (a profile name or a profile document), POST
// /_sandbox/reset.
//
// # Time
//
// Everything time-dependent reads the sandbox clock (WithClock, default
// time.Now). In a testing/synctest bubble, create the server with
// NewUnstarted inside the bubble and talk to it through PipeClient: real
// sockets would keep the bubble from ever being idle.
package priotest
