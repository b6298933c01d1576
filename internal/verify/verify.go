// Package verify reconciles what was sent into domination with what it
// delivered: every input record is either landed in ClickHouse, or
// dead-lettered with a reason, or missing; and nothing landed counts twice
// once the store has de-duplicated what the product promises to
// de-duplicate (shadow read with FINAL, one active_visitors row per key and
// window).
//
// The reconciliation is a pure function of three lists (ReconcileRatings,
// ReconcileVisits) so it can be tested without services; Source reads those
// lists from Kafka and ClickHouse. `domination verify` and the reliability
// suite in internal/e2e both use it.
//
// # Matching
//
// A rating input is identified by where it was read from (topic, partition,
// offset). It has landed when shadow FINAL holds a row with its unique_id
// and its record timestamp as emit_timestamp (or, for inputs recomputed
// from a seed whose timestamps are unknown, any row with its unique_id). It
// is dead-lettered when the dead-letter topic holds a record whose
// dlq.topic, dlq.partition and dlq.offset headers name it, or, for a
// refused output with no input behind it (dlq.offset -1), whose key is its
// unique_id, or, for a seeded input, whose key or value holds its
// unique_id. It is missing otherwise.
//
// Duplicated counts rows that should not exist after de-duplication: for
// each unique_id sent, the rows shadow FINAL holds beyond the number of
// distinct timestamps it was sent with, plus inputs that both landed and
// were dead-lettered.
package verify

import (
	"fmt"
	"maps"
	"slices"
	"strings"
)

// SampleSize is how many ids a Report keeps as examples of each problem.
const SampleSize = 10

// Report is the outcome of one reconciliation.
type Report struct {
	// Produced counts the input records considered.
	Produced int `json:"produced"`
	// Landed counts the inputs found in the store.
	Landed int `json:"landed"`
	// Missing counts the inputs neither landed nor dead-lettered.
	Missing int `json:"missing"`
	// Duplicated counts what the store holds twice after de-duplication.
	Duplicated int `json:"duplicated"`
	// DeadLettered counts the inputs found in the dead-letter topic (each
	// once, however often it was dead-lettered).
	DeadLettered int `json:"dead_lettered"`
	// Replayed counts the inputs that were dead-lettered, then replayed by
	// `domination dlq replay` and stored: they count as landed too.
	Replayed int `json:"replayed,omitempty"`
	// Unexpected counts stored rows (or counted visits) and dead letters
	// that no input explains: another run's data in the same tables, or a
	// bug.
	Unexpected int `json:"unexpected"`
	// Mismatched counts landed inputs whose stored row disagrees with the
	// input (a rating classified as the wrong type).
	Mismatched int `json:"mismatched"`
	// Reasons counts the dead-lettered inputs by dlq.reason.
	Reasons map[string]int `json:"reasons"`
	// MissingSample and DuplicatedSample hold up to SampleSize examples
	// (unique_ids, or windows for visits).
	MissingSample    []string `json:"missing_sample,omitempty"`
	DuplicatedSample []string `json:"duplicated_sample,omitempty"`
}

// OK reports whether nothing is missing, duplicated or mismatched.
// Unexpected rows are not a failure here: the same tables may hold other
// runs' data (the reliability suite, which owns its tables, checks them
// too).
func (r Report) OK() bool {
	return r.Missing == 0 && r.Duplicated == 0 && r.Mismatched == 0
}

// Line is the one-line summary the reliability suite prints:
//
//	scenario=<name> produced=N landed=N missing=N duplicated=N dead_lettered=N
func (r Report) Line(scenario string) string {
	return fmt.Sprintf("scenario=%s produced=%d landed=%d missing=%d duplicated=%d dead_lettered=%d",
		scenario, r.Produced, r.Landed, r.Missing, r.Duplicated, r.DeadLettered)
}

// String is the summary without a scenario name, then the other counts and
// the samples when they are not empty.
func (r Report) String() string {
	var b strings.Builder
	fmt.Fprintf(&b, "produced=%d landed=%d missing=%d duplicated=%d dead_lettered=%d", r.Produced, r.Landed, r.Missing, r.Duplicated, r.DeadLettered)
	if r.Replayed > 0 {
		fmt.Fprintf(&b, " replayed=%d", r.Replayed)
	}
	if r.Unexpected > 0 {
		fmt.Fprintf(&b, " unexpected=%d", r.Unexpected)
	}
	if r.Mismatched > 0 {
		fmt.Fprintf(&b, " mismatched=%d", r.Mismatched)
	}
	if len(r.Reasons) > 0 {
		keys := slices.Sorted(maps.Keys(r.Reasons))
		parts := make([]string, len(keys))
		for i, k := range keys {
			parts[i] = fmt.Sprintf("%s:%d", k, r.Reasons[k])
		}
		fmt.Fprintf(&b, " reasons=%s", strings.Join(parts, ","))
	}
	if len(r.MissingSample) > 0 {
		fmt.Fprintf(&b, " missing_sample=%s", strings.Join(r.MissingSample, ","))
	}
	if len(r.DuplicatedSample) > 0 {
		fmt.Fprintf(&b, " duplicated_sample=%s", strings.Join(r.DuplicatedSample, ","))
	}
	return b.String()
}

func sample(s []string, v string) []string {
	if len(s) < SampleSize {
		s = append(s, v)
	}
	return s
}

// Input is one record sent to an input topic. Partition and Offset are -1
// for an input recomputed offline (from a seed), whose Time is then zero.
type Input struct {
	Topic     string
	Partition int
	Offset    int64
	// Time is the record's Kafka timestamp.
	Time  int64 // unix seconds
	Key   []byte
	Value []byte
	// Replayed is set on a record `domination dlq replay` sent back from a
	// dead-letter topic (header dlq.replayed-from): a second delivery of an
	// input already counted, not an input of its own.
	Replayed bool
}

// DeadLetter is one record of a dead-letter topic, reduced to what
// matching needs.
type DeadLetter struct {
	// Topic, Partition and Offset are the dlq.topic, dlq.partition and
	// dlq.offset headers: where the refused record came from (-1 when it
	// was an output Kafka refused with no input behind it).
	Topic     string
	Partition int
	Offset    int64
	Key       []byte
	Value     []byte
	// Reason and Agent are the dlq.reason and dlq.agent headers.
	Reason string
	Agent  string
}

type origin struct {
	topic     string
	partition int
	offset    int64
}
