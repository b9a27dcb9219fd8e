// Package prioqueue books orders through a durable job queue: River
// (github.com/riverqueue/river) on PostgreSQL. It is for the two cases one
// process cannot cover:
//
//   - a reseller service whose own commit ("order paid") and the call to
//     Prio cannot be one transaction: the service enqueues the booking in
//     the transaction that records the shop's order, so the booking exists
//     if and only if that transaction commits, and a worker books it later,
//     surviving the service's own crashes;
//   - a batch that outgrows one machine: many workers on many machines take
//     jobs from one queue.
//
// The root package prio imports nothing of this package, River or pgx.
//
// # Enqueueing
//
// Migrate creates River's tables (or run River's own CLI, `river migrate-up`,
// at the pinned version). A booking is a CreateOrderArgs job, unique by
// distributor and external reference: enqueueing the same booking twice
// makes one job. Enqueue it with the service's own transaction:
//
//	tx, _ := pool.Begin(ctx)
//	_, _ = tx.Exec(ctx, `INSERT INTO shop_orders ...`)
//	args, _ := prioqueue.NewCreateOrderArgs(distributorID, &orderRequest)
//	_, _ = riverClient.InsertTx(ctx, tx, args, nil)
//	_ = tx.Commit(ctx) // the booking is queued exactly when this commits
//
// # Working
//
// NewWorker builds the worker on Orders.Create; add it to the River client's
// workers with river.AddWorker. Each attempt reads what Create's result
// means from prio.OutcomeOf:
//
//	booked       the job completes, its output holds the order reference and
//	             status, and Config.OnSettled runs in the transaction that
//	             completes it
//	refused      the job is cancelled with a *RefusedError recorded (no
//	             retries), its output holds the refusal, OnSettled runs too
//	unknown      the job is snoozed until the booking is decidable, then
//	retry later  tried again; no attempt counted
//
// # Earlier attempts
//
// An attempt may die at any instant (kill -9, a lost machine) with a create
// request on the wire; River's rescuer then gives the job to another worker.
// Before each Create the worker writes, in its own small transaction, the
// latest moment its create requests may be sent (the end of its send window
// plus a clock margin) into the job's metadata, and lowers it to the real end
// once Create returns. The next attempt passes that time to Create with
// prio.WithPreviousAttempt, so Create looks the order up first and sends
// again only once no earlier send can still be processed; until then the job
// is snoozed. River's own records do not give this bound: a snooze records
// no time, and a recorded attempt error carries the attempt's start.
//
// River's Config.RescueStuckJobsAfter must exceed the worker's timeout
// (Worker.Timeout: the send window plus the time to settle), so that a job
// is rescued only once its attempt can no longer send.
//
// # Results
//
// Lookup and Statuses read jobs back by external reference: state, the last
// recorded Result, and River's attempt errors.
package prioqueue
