// Package batch books many orders with the Prio API: a stream of booking
// requests, each identified by its order_external_reference, is booked with
// bounded concurrency, and every row's state is kept in a durable journal so
// that a run that dies at any instant (deploy, OOM, kill -9) and is started
// again with the same input and journal books every row exactly once.
//
// # The rule
//
// A row is sent again only when its order is proven absent, and an empty
// look-up proves an order absent only when (a) it read Prio's source of
// truth (cache=false, every page) and (b) no send that may have reached
// Prio can still be processed: ProcessingHorizon of the client's
// RetryPolicy (90 s by default) has passed since that send was written.
// Orders.Create keeps the rule by itself when it is told of the earlier
// send (prio.WithPreviousAttempt); the runner's part is to know, for every
// row and across crashes, when the last send may have been, and to pass it
// on. It never looks orders up itself.
//
// # States
//
// The journal holds one entry per external reference, in one of five states:
//
//	pending   read from the input and not booked; never sent, or sent and
//	          proven unbooked (a refusal of the moment, such as a 5XX or a
//	          rate limit)
//	sending   a Book call may be sending the row; written, and durable,
//	          before the call starts, with the call's deadline as LastSend
//	booked    the order exists; its order reference is recorded
//	failed    refused: Prio or the client refused the request and no
//	          order was made (or one was found that differs from it)
//	unknown   the outcome could not be established within this run
//
// Entry.LastSend is the latest moment a send of the row may have been
// written. Before each Book call the runner journals the row sending with
// LastSend moved up to the call's deadline (now plus Runner.BookTimeout,
// which bounds the call), so a process that dies during the call leaves a
// bound that holds. Book is passed the LastSend known before the call; once
// it returns, the row keeps the LastSend Book reported.
//
// # Deciding
//
// The runner reads each Book result with prio.OutcomeOf and nothing else.
// Booked rows are recorded booked. Refused rows fail; a refusal matching
// prio.ErrUnauthorized or prio.ErrForbidden also stops the run, since no
// other row would fare better. An unknown outcome is recorded unknown, and
// a refusal of the moment sends the row back to pending; for both the
// worker waits until the time OutcomeOf gave (for an unknown outcome,
// DecidableAt: the end of the horizon, when a look-up can settle it) and
// calls Book again with the row's LastSend, at most Runner.ResolveAttempts
// more times in the run. A row still unsettled then is recorded unknown.
// The worker is held while it waits.
//
// On a later run, booked rows are skipped without any request, failed rows
// are reported again (or retried, with Runner.RetryFailed), and rows left
// sending, unknown or pending after a send are booked with their journaled
// LastSend: Book looks them up first, returns an order it finds, and sends
// only once the horizon has passed since that moment. A row left sending
// by a dead process therefore waits until its Book call's deadline plus the
// horizon. A journal written before LastSend was kept has none: its rows
// left sending count as sent at Updated plus BookTimeout, those left
// unknown or failed at Updated. A finished input sends nothing when run
// again.
//
// # Input and memory
//
// Rows arrive as an iter.Seq2 and are read a small window at a time; the
// runner never holds the whole input, and the journal holds states, not
// requests. The runner's memory stays flat however many rows the input has
// (a *prio.Client keeps up to 100,000 recent idempotency keys of its own).
//
// # Journals
//
// OpenSQLite opens the default journal, a SQLite file in WAL mode (pure Go,
// no cgo) that a person can inspect while a run is going on:
//
//	sqlite3 bookings.journal 'SELECT state, count(*) FROM bookings GROUP BY state'
//
// NewMemoryJournal keeps states in memory, for tests and benchmarks. Any
// other store can be used through the Journal interface.
//
// # Sharing the client
//
// All workers share one Booker. ClientBooker wraps a *prio.Client, so the
// workers share its rate limiter, its retry budget and its 4XX guard, and
// every create request carries the idempotency key derived from the
// distributor and the external reference: the same row gets the same key in
// every run. ClientBooker passes a row's LastSend to Orders.Create with
// prio.WithPreviousAttempt, and the client's ProcessingHorizon is the
// horizon of the rule.
package batch
