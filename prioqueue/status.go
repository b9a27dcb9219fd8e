package prioqueue

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/riverqueue/river/rivertype"
)

// Querier runs a query: a *pgxpool.Pool, a *pgx.Conn or a pgx.Tx.
type Querier interface {
	Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error)
}

// Status is where one booking's job stands.
type Status struct {
	JobID             int64
	ExternalReference string
	State             rivertype.JobState
	// Result is the job's recorded output: the outcome of its latest
	// attempt that got one; nil before any.
	Result *Result
	// Errors are River's records of failed attempts and of the rescue of
	// attempts whose worker died; the last one is the latest.
	Errors      []rivertype.AttemptError
	Attempt     int
	ScheduledAt time.Time
	FinalizedAt *time.Time
}

// Settled reports whether the job is finished: completed (booked),
// cancelled (refused) or discarded (out of attempts).
func (s *Status) Settled() bool {
	switch s.State {
	case rivertype.JobStateCompleted, rivertype.JobStateCancelled, rivertype.JobStateDiscarded:
		return true
	}
	return false
}

// Statuses returns the status of the latest job of each external reference
// of distributorID, keyed by reference; references without a job are
// absent from the map.
// River's tables are found on the connection's search path; for a queue
// in a schema of its own, see Schema.Statuses.
func Statuses(ctx context.Context, q Querier, distributorID string, refs []string) (map[string]*Status, error) {
	return Schema("").Statuses(ctx, q, distributorID, refs)
}

func statuses(ctx context.Context, q Querier, jobTable, distributorID string, refs []string) (map[string]*Status, error) {
	rows, err := q.Query(ctx, `
		SELECT id, args->>'external_reference', state, metadata->'output', errors, attempt, scheduled_at, finalized_at
		FROM `+jobTable+`
		WHERE kind = $1 AND args->>'distributor_id' = $2 AND args->>'external_reference' = ANY($3)
		ORDER BY id`, Kind, distributorID, refs)
	if err != nil {
		return nil, fmt.Errorf("prioqueue: statuses: %w", err)
	}
	out := make(map[string]*Status, len(refs))
	for rows.Next() {
		var (
			s      Status
			state  string
			output []byte
			errs   [][]byte
		)
		if err := rows.Scan(&s.JobID, &s.ExternalReference, &state, &output, &errs, &s.Attempt, &s.ScheduledAt, &s.FinalizedAt); err != nil {
			rows.Close()
			return nil, fmt.Errorf("prioqueue: statuses: %w", err)
		}
		s.State = rivertype.JobState(state)
		if len(output) > 0 && string(output) != "null" {
			s.Result = &Result{}
			if err := json.Unmarshal(output, s.Result); err != nil {
				rows.Close()
				return nil, fmt.Errorf("prioqueue: job %d: reading its output: %w", s.JobID, err)
			}
		}
		for _, e := range errs {
			var ae rivertype.AttemptError
			if json.Unmarshal(e, &ae) == nil {
				s.Errors = append(s.Errors, ae)
			}
		}
		out[s.ExternalReference] = &s
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("prioqueue: statuses: %w", err)
	}
	return out, nil
}

// Lookup returns the status of the latest job of one booking; ok is false
// when there is none. River's tables are found on the connection's search
// path; for a queue in a schema of its own, see Schema.Lookup.
func Lookup(ctx context.Context, q Querier, distributorID, externalReference string) (s *Status, ok bool, err error) {
	return Schema("").Lookup(ctx, q, distributorID, externalReference)
}
