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
// Migrate creates River's tables (call it at start-up; it is safe from many
// processes at once). A River client whose Config.Schema names a schema of
// its own migrates and reads with that Schema's methods
// (prioqueue.Schema("bookings").Migrate, .Statuses, .Lookup); the worker
// writes to the schema of the client it runs under. A booking is a
// CreateOrderArgs job, unique by distributor and external reference:
// enqueueing the same booking twice makes one job. Enqueue it with the service's own transaction:
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
// Every later attempt passes Create, through prio.WithPreviousAttempt, the
// latest moment an earlier attempt may have sent, so Create looks the order
// up first (finding it settles the job at once) and sends again only once
// no earlier send can still be processed; until then Create answers unknown
// and the worker snoozes the job until it is decidable. That moment is the
// latest of:
//
//   - the end of an attempt that ended in an unknown outcome, which the
//     worker records in the job's metadata before snoozing it;
//   - for each attempt River recorded as failed (its record carries the
//     attempt's start) or rescued (its record carries the rescue time, later
//     than the attempt's start plus its timeout), that record's time plus
//     the attempt timeout.
//
// Both hold because no create request of an attempt leaves after its send
// window: Create runs under that deadline. An attempt that snoozes without
// an unknown outcome (a rate limit, a refusal about this moment) sent
// nothing that can still book. A clock margin (Config.ClockMargin) is added
// for the machines' clocks.
//
// River's Config.JobTimeout and RescueStuckJobsAfter must follow the
// worker: JobTimeout at least Worker.Timeout (the send window plus the
// settle window), RescueStuckJobsAfter longer, so a job is rescued only once
// its attempt can no longer send. Lowering the send window while attempts
// with the old one may still run weakens the bound for their failures.
//
// # Throughput
//
// River fetches jobs only when one of a queue's MaxWorkers slots frees, and
// a fetch is a round trip to PostgreSQL and a commit: with MaxWorkers equal
// to the calls wanted at once, each slot waits idle for it. Set
// Config.Concurrency to the Create calls wanted at once and the queue to
// QueueConfig(concurrency) (twice as many slots): the extra jobs are held,
// waiting for a call to end, so the next booking starts as soon as one
// finishes. Give the pgx pool PoolSize(concurrency) connections:
//
//	w, _ := prioqueue.NewWorker(prioqueue.Config{Client: client, DB: pool, Concurrency: 8})
//	river.NewClient(riverpgxv5.New(pool), &river.Config{
//		Queues:  map[string]river.QueueConfig{river.QueueDefault: prioqueue.QueueConfig(8)},
//		Workers: workers, JobTimeout: w.Timeout(nil), RescueStuckJobsAfter: w.Timeout(nil) + time.Minute,
//	})
//
// # Results
//
// Lookup and Statuses read jobs back by external reference: state, the last
// recorded Result, and River's attempt errors.
package prioqueue
