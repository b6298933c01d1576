package status

import (
	"fmt"
	"io"
	"sort"
	"strings"
	"text/tabwriter"
	"time"
)

// Stage kinds.
const (
	// KindAgent is a domination agent's consumer group.
	KindAgent = "agent"
	// KindClickHouse is a Kafka engine table's consumer group and the
	// store its view fills.
	KindClickHouse = "clickhouse"
)

// Report is one snapshot of every stage from input topic to ClickHouse
// table, in pipeline order. It is what `domination status --format json`
// prints and what a worker serves on GET /status.
type Report struct {
	// At is when the snapshot was taken.
	At time.Time `json:"at"`
	// Stalled is whether any stage is stalled.
	Stalled bool `json:"stalled"`
	// Ready is the worker's readiness, when the report comes from one.
	Ready *Readiness `json:"ready,omitempty"`
	// Stages are in pipeline order: shadow agent, shadow engine, visits
	// agent, windows agent, active-visitors engine.
	Stages []Stage `json:"stages"`
	// DeadLetters counts the dead-letter topics' records by reason.
	DeadLetters []DeadLetters `json:"dead_letters"`
	// Error is set by a worker whose latest refresh failed: the rest of
	// the report is then the last good one.
	Error string `json:"error,omitempty"`
}

// Readiness is what the worker's GET /ready answers.
type Readiness struct {
	Ready  bool   `json:"ready"`
	Reason string `json:"reason,omitempty"`
}

// Stage is one consumer group reading one topic.
type Stage struct {
	// Name is "agent:<agent>" or "clickhouse:<store>", the label of
	// domination_stage_stalled.
	Name string `json:"name"`
	// Kind is KindAgent or KindClickHouse.
	Kind  string `json:"kind"`
	Topic string `json:"topic"`
	Group string `json:"group"`
	// Lag sums the partitions' lag.
	Lag int64 `json:"lag"`
	// StallAfter is how long a waiting partition of this stage may keep its
	// offset before it is stalled.
	StallAfter Duration `json:"stall_after"`
	// Stalled is whether any partition is; Stall then names the one that
	// has waited longest.
	Stalled bool   `json:"stalled"`
	Stall   *Stall `json:"stall,omitempty"`
	// Partitions of the topic, by id.
	Partitions []Partition `json:"partitions"`
	// Store is the ClickHouse side of a KindClickHouse stage.
	Store *Store `json:"store,omitempty"`
	// Problem says why some of the stage could not be read (a topic that
	// does not exist, a store not migrated, ClickHouse down); what could be
	// read is still reported.
	Problem string `json:"problem,omitempty"`
}

// Partition is one partition of a stage's topic.
type Partition struct {
	Partition int `json:"partition"`
	// StartOffset and EndOffset bound the records the topic holds.
	StartOffset int64 `json:"start_offset"`
	EndOffset   int64 `json:"end_offset"`
	// CommittedOffset is the group's next record to read, -1 when the group
	// has committed nothing.
	CommittedOffset int64 `json:"committed_offset"`
	// Lag is EndOffset - CommittedOffset (from StartOffset when nothing is
	// committed).
	Lag int64 `json:"lag"`
	// WaitingSince is since when records have waited here with the
	// committed offset unmoved; absent when nothing waits.
	WaitingSince *time.Time `json:"waiting_since,omitempty"`
	Stalled      bool       `json:"stalled"`
}

// Stall locates a stalled stage: since when, at which partition and
// committed offset.
type Stall struct {
	Since     time.Time `json:"since"`
	Partition int       `json:"partition"`
	Offset    int64     `json:"offset"`
}

// Store is a ClickHouse store fed by a Kafka engine table.
type Store struct {
	// Table is the store, as in the metrics' table label.
	Table string `json:"table"`
	// Rows is the store's row count from its active parts: rows that
	// ClickHouse has not merged yet (re-deliveries) count each time.
	Rows int64 `json:"rows"`
	// NewestEvent is the newest event time in the store (emit_timestamp,
	// window_end); absent when the store is empty.
	NewestEvent *time.Time `json:"newest_event,omitempty"`
	// NewestOnTopic is the newest event time among the last records of the
	// topic's partitions; absent when the topic is empty.
	NewestOnTopic *time.Time `json:"newest_on_topic,omitempty"`
	// FreshnessSeconds is NewestOnTopic - NewestEvent, at least 0: how far
	// the store is behind the topic in event time. With an empty store it
	// is the age of NewestOnTopic.
	FreshnessSeconds float64 `json:"freshness_seconds"`
	// ErrorsTable holds what the engine or the guard could not store;
	// ErrorsRows counts its records, each once.
	ErrorsTable string `json:"errors_table"`
	ErrorsRows  int64  `json:"errors_rows"`
}

// DeadLetters counts one dead-letter topic's records.
type DeadLetters struct {
	Topic string `json:"topic"`
	// Exists is false for a topic not created (yet): counted as zero.
	Exists bool  `json:"exists"`
	Total  int64 `json:"total"`
	// ByReason counts by the dlq.reason header ("unknown" without one).
	ByReason map[string]int64 `json:"by_reason"`
	Problem  string           `json:"problem,omitempty"`
}

// Duration marshals as a Go duration string ("20s").
type Duration time.Duration

// MarshalText implements encoding.TextMarshaler.
func (d Duration) MarshalText() ([]byte, error) { return []byte(time.Duration(d).String()), nil }

// UnmarshalText implements encoding.TextUnmarshaler.
func (d *Duration) UnmarshalText(b []byte) error {
	v, err := time.ParseDuration(string(b))
	if err != nil {
		return err
	}
	*d = Duration(v)
	return nil
}

// StalledStages returns the stalled stages.
func (r Report) StalledStages() []Stage {
	var out []Stage
	for _, s := range r.Stages {
		if s.Stalled {
			out = append(out, s)
		}
	}
	return out
}

// Describe says where s is stalled, in one line:
// "clickhouse:shadow (table shadow) stalled at partition 2 offset 117 since 2026-12-01T10:00:00Z (topic shadow, group clickhouse-shadow, lag 1000)".
func (s Stage) Describe() string {
	if !s.Stalled || s.Stall == nil {
		return s.Name + " is not stalled"
	}
	name := s.Name
	if s.Store != nil {
		name += " (table " + s.Store.Table + ")"
	}
	return fmt.Sprintf("%s stalled at partition %d offset %d since %s (topic %s, group %s, lag %d)",
		name, s.Stall.Partition, s.Stall.Offset, s.Stall.Since.UTC().Format(time.RFC3339), s.Topic, s.Group, s.Lag)
}

// WriteTable writes r for people: the stages, their partitions, the stores
// and the dead letters, then one line per stalled stage.
func (r Report) WriteTable(w io.Writer) error {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	p := func(format string, args ...any) { fmt.Fprintf(tw, format, args...) }
	p("STAGE\tTOPIC\tGROUP\tPARTITIONS\tLAG\tSTALLED\n")
	for _, s := range r.Stages {
		stalled := "no"
		if s.Stalled && s.Stall != nil {
			stalled = fmt.Sprintf("YES: partition %d offset %d since %s", s.Stall.Partition, s.Stall.Offset, clock(s.Stall.Since))
		}
		p("%s\t%s\t%s\t%d\t%d\t%s\n", s.Name, s.Topic, s.Group, len(s.Partitions), s.Lag, stalled)
	}
	p("\nSTAGE\tPARTITION\tSTART\tEND\tCOMMITTED\tLAG\tSTATE\n")
	for _, s := range r.Stages {
		for _, pt := range s.Partitions {
			state := "ok"
			switch {
			case pt.Stalled:
				state = "STALLED since " + clock(*pt.WaitingSince)
			case pt.WaitingSince != nil:
				state = "waiting since " + clock(*pt.WaitingSince)
			}
			committed := fmt.Sprint(pt.CommittedOffset)
			if pt.CommittedOffset < 0 {
				committed = "none"
			}
			p("%s\t%d\t%d\t%d\t%s\t%d\t%s\n", s.Name, pt.Partition, pt.StartOffset, pt.EndOffset, committed, pt.Lag, state)
		}
	}
	p("\nTABLE\tROWS\tNEWEST EVENT\tNEWEST ON TOPIC\tFRESHNESS\tERRORS TABLE\tERRORS\n")
	for _, s := range r.Stages {
		if s.Store == nil {
			continue
		}
		st := s.Store
		p("%s\t%d\t%s\t%s\t%s\t%s\t%d\n", st.Table, st.Rows, stamp(st.NewestEvent), stamp(st.NewestOnTopic),
			(time.Duration(st.FreshnessSeconds * float64(time.Second))).Round(time.Second), st.ErrorsTable, st.ErrorsRows)
	}
	p("\nDEAD-LETTER TOPIC\tREASON\tRECORDS\n")
	for _, d := range r.DeadLetters {
		switch {
		case !d.Exists:
			p("%s\t(no such topic)\t0\n", d.Topic)
		case len(d.ByReason) == 0:
			p("%s\t-\t0\n", d.Topic)
		default:
			reasons := make([]string, 0, len(d.ByReason))
			for k := range d.ByReason {
				reasons = append(reasons, k)
			}
			sort.Strings(reasons)
			for _, k := range reasons {
				p("%s\t%s\t%d\n", d.Topic, k, d.ByReason[k])
			}
		}
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	var tail []string
	for _, s := range r.Stages {
		if s.Problem != "" {
			tail = append(tail, "problem: "+s.Name+": "+s.Problem)
		}
	}
	for _, d := range r.DeadLetters {
		if d.Problem != "" {
			tail = append(tail, "problem: "+d.Topic+": "+d.Problem)
		}
	}
	if r.Ready != nil {
		if r.Ready.Ready {
			tail = append(tail, "worker ready")
		} else {
			tail = append(tail, "worker not ready: "+r.Ready.Reason)
		}
	}
	if r.Error != "" {
		tail = append(tail, "latest refresh failed: "+r.Error)
	}
	stalled := r.StalledStages()
	for _, s := range stalled {
		tail = append(tail, "STALLED: "+s.Describe())
	}
	if len(stalled) == 0 {
		tail = append(tail, "no stage is stalled")
	}
	_, err := fmt.Fprintf(w, "\n%s\n", strings.Join(tail, "\n"))
	return err
}

func clock(t time.Time) string { return t.UTC().Format(time.RFC3339) }

func stamp(t *time.Time) string {
	if t == nil {
		return "-"
	}
	return clock(*t)
}
