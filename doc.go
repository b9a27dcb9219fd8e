// Package prio is a client for the Prioticket Distributor API v3.8: the API
// through which resellers search tours and attractions, hold capacity and
// book tickets.
//
// Its promise: Create Order (and every other POST) can be retried after any
// timeout, 5xx, dropped connection or crash without booking twice and
// without losing a booking, and the caller writes none of that logic.
//
// # Getting started
//
//	client, err := prio.NewClient(
//		prio.WithEnvironment(prio.Staging),
//		prio.WithCredentials(clientID, clientSecret),
//		prio.WithDistributorID("501"),
//	)
//	order, err := client.Orders.Create(ctx, &prio.OrderRequest{
//		OrderExternalReference: "shop-order-1042", // your id: the booking's identity
//		OrderBookings: prio.Bookings(prio.Item{
//			ProductID: "62522",
//			Tickets:   []prio.ProductTypeDetail{prio.Tickets("1", 2)},
//		}),
//	})
//
// FromEnv builds the options from PRIO_CLIENT_ID, PRIO_CLIENT_SECRET,
// PRIO_DISTRIBUTOR_ID, PRIO_ENV or PRIO_BASE_URL, and PRIO_API_KEY. The
// services (Orders, Reservations, Products, Webhooks) cover the booking
// flow; Client.API returns the generated typed client for every other
// endpoint, with the same authentication, keys, retries and limits.
//
// The models are Prio's own (package generated), and they serve as
// responses too, so most of their fields are optional pointers a request
// leaves unset; go doc on Order, OrderRequest, Reservation and the other
// booking models lists their fields. A booking program writes plain values
// instead: an Item (product, optional availability id, Tickets) becomes an
// order's bookings with Bookings and a reservation's lines with
// ReservationLines, and a Person becomes contacts with Contacts. Every pointer field of a model
// has a nil-safe getter: order.GetOrderReference() is "" when the field or
// the order is nil, and getters of nested models chain
// (booking.GetBookingPricing().GetPriceTotal()). Create calls never change
// the request they are given.
//
// # Idempotency keys
//
// Every POST carries one idempotency key, made once per logical call before
// the first send and identical on every send, as the Idempotency-Key and
// App-Reference headers; each send also carries its number in App-Attempt.
// The body is encoded once and sent byte for byte the same each time.
//
//   - Create Order and Create Reservation derive their key from the
//     distributor id, the operation and your external reference (a UUIDv5),
//     so another process, or the same one after a restart, sends the same
//     key for the same booking.
//   - WithIdempotencyKey sets your own key (1 to 255 visible ASCII
//     characters).
//   - The other POSTs of the services derive theirs from what identifies
//     them (a reservation and promo code, a webhook's URL and events);
//     POSTs made through Client.API get a random key (UUIDv4).
//
// A key reused with a different body is refused before anything is sent
// (ErrKeyReused): it would mean two different bookings share one identity.
// A booking Prio refused outright (a 4XX other than 409 and 429) releases
// its key, so the corrected request can be sent under the same reference.
//
// # Create Order cannot book twice
//
// Prio does not document which header or field it deduplicates on, so
// Create does not rely on the server. When a send ends in doubt (the request
// was written and then the answer timed out, the connection dropped, or a
// 5xx came back) Create does not re-send blindly: it lists orders by
// order_external_reference. Found: it returns that order. Proven absent: it
// re-sends with the same key and body. Not proven: it returns
// *OutcomeUnknownError, whose DecidableAt says when the booking can be
// settled; call Create again then (it looks before it sends), or let
// Orders.Reconcile, which polls on Prio's advised schedule and wakes on
// webhook events, settle it. This is safe even against a server that
// ignores idempotency keys.
//
// What "proven absent" means is the rule every booking path of this module
// obeys (Create, Reconcile, package batch, the caller's own retries):
//
//	An empty look-up proves an order absent only when (a) it read Prio's
//	source of truth, and (b) no send that may have reached Prio can still
//	be processed.
//
// (a) Look-ups send cache=false (Prio serves lists from a cache that may
// lag behind bookings), read every page, and list from 31 days before the
// booking's first known send (Prio lists three months unless told).
//
// (b) A send that got no answer from Prio's application itself may still be
// processed until RetryPolicy.ProcessingHorizon (default 90 s: Prio's
// advised 60 s booking timeout plus 30 s) has passed since it was written.
// No answer from the application is: a timeout, a reset or dropped
// connection, a truncated body, a 409 saying the key is in use, and every
// 5xx that does not carry Prio's JSON error model (error and
// error_reference), including every 504 and the 520-527 of CDNs: those are
// pages of a gateway in front of Prio, whose origin may go on and book. A
// 5xx with Prio's error model, or any 4XX, ends that send's processing.
// Until the horizon has passed, an empty look-up proves nothing and
// Create reports the booking as unknown instead of sending it again.
//
// The time of the last send that may still be processed travels with the
// booking: this client remembers it for every key it sent (a repeat Create
// in the same process looks first and waits out the horizon, and so does a
// second goroutine booking the same reference while the first is sending);
// package batch journals it; a caller in a new process passes it with
// WithPreviousAttempt (WithLookupFirst when it is known to be older than
// the horizon). Reconcile gives up on an order never listed only once
// GiveUpAfter, and never less than the horizon, has passed since that
// time. After a doubtful send, a refusal of a later send is not a final
// answer until the rule proves the order absent; a 401 proves a send was
// not processed, so the token is refreshed once and the same bytes are sent
// again. An order found that does not match the request (other products,
// product types or counts) is reported as *ReferenceConflictError, never as
// the request's result.
//
// OutcomeOf reads any result of Create as booked, refused, unknown or retry
// later, with the time from which calling again is useful; package batch
// and the queue worker decide with it.
//
// # Retries
//
// One call makes at most RetryPolicy.MaxSends sends (default 4: the first
// and up to 3 retries). After each send, the outcome decides:
//
//	outcome of a send                               retried   wait before the next send
//	2xx, 3xx (same-host redirects are followed)     no        -
//	400 401 403 404 409 422, any other 4XX, 501     no        -
//	408 Request Timeout                             yes       backoff (or Retry-After, see below)
//	429 Too Many Requests                           yes       Retry-After; none given: 60 s
//	500 502 503 504, and the 520-527 of CDNs         yes (*)   backoff (or Retry-After)
//	connection refused, temporary DNS failure       yes       backoff
//	connection reset, EOF, unexpected EOF, a body   yes (*)   backoff
//	  cut short, the send's own timeout
//	TLS or certificate error, unknown host, a       no        -
//	  redirect to another host or scheme
//	any other error: retried only when nothing      yes       backoff
//	  was written (e.g. "server closed idle
//	  connection")
//	the caller's context canceled or expired        no        -
//
//	backoff     full jitter: before retry n (0, 1, 2) a uniform wait in
//	            [0, min(20 s, 250 ms x 2^n)), so under 1.75 s in all
//	Retry-After seconds or HTTP date, on any retried answer, obeyed up to
//	            60 s; a longer ask ends the call at once with that answer
//	            (an *APIError matching ErrRateLimited or ErrServer whose
//	            RetryAfter is the asked delay)
//	per send    60 s for Create Order and Create Reservation (Prio's
//	            advice), 30 s for every other request
//	deadline    the caller's ctx bounds the whole call; every wait ends
//	            when ctx does, and a retry whose wait would end after the
//	            ctx deadline is not started: the last result comes back
//	            at once
//
// Who may be re-sent: GET, HEAD, PUT, DELETE and OPTIONS always; a POST
// only when it carries an Idempotency-Key (every POST the SDK makes does).
// (*) Create Order does not re-send after these outcomes, because the order
// may exist: it looks the order up first (see above), and between rounds it
// waits as long as a Retry-After asked. Outcomes that prove the request was
// not acted on (connection refused, nothing written, 408, 429) are retried
// for it too.
//
// A 401 is answered once by fetching a new token and sending once more,
// bookings included. A token is reused until a tenth of its lifetime (at
// most a minute) before it expires; waiting for one ends with the caller's
// context, whatever the token endpoint does.
//
// Client-wide limits, shared by all goroutines (RetryPolicy fields):
//
//	retry budget   a bucket of 10 tokens, +0.1 per call, -1 per retry; when
//	               it is empty calls retry at most once a second in all,
//	               so in a total outage sends stay under 1.1 x calls + 10
//	               + 1 a second (a call stopped by it gets a
//	               *TransportError that wraps ErrRetryBudgetExhausted)
//	4XX guard      at most 50 4XX answers within a sliding minute (Prio
//	               bans a client for a minute after 60), the token
//	               endpoint's and the 401s before a token refresh included.
//	               Every send reserves its place before it leaves, so that
//	               concurrent sends cannot overshoot: while sends on their
//	               way hold the rest of the allowance, the next one waits
//	               for an answer; once 50 answers fall within the minute,
//	               nothing is sent until the window allows:
//	               *LocalLimitError, ErrRateLimited
//	request rate   at most 1,000 sends in any minute (Prio's cap): 100 at
//	               once, then 15 a second; a call waits for its turn, or
//	               fails at once with *LocalLimitError if the wait would
//	               outlast its deadline
//
// Worst case with the defaults and no Retry-After: a read takes at most
// 4 x 30 s + 1.75 s; a run of 429s adds up to 3 x 60 s. CallInfo.Sends
// counts every request that really left, including the rare re-send
// net/http makes on its own when a kept-alive connection turns out dead.
//
// # Errors
//
// Every error can be tested with errors.Is against the package's sentinels:
//
//	ErrInvalidRequest  400, 422        ErrUnauthorized  401 (after one token refresh)
//	ErrForbidden       403             ErrNotFound      404, or no order for a reference
//	ErrConflict        409             ErrRateLimited   429, or a local limit refused to send
//	ErrServer          5xx             ErrOutcomeUnknown a booking that may exist
//	ErrHoldExpired     confirming a reservation whose hold has lapsed
//	ErrKeyReused       a key or an external reference reused for another request
//
// *OutcomeUnknownError matches ErrOutcomeUnknown and nothing else, whatever
// its last answer was: its causes are its SendErr and LookupErr fields. So
// a switch over the sentinels never mistakes a possible booking for a
// server error.
//
// A non-2xx answer is an *APIError with Prio's error, error_reference (quote
// it to Prio support), error_message (may be shown to guests),
// error_description, errors[], and the key and number of sends. Bodies that
// are not Prio's JSON (an HTML page from a proxy, a truncated body) still
// give an *APIError. Its Code is an ErrorCode, with constants for the codes
// the booking flow meets (CodeNoAvailability, CodeBookingDeclined,
// CodeReservationExpired, ...); Prio has many more and may add any, so a
// switch over it keeps a default branch. Network failures after the last
// send are a
// *TransportError. No error string or log line contains the client secret,
// a token, the API key, or a guest's email, name or phone number.
//
// WithInfo reports, for any call, the key, the number of sends, the elapsed
// time, the last status and Prio's error_reference.
//
// # Traces and metrics
//
// The client speaks the OpenTelemetry API (the SDK and the exporters are
// the program's): WithTracerProvider and WithMeterProvider, or the global
// providers as NewClient finds them. Each call gets a span prio.<operation>
// with the key, sends, look-ups, outcome (ok, refused, unknown) and
// error_reference; each send a client span under it, whose W3C trace
// context goes out with the request. Counters of calls by outcome, sends,
// retries, look-ups, unknown outcomes and token fetches, histograms of call
// and send durations, and gauges of each client's retry budget and 4XX guard
// complete it; docs/TELEMETRY.md lists every name and unit. No span or
// metric carries a secret, a token, a body or guest data. With no provider
// set, the client records nothing and pays for nothing.
//
// # Decoding
//
// Decoding is strict where the spec knows a type from Prio's own inventory:
// a string where an integer belongs, or a malformed date-time, fails the
// response, because it means the answer is not what it claims to be. It is
// tolerant where the spec had to guess, since a guess must never cost a
// booking: the flags v3.5 typed as strings (Bool accepts true, "true", "1",
// "yes", "" and their opposites, and keeps any other value as received) and
// the schemas Prio names without defining (Raw keeps any JSON value). Such a
// value is sent back exactly as it came, and Bool.Value and Raw.Text,
// Raw.Object or Raw.Decode give its meaning where there is one. Amounts,
// prices, fees, taxes and percentages are Decimal, text that accepts a JSON
// number without going through floating point and is always sent as a
// string. Enums are open; those a booking meets have Go names in this
// package (OrderStatus with OrderConfirmed, BookingStatus with
// BookingConfirmed, ContactType with ContactBooker, AdmissionType,
// ProductType, ProductStatus, PaymentStatus), written by
// internal/cmd/modelgen from the generated code. Dates without a time are
// CalendarDate (prio.Date(t)), written as 2006-01-02. The order, reservation and contact models and
// everything inside them keep the fields this version does not know in
// AdditionalProperties and send them back, so Get, change, Update (see
// UpdateOf) deletes nothing Prio added since.
//
// # Testing without Prio
//
// Package priotest is a stateful fake Prio with server-side idempotency and
// fault injection; prio.NewClient(prio.WithServer(s)) points a client at a
// *priotest.Server s (URL, credentials, distributor id).
// cmd/prio-sandbox (or prio sandbox) runs it as a process. cmd/prio is the operators' command line. Package batch books
// thousands of rows with a durable journal and resumes exactly after a
// crash.
package prio
