package verify

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/domination/domination/wire"
)

func rating(p int, off int64, ts int64, id string, r int) Input {
	return Input{Topic: "in", Partition: p, Offset: off, Time: ts, Key: []byte(id), Value: []byte(fmt.Sprintf(`{"rating":%d,"unique_id":%q}`, r, id))}
}

func TestReconcileRatingsAccountsForEveryInput(t *testing.T) {
	in := []Input{
		rating(0, 0, 100, "a", 3),  // landed
		rating(0, 1, 100, "b", 5),  // landed, and stored again with another timestamp
		rating(1, 0, 101, "c", 0),  // dead-lettered (out of range)
		rating(1, 1, 101, "d", 15), // missing
		{Topic: "in", Partition: 1, Offset: 2, Time: 101, Value: []byte{0xff}}, // dead-lettered garbage
		rating(1, 3, 102, "e", 7),   // output refused, dead-lettered by key
		rating(1, 4, 102, "a", 3),   // the same id, another record: one more row
		rating(0, 2, 100, "a", 3),   // re-sent with the same timestamp: collapses
		rating(0, 3, 103, "f", 30),  // landed as the wrong type
		rating(0, 4, 103, "g", 1),   // landed and dead-lettered
		rating(0, 5, 104, "h", 100), // dead-lettered twice (at-least-once DLQ)
	}
	rows := []ShadowRow{
		{"a", 100, "Sha", 3}, {"a", 102, "Sha", 3}, {"b", 100, "Dow", 5}, {"b", 200, "Dow", 5},
		{"f", 103, "Sha", 30}, {"g", 103, "Incompatible", 1}, {"zz", 100, "Sha", 3},
	}
	dead := []DeadLetter{
		{Topic: "in", Partition: 1, Offset: 0, Reason: "out_of_range"},
		{Topic: "in", Partition: 1, Offset: 2, Reason: "malformed_json"},
		{Topic: "shadow", Partition: -1, Offset: -1, Key: []byte("e"), Reason: "output_rejected"},
		{Topic: "in", Partition: 0, Offset: 4, Reason: "out_of_range"},
		{Topic: "in", Partition: 0, Offset: 5, Reason: "out_of_range"},
		{Topic: "in", Partition: 0, Offset: 5, Reason: "out_of_range"},
		{Topic: "in", Partition: 9, Offset: 9, Reason: "malformed_json"},
	}
	r := ReconcileRatings(in, rows, dead)
	want := Report{Produced: 11, Landed: 6, Missing: 1, Duplicated: 2, DeadLettered: 4, Unexpected: 2, Mismatched: 1}
	if r.Produced != want.Produced || r.Landed != want.Landed || r.Missing != want.Missing || r.Duplicated != want.Duplicated ||
		r.DeadLettered != want.DeadLettered || r.Unexpected != want.Unexpected || r.Mismatched != want.Mismatched {
		t.Fatalf("got %s unexpected=%d mismatched=%d, want %s", r, r.Unexpected, r.Mismatched, want)
	}
	if r.Reasons["out_of_range"] != 2 || r.Reasons["malformed_json"] != 1 || r.Reasons["output_rejected"] != 1 {
		t.Fatalf("reasons %v", r.Reasons)
	}
	if strings.Join(r.MissingSample, ",") != "d" {
		t.Fatalf("missing sample %v, want [d]", r.MissingSample)
	}
}

func TestReconcileRatingsMatchesSeededInputsByID(t *testing.T) {
	in := SeededRatings(7, 3, 1, 100)
	var rows []ShadowRow
	for _, x := range in[:2] {
		r := ReconcileRatings([]Input{x}, nil, nil)
		if r.Missing != 1 {
			t.Fatalf("an input with no row is not missing: %s", r)
		}
		var n int64
		fmt.Sscanf(string(x.Value)[len(`{"rating":`):], "%d", &n)
		rows = append(rows, ShadowRow{string(x.Key), 1700000000, wire.Classify(n).String(), n})
	}
	// The product dead-letters the input itself: no key, the id in the value.
	dead := []DeadLetter{{Topic: "in", Partition: 2, Offset: 7, Value: in[2].Value, Reason: "output_rejected"}}
	r := ReconcileRatings(in, rows, dead)
	if !r.OK() || r.Landed != 2 || r.DeadLettered != 1 {
		t.Fatalf("seeded inputs: %s", r)
	}
	if got := r.Line("x"); got != "scenario=x produced=3 landed=2 missing=0 duplicated=0 dead_lettered=1" {
		t.Fatalf("Line = %q", got)
	}
}

func visit(off int64, id string, account int, store string, ts float64) Input {
	s := "null"
	if store != "" {
		s = fmt.Sprintf("%q", store)
	}
	return Input{Topic: "visits", Partition: 0, Offset: off, Time: int64(ts),
		Value: []byte(fmt.Sprintf(`{"id":%q,"account_id":%d,"store_id":%s,"timestamp":%v}`, id, account, s, ts))}
}

func TestReconcileVisitsComparesWindowsWithAnOfflineRecomputation(t *testing.T) {
	north := "north"
	in := []Input{
		visit(0, "v1", 1, "north", 1000.5),
		visit(1, "v2", 1, "north", 1009.9),
		visit(2, "v2", 1, "north", 1009.9), // the same visit again: counts once
		visit(3, "v3", 1, "", 1001),        // null store
		visit(4, "v4", 2, "north", 1010),   // next window: counted short
		visit(5, "v5", 2, "north", 1011),
		{Topic: "visits", Partition: 0, Offset: 6, Value: []byte("nope")}, // dead-lettered by the visits agent
		visit(7, "late", 1, "north", 900),                                 // dead-lettered as late by the windows agent
		visit(8, "v6", 3, "", 1020),                                       // counted long
	}
	rows := []WindowRow{
		{1, &north, 1000, 2}, {1, nil, 1000, 1}, {2, &north, 1010, 1}, {3, nil, 1020, 3}, {4, nil, 1020, 1},
	}
	dead := []DeadLetter{
		{Topic: "visits", Partition: 0, Offset: 6, Reason: "malformed_json", Agent: "visits"},
		{Topic: "repartition", Partition: 3, Offset: 0, Reason: "late", Agent: "windows", Value: []byte(`{"id":"late","account_id":1,"store_id":"north","timestamp":900}`)},
	}
	r := ReconcileVisits(in, rows, dead, 10*time.Second)
	if r.Produced != 9 || r.DeadLettered != 2 || r.Missing != 1 || r.Duplicated != 2 || r.Landed != 6 || r.Unexpected != 1 {
		t.Fatalf("got %s unexpected=%d", r, r.Unexpected)
	}
	if r.Reasons["late"] != 1 || r.Reasons["malformed_json"] != 1 {
		t.Fatalf("reasons %v", r.Reasons)
	}
}

func TestReconcileRatingsCountsAReplayedDeadLetterOnceAsLanded(t *testing.T) {
	rating := []byte(`{"rating":101,"unique_id":"r1"}`)
	orig := Input{Topic: "dominate", Partition: 0, Offset: 7, Time: 1700000000, Key: []byte("r1"), Value: rating}
	replay := Input{Topic: "dominate", Partition: 0, Offset: 9, Time: 1700000000, Key: []byte("r1"), Value: rating, Replayed: true}
	dead := []DeadLetter{{Topic: "dominate", Partition: 0, Offset: 7, Key: []byte("r1"), Value: rating, Reason: "out_of_range"}}
	rows := []ShadowRow{{UniqueID: "r1", EmitTimestamp: 1700000000, Type: "Incompatible", Rating: 101}}
	r := ReconcileRatings([]Input{orig, replay}, rows, dead)
	if r.Produced != 1 || r.Landed != 1 || r.Replayed != 1 || r.Duplicated != 0 || r.Missing != 0 || r.Unexpected != 0 {
		t.Errorf("replayed once: %s (replayed=%d), want produced=1 landed=1 replayed=1 and nothing else", r, r.Replayed)
	}
	// Without the replay, the same stored row beside a dead letter is a
	// duplicate: the pipeline both stored and refused one input.
	r = ReconcileRatings([]Input{orig}, rows, dead)
	if r.Duplicated != 1 {
		t.Errorf("stored and dead-lettered without a replay: %s, want duplicated=1", r)
	}
}
