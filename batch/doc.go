// Package batch books many orders with the Prio API: a stream of booking
// requests, each identified by its order_external_reference, is booked with
// bounded concurrency, and every row's state is kept in a durable journal so
// that a run that dies at any instant (deploy, OOM, kill -9) and is started
// again with the same input and journal books every row exactly once.
//
// # States
//
// The journal holds one entry per external reference, in one of five states:
//
//	pending   read from the input, never sent
//	sending   a create request may be on the wire; written, and durable,
//	          before the first byte is sent
//	booked    the order exists; its order reference is recorded
//	failed    refused: a 4XX answer, or the client's refusal before sending,
//	          proves that no order was made
//	unknown   the outcome could not be established within this run
//
// Within a run, a create that ends in doubt (a timeout, a dropped
// connection, a 5XX, an outcome-unknown error) is settled by looking the
// order up by external reference after Runner.ResolveDelay, and sent again
// only when the look-up proves it absent, for a bounded number of rounds.
//
// On a later run, booked rows are skipped without any request, failed rows
// are reported again (or retried, with Runner.RetryFailed), and rows left
// sending or unknown are first looked up: a found order is recorded as
// booked, and the row is sent again only when the look-up proves it
// absent. Those look-ups wait until ResolveDelay has passed since the start
// of the run, so that a request the dead run left on the wire has landed;
// the rows behind them go ahead meanwhile. A finished input therefore sends
// nothing when run again.
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
// every run.
package batch
