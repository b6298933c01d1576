package verify

import (
	"fmt"
	"math"

	"github.com/domination/domination/wire"
)

// ShadowRow is one row of shadow FINAL.
type ShadowRow struct {
	UniqueID      string
	EmitTimestamp int64 // unix seconds
	Type          string
	Rating        int64
}

// lenient decodes any rating the product could have accepted, whatever its
// configured limits: the id is what matters here.
var lenient = wire.RatingLimits{MinRating: math.MinInt64, MaxRating: math.MaxInt64, MaxIDLen: math.MaxInt32, MaxMessageBytes: math.MaxInt32}

// ReconcileRatings accounts for every rating input: landed in rows (shadow
// FINAL), dead-lettered in dead, or missing. See the package doc for how
// inputs are matched.
func ReconcileRatings(inputs []Input, rows []ShadowRow, dead []DeadLetter) Report {
	r := Report{Produced: len(inputs), Reasons: map[string]int{}}

	type stamp struct {
		id string
		ts int64
	}
	byStamp := make(map[stamp]*ShadowRow, len(rows))
	byID := make(map[string]*ShadowRow, len(rows))
	rowsPerID := make(map[string]int, len(rows))
	for i := range rows {
		row := &rows[i]
		byStamp[stamp{row.UniqueID, row.EmitTimestamp}] = row
		byID[row.UniqueID] = row
		rowsPerID[row.UniqueID]++
	}
	// A dead letter may be written more than once (it is produced at least
	// once, like any output): all copies explain the same input.
	deadAt := make(map[origin]*DeadLetter, len(dead))
	// refusedByKey holds outputs Kafka refused with no input behind them
	// (no origin offset): their key is the rating's unique_id. anyByKey
	// holds every dead letter by key and by the unique_id its value holds,
	// for inputs recomputed from a seed (keyed by unique_id, offset unknown).
	refusedByKey := map[string]*DeadLetter{}
	anyByKey := map[string]*DeadLetter{}
	for i := range dead {
		d := &dead[i]
		if d.Offset >= 0 {
			deadAt[origin{d.Topic, d.Partition, d.Offset}] = d
		} else {
			refusedByKey[string(d.Key)] = d
		}
		anyByKey[string(d.Key)] = d
		if rt, err := wire.DecodeRating(d.Value, lenient); err == nil {
			anyByKey[string(rt.UniqueID)] = d
		}
	}
	usedAt := map[origin]bool{}
	usedKey := map[string]bool{}

	// A replayed record is a dead letter sent back to the input topic: the
	// input it copies is counted once, as landed if the copy landed, and
	// the copy is not an input of its own.
	replayed := map[stamp]bool{}
	for _, in := range inputs {
		if !in.Replayed {
			continue
		}
		r.Produced--
		if rt, err := wire.DecodeRating(in.Value, lenient); err == nil {
			replayed[stamp{string(rt.UniqueID), in.Time}] = true
		}
	}

	// stamps holds the distinct timestamps each unique_id was sent with
	// (-1 for an input whose timestamp is unknown).
	stamps := map[string]map[int64]bool{}
	for _, in := range inputs {
		if in.Replayed {
			continue
		}
		rating, err := wire.DecodeRating(in.Value, lenient)
		id := ""
		if err == nil {
			id = string(rating.UniqueID)
		}
		var d *DeadLetter
		if in.Offset >= 0 {
			if d = deadAt[origin{in.Topic, in.Partition, in.Offset}]; d != nil {
				usedAt[origin{in.Topic, in.Partition, in.Offset}] = true
			}
		}
		switch {
		case d != nil:
		case in.Offset < 0:
			if d = anyByKey[string(in.Key)]; d != nil {
				usedKey[string(in.Key)] = true
			}
		case id != "":
			if d = refusedByKey[id]; d != nil {
				usedKey[id] = true
			}
		}
		var row *ShadowRow
		if id != "" {
			if stamps[id] == nil {
				stamps[id] = map[int64]bool{}
			}
			if in.Offset < 0 && in.Time == 0 {
				stamps[id][-1] = true
				row = byID[id]
			} else {
				stamps[id][in.Time] = true
				row = byStamp[stamp{id, in.Time}]
			}
		}
		switch {
		case row != nil && d != nil && replayed[stamp{id, in.Time}]:
			// Dead-lettered, then replayed and stored: landed once.
			r.Landed++
			r.Replayed++
		case row != nil && d != nil:
			// Counted in the store and dead-lettered too.
			r.Landed++
			r.Duplicated++
			r.DuplicatedSample = sample(r.DuplicatedSample, id)
		case row != nil:
			r.Landed++
			if row.Type != wire.Classify(rating.Rating).String() || row.Rating != rating.Rating {
				r.Mismatched++
			}
		case d != nil:
			r.DeadLettered++
			r.Reasons[d.Reason]++
		default:
			r.Missing++
			name := id
			if name == "" {
				name = fmt.Sprintf("%s/%d@%d", in.Topic, in.Partition, in.Offset)
			}
			r.MissingSample = sample(r.MissingSample, name)
		}
	}
	for id, ts := range stamps {
		want := len(ts)
		if ts[-1] {
			want = 1 // timestamps unknown: one row per id
		}
		if n := rowsPerID[id]; n > want {
			r.Duplicated += n - want
			r.DuplicatedSample = sample(r.DuplicatedSample, id)
		}
	}
	for _, row := range rows {
		if stamps[row.UniqueID] == nil {
			r.Unexpected++
		}
	}
	for _, d := range dead {
		if !usedAt[origin{d.Topic, d.Partition, d.Offset}] && !usedKey[string(d.Key)] {
			r.Unexpected++
		}
	}
	return r
}
