package feed

import (
	"reflect"
	"testing"
)

func TestRingReplacesReEmittedWindowsInsteadOfDuplicating(t *testing.T) {
	uk := str("uk")
	r := newRing(3)
	steps := []struct {
		c    Count
		want putResult
	}{
		{Count{AccountID: 1, StoreID: uk, Start: 0, End: 10, Count: 2}, putAdded},
		{Count{AccountID: 1, StoreID: uk, Start: 0, End: 10, Count: 2}, putDuplicate},
		{Count{AccountID: 1, StoreID: str("uk"), Start: 0, End: 10, Count: 2}, putDuplicate}, // equal store, other pointer
		{Count{AccountID: 1, StoreID: nil, Start: 0, End: 10, Count: 2}, putAdded},           // null store is its own key
		{Count{AccountID: 1, StoreID: str(""), Start: 0, End: 10, Count: 2}, putAdded},       // so is the empty store
		{Count{AccountID: 1, StoreID: uk, Start: 0, End: 10, Count: 5}, putUpdated},
		{Count{AccountID: 1, StoreID: uk, Start: 0, End: 10, Count: 5}, putDuplicate},
	}
	for i, s := range steps {
		if got := r.put(s.c); got != s.want {
			t.Fatalf("step %d: put(%+v) = %d, want %d", i, s.c, got, s.want)
		}
	}
	if r.len() != 3 {
		t.Fatalf("len = %d, want 3", r.len())
	}
	got := r.recent(filter{}, 10)
	want := []Count{
		{AccountID: 1, StoreID: str(""), Start: 0, End: 10, Count: 2},
		{AccountID: 1, StoreID: uk, Start: 0, End: 10, Count: 5},
		{AccountID: 1, StoreID: nil, Start: 0, End: 10, Count: 2},
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("recent = %v, want %v", got, want)
	}
}

func TestRingEvictsTheOldestInsertedKey(t *testing.T) {
	r := newRing(3)
	for i := range int64(5) {
		r.put(Count{AccountID: 1 + i%2, Start: i * 10, End: i*10 + 10, Count: 1})
	}
	// An update keeps its place: window 20 stays the oldest.
	r.put(Count{AccountID: 1, Start: 20, End: 30, Count: 9})
	r.put(Count{AccountID: 1, Start: 50, End: 60, Count: 1})

	tests := []struct {
		name   string
		f      filter
		n      int
		starts []int64
	}{
		{"all", filter{}, 10, []int64{30, 40, 50}},
		{"last two", filter{}, 2, []int64{40, 50}},
		{"account 1", filter{account: i64(1)}, 10, []int64{40, 50}},
		{"account 2", filter{account: i64(2)}, 10, []int64{30}},
		{"none", filter{}, 0, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var starts []int64
			for _, c := range r.recent(tt.f, tt.n) {
				starts = append(starts, c.Start)
			}
			if !reflect.DeepEqual(starts, tt.starts) {
				t.Errorf("starts = %v, want %v", starts, tt.starts)
			}
		})
	}
}
