package batch_test

import (
	"time"

	"github.com/priosdk/prio-go/batch"
)

// sendingEntry is what a run journals just before it calls Book.
func sendingEntry(ref string, deadline time.Time) batch.Entry {
	return batch.Entry{ExternalReference: ref, State: batch.Sending, Attempts: 1, LastSend: deadline, RunID: "dead"}
}
