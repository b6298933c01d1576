package verify

import (
	"encoding/json"
	"fmt"
	"time"

	"github.com/domination/domination/agents"
	"github.com/domination/domination/wire"
)

// WindowRow is one row of active_visitors FINAL.
type WindowRow struct {
	AccountID int64
	StoreID   *string
	Start     int64 // window_start, unix seconds
	Count     uint64
}

// windowName names a window in a report's samples: `352:"uk"@<start>`.
func windowName(k wire.WindowKey) string {
	s := "null"
	if k.HasStore {
		s = fmt.Sprintf("%q", k.Store)
	}
	return fmt.Sprintf("%d:%s@%s", k.AccountID, s, time.Unix(k.Start, 0).UTC().Format(time.RFC3339))
}

// ReconcileVisits accounts for every visit input. A visit is dead-lettered
// when the dead-letter topic holds a record naming it: by origin for the
// visits agent's refusals, by visit id for the windows agent's (late
// visits, whose origin is the repartition topic). Every other visit must
// be counted in its tumbling window of the given size: the stored count of
// a (account_id, store_id, window) must equal the number of distinct ids
// sent for it, as an offline recomputation gives. A window counted short
// makes that many visits missing; counted long, that many duplicated.
// Landed is the visits not dead-lettered, less the missing ones.
func ReconcileVisits(inputs []Input, rows []WindowRow, dead []DeadLetter, window time.Duration) Report {
	r := Report{Produced: len(inputs), Reasons: map[string]int{}}
	size := window.Milliseconds()
	if size <= 0 {
		size = 10_000
	}
	deadAt := make(map[origin]*DeadLetter, len(dead))
	deadByID := map[string]*DeadLetter{}
	for i := range dead {
		d := &dead[i]
		deadAt[origin{d.Topic, d.Partition, d.Offset}] = d
		if d.Agent == agents.WindowsAgentName {
			var v wire.Visit
			if json.Unmarshal(d.Value, &v) == nil && v.ID != "" {
				deadByID[v.ID] = d
			}
		}
	}
	usedAt := map[origin]bool{}
	usedID := map[string]bool{}

	type expected struct {
		ids    map[string]bool
		inputs int
	}
	want := map[wire.WindowKey]*expected{}
	for _, in := range inputs {
		at := origin{in.Topic, in.Partition, in.Offset}
		if d := deadAt[at]; d != nil {
			usedAt[at] = true
			r.DeadLettered++
			r.Reasons[d.Reason]++
			continue
		}
		var v wire.Visit
		err := json.Unmarshal(in.Value, &v)
		if err == nil && v.ID != "" {
			if d := deadByID[v.ID]; d != nil {
				usedID[v.ID] = true
				r.DeadLettered++
				r.Reasons[d.Reason]++
				continue
			}
		}
		if err != nil || v.ID == "" {
			r.Missing++
			r.MissingSample = sample(r.MissingSample, fmt.Sprintf("%s/%d@%d", in.Topic, in.Partition, in.Offset))
			continue
		}
		ts := int64(v.Timestamp * 1000)
		k := wire.ActiveVisitors{AccountID: v.AccountID, StoreID: v.StoreID, Start: floorDiv(ts, size) * size / 1000}.Key()
		e := want[k]
		if e == nil {
			e = &expected{ids: map[string]bool{}}
			want[k] = e
		}
		e.ids[v.ID] = true
		e.inputs++
	}

	got := make(map[wire.WindowKey]uint64, len(rows))
	for _, row := range rows {
		k := wire.ActiveVisitors{AccountID: row.AccountID, StoreID: row.StoreID, Start: row.Start}.Key()
		got[k] += row.Count
	}
	for k, e := range want {
		n, exp := got[k], uint64(len(e.ids))
		switch {
		case n < exp:
			r.Missing += int(exp - n)
			r.Landed += e.inputs - int(exp-n)
			r.MissingSample = sample(r.MissingSample, windowName(k))
		case n > exp:
			r.Landed += e.inputs
			r.Duplicated += int(n - exp)
			r.DuplicatedSample = sample(r.DuplicatedSample, windowName(k))
		default:
			r.Landed += e.inputs
		}
	}
	for k, n := range got {
		if want[k] == nil {
			r.Unexpected += int(n)
		}
	}
	for _, d := range dead {
		if usedAt[origin{d.Topic, d.Partition, d.Offset}] {
			continue
		}
		var v wire.Visit
		if d.Agent == agents.WindowsAgentName && json.Unmarshal(d.Value, &v) == nil && usedID[v.ID] {
			continue
		}
		r.Unexpected++
	}
	return r
}

func floorDiv(a, b int64) int64 {
	q := a / b
	if a%b != 0 && (a < 0) != (b < 0) {
		q--
	}
	return q
}
