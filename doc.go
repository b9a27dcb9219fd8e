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
//		OrderBookings: []prio.BookingOption{{
//			ProductId:          prio.Ptr("62522"),
//			ProductTypeDetails: &[]prio.ProductTypeDetail{{ProductTypeId: "1", ProductTypeCount: 2}},
//		}},
//	})
//
// FromEnv builds the options from PRIO_CLIENT_ID, PRIO_CLIENT_SECRET,
// PRIO_DISTRIBUTOR_ID, PRIO_ENV or PRIO_BASE_URL, and PRIO_API_KEY. The
// services (Orders, Reservations, Products, Webhooks) cover the booking
// flow; Client.API returns the generated typed client for every other
// endpoint, with the same authentication, keys, retries and limits.
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
//   - Other POSTs get a random key (UUIDv4).
//
// A key reused with a different body is refused before anything is sent
// (ErrKeyReused): it would mean two different bookings share one identity.
//
// # Create Order cannot book twice
//
// Prio does not document which header or field it deduplicates on, so
// Create does not rely on the server. When a send ends in doubt (the request
// was written and then the answer timed out, the connection dropped, or a
// 5xx came back) Create does not re-send blindly: it lists orders by
// order_external_reference. Found: it returns that order. Proven absent: it
// re-sends with the same key and body. Unknown (the look-up failed too): it
// returns *OutcomeUnknownError, and Orders.Reconcile, which polls on Prio's
// advised schedule and wakes on webhook events, settles it later. This is
// safe even against a server that ignores idempotency keys.
//
// # Retries
//
// RETRY_TABLE
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
//
// A non-2xx answer is an *APIError with Prio's error, error_reference (quote
// it to Prio support), error_message (may be shown to guests),
// error_description, errors[], and the key and number of sends. Bodies that
// are not Prio's JSON (an HTML page from a proxy, a truncated body) still
// give an *APIError. Network failures after the last send are a
// *TransportError. No error string or log line contains the client secret,
// a token, the API key, or a guest's email, name or phone number.
//
// WithInfo reports, for any call, the key, the number of sends, the elapsed
// time, the last status and Prio's error_reference.
//
// # Testing without Prio
//
// Package priotest is a stateful fake Prio with server-side idempotency and
// fault injection; cmd/prio-sandbox runs it as a process. Package batch books
// thousands of rows with a durable journal and resumes exactly after a
// crash.
package prio
