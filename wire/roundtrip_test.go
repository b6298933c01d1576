package wire

import (
	"bytes"
	"errors"
	"math"
	"reflect"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/domination/domination/internal/testenv"
)

func TestDecodeActiveVisitorsReadsTheTopicRecord(t *testing.T) {
	tests := []struct {
		name    string
		in      string
		want    ActiveVisitors
		wantErr string
	}{
		{"store", `{"account_id":1,"store_id":"uk","window":[1700000000,1700000010],"count":3}`,
			ActiveVisitors{AccountID: 1, StoreID: storePtr("uk"), Start: 1700000000, End: 1700000010, Count: 3}, ""},
		{"null store", `{"account_id":1,"store_id":null,"window":[0,10],"count":0}`,
			ActiveVisitors{AccountID: 1, Start: 0, End: 10}, ""},
		{"missing store is null", `{"account_id":1,"window":[0,10],"count":1}`,
			ActiveVisitors{AccountID: 1, Start: 0, End: 10, Count: 1}, ""},
		{"integral float window", `{"account_id":1,"store_id":"us","window":[1700000000.0,1.70000001e9],"count":2}`,
			ActiveVisitors{AccountID: 1, StoreID: storePtr("us"), Start: 1700000000, End: 1700000010, Count: 2}, ""},
		{"fractional window", `{"account_id":1,"window":[0.5,10],"count":2}`, ActiveVisitors{}, "whole number"},
		{"no account", `{"window":[0,10],"count":2}`, ActiveVisitors{}, "no account_id"},
		{"no count", `{"account_id":1,"window":[0,10]}`, ActiveVisitors{}, "no count"},
		{"negative count", `{"account_id":1,"window":[0,10],"count":-1}`, ActiveVisitors{}, "decode count"},
		{"one bound", `{"account_id":1,"window":[0],"count":1}`, ActiveVisitors{}, "1 bounds"},
		{"empty window", `{"account_id":1,"window":[10,10],"count":1}`, ActiveVisitors{}, "empty"},
		{"string account", `{"account_id":"1","window":[0,10],"count":1}`, ActiveVisitors{}, "decode count"},
		{"not json", `hello`, ActiveVisitors{}, "decode count"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := DecodeActiveVisitors([]byte(tt.in))
			testenv.CheckErr(t, "DecodeActiveVisitors", err, tt.wantErr)
			if tt.wantErr != "" {
				return
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("got %+v, want %+v", got, tt.want)
			}
		})
	}
}

func TestAppendRatingRoundTripsThroughDecodeRating(t *testing.T) {
	for _, r := range []Rating{
		{Rating: 42, UniqueID: []byte(exampleUUID)},
		{Rating: 1, UniqueID: []byte(`q"b\s/é😀` + "\u2028")},
		{Rating: 100, UniqueID: bytes.Repeat([]byte("x"), DefaultMaxIDLen)},
	} {
		enc := AppendRating(nil, r)
		got, err := DecodeRating(enc, RatingLimits{})
		if err != nil || got.Rating != r.Rating || !bytes.Equal(got.UniqueID, r.UniqueID) {
			t.Errorf("DecodeRating(%s) = %+v, %v; want %+v", enc, got, err, r)
		}
	}
	if got, want := string(AppendRating(nil, Rating{Rating: 7, UniqueID: []byte(exampleUUID)})), `{"rating":7,"unique_id":"`+exampleUUID+`"}`; got != want {
		t.Errorf("AppendRating = %s, want %s", got, want)
	}
}

func TestAppendRatingDoesNotAllocate(t *testing.T) {
	r := Rating{Rating: 42, UniqueID: []byte(exampleUUID)}
	dst := make([]byte, 0, 256)
	if allocs := testing.AllocsPerRun(100, func() { dst = AppendRating(dst[:0], r) }); allocs != 0 {
		t.Errorf("AppendRating made %v allocations, want 0", allocs)
	}
}

func TestDecodeShadowReadsWhatAppendShadowWrites(t *testing.T) {
	for _, s := range []Shadow{
		{Type: ShaDow, UniqueID: []byte(exampleUUID), EmitTimestamp: 1700000000, Rating: 15},
		{Type: Incompatible, UniqueID: []byte(`a"b\c` + "\x01é"), EmitTimestamp: MinUnix, Rating: -7},
		{Type: Sha, UniqueID: []byte("x"), EmitTimestamp: math.MaxUint32, Rating: math.MaxInt32 - 1},
	} {
		enc := AppendShadow(nil, s.Type, s.UniqueID, s.EmitTimestamp, s.Rating)
		got, err := DecodeShadow(enc)
		if err != nil || !reflect.DeepEqual(got, s) {
			t.Errorf("DecodeShadow(%s) = %+v, %v; want %+v", enc, got, err, s)
		}
	}
	if _, err := DecodeShadow([]byte(`{"type":"Dow","unique_id":"x","emit_timestamp":1700000000,"rating":3}`)); !errors.Is(err, ErrContract) {
		t.Errorf("DecodeShadow of a mistyped event = %v, want an ErrContract", err)
	}
}

func TestAppendActiveVisitorsRoundTripsAndKeepsTheContract(t *testing.T) {
	for _, c := range []ActiveVisitors{
		{AccountID: 1, StoreID: storePtr("uk"), Start: 1700000000, End: 1700000010, Count: 3},
		{AccountID: -4, Start: 1700000000, End: 1700000010, Count: 1},
		{AccountID: math.MaxInt64, StoreID: storePtr(`a"b\c<` + "\u2028"), Start: 0, End: math.MaxUint32, Count: 1 << 40},
		{AccountID: 2, StoreID: storePtr(""), Start: 10, End: 20, Count: 1},
	} {
		enc := AppendActiveVisitors(nil, c)
		got, err := DecodeActiveVisitors(enc)
		if err != nil || !reflect.DeepEqual(got, c) {
			t.Errorf("DecodeActiveVisitors(%s) = %+v, %v; want %+v", enc, got, err, c)
		}
		if err := CheckActiveVisitors(enc); err != nil {
			t.Errorf("CheckActiveVisitors(%s) = %v", enc, err)
		}
	}
	want := `{"account_id":1,"store_id":"uk","window":[1700000000,1700000010],"count":3}`
	if got := AppendActiveVisitors(nil, ActiveVisitors{AccountID: 1, StoreID: storePtr("uk"), Start: 1700000000, End: 1700000010, Count: 3}); string(got) != want {
		t.Errorf("AppendActiveVisitors = %s, want %s", got, want)
	}
}

func TestCompareWindowKeysOrdersByStartAccountThenStoreWithNullLast(t *testing.T) {
	keys := []WindowKey{
		{AccountID: 1, Store: "a", HasStore: true, Start: 0},
		{AccountID: 1, Store: "b", HasStore: true, Start: 0},
		{AccountID: 1, Start: 0},
		{AccountID: 2, Store: "", HasStore: true, Start: 0},
		{AccountID: 1, Store: "a", HasStore: true, Start: 10},
	}
	for i, a := range keys {
		for j, b := range keys {
			if got, want := CompareWindowKeys(a, b), cmpIndex(i, j); got != want {
				t.Errorf("CompareWindowKeys(%+v, %+v) = %d, want %d", a, b, got, want)
			}
		}
	}
}

func cmpIndex(i, j int) int {
	switch {
	case i < j:
		return -1
	case i > j:
		return 1
	}
	return 0
}

func TestRepartitionedRecordsRoundTrip(t *testing.T) {
	in := []byte(faustVisit)
	r, err := ScanVisit(in, visitRecorded, VisitLimits{})
	if err != nil {
		t.Fatal(err)
	}
	// Both forms: the compact one the visits agent writes, and the JSON one
	// of a worker run with it (or of an earlier version).
	for name, enc := range map[string][]byte{"compact": AppendRepartitioned(nil, r), "JSON": AppendRepartitionedJSON(nil, r)} {
		again, err := DecodeRepartitioned(enc, visitRecorded, VisitLimits{})
		if err != nil || !reflect.DeepEqual(again.Visit(), r.Visit()) || string(AppendRepartitioned(nil, again)) != string(AppendRepartitioned(nil, r)) {
			t.Errorf("%s re-encodes in the %s form as %q, which decodes to %+v, %v", in, name, enc, again.Visit(), err)
		}
	}
	if _, err := ScanVisit(AppendRepartitioned(nil, r), visitRecorded, VisitLimits{}); err == nil || err.Reason != ReasonMalformedJSON {
		t.Errorf("the visits topic accepted the compact form: %v", err)
	}
	if got, want := string(AppendGroupKey(nil, r.AccountID, r.StoreID)), `352:"uk"`; got != want {
		t.Errorf("AppendGroupKey = %s, want %s", got, want)
	}
	if got, want := string(AppendGroupKey(nil, 352, nil)), `352:null`; got != want {
		t.Errorf("AppendGroupKey without a store = %s, want %s", got, want)
	}
}

// FuzzDecodeShadow: DecodeShadow never panics, agrees with CheckShadow, and
// what it accepts AppendShadow writes back as a record that decodes the
// same.
func FuzzDecodeShadow(f *testing.F) {
	f.Add(AppendShadow(nil, Sha, []byte(exampleUUID), 1700000000, 3))
	f.Add([]byte(`{"rating":-3,"emit_timestamp":946684800,"unique_id":"x\u00e9","type":"Sha"}`))
	f.Add([]byte(`{"type":"Sha","unique_id":"x","emit_timestamp":1700000000,"rating":3,"rating":3}`))
	f.Add([]byte(`{"type":"ShaDow","unique_id":"\ud800","emit_timestamp":1700000000,"rating":0}`))
	f.Fuzz(func(t *testing.T, in []byte) {
		s, err := DecodeShadow(in)
		if (err == nil) != (CheckShadow(in) == nil) {
			t.Fatalf("DecodeShadow(%q) = %v, CheckShadow disagrees", in, err)
		}
		if err != nil {
			if !errors.Is(err, ErrContract) {
				t.Fatalf("DecodeShadow(%q) = %v, want an ErrContract", in, err)
			}
			return
		}
		enc := AppendShadow(nil, s.Type, s.UniqueID, s.EmitTimestamp, s.Rating)
		again, err := DecodeShadow(enc)
		if err != nil || again.Type != s.Type || again.EmitTimestamp != s.EmitTimestamp || again.Rating != s.Rating ||
			string(again.UniqueID) != encodingJSONRoundTrip(t, s.UniqueID) {
			t.Fatalf("DecodeShadow(%q) = %+v, re-encoded %s reads back as %+v, %v", in, s, enc, again, err)
		}
	})
}

// FuzzDecodeActiveVisitors: DecodeActiveVisitors never panics, and what it
// accepts AppendActiveVisitors writes back as a record that decodes the
// same and, when the count and window fit the stores, keeps the contract.
func FuzzDecodeActiveVisitors(f *testing.F) {
	f.Add(AppendActiveVisitors(nil, ActiveVisitors{AccountID: 1, StoreID: storePtr("uk"), Start: 1700000000, End: 1700000010, Count: 3}))
	f.Add([]byte(`{"account_id":1,"store_id":"us","window":[1700000000.0,1.70000001e9],"count":2}`))
	f.Add([]byte(`{"account_id":1,"window":[0.5,10],"count":2}`))
	f.Add([]byte(`{"Account_ID":1,"window":[0,10],"count":2,"count":3} trailing`))
	f.Fuzz(func(t *testing.T, in []byte) {
		c, err := DecodeActiveVisitors(in)
		if err != nil {
			return
		}
		enc := AppendActiveVisitors(nil, c)
		again, err := DecodeActiveVisitors(enc)
		if err != nil || again.AccountID != c.AccountID || again.Start != c.Start || again.End != c.End || again.Count != c.Count ||
			(again.StoreID == nil) != (c.StoreID == nil) {
			t.Fatalf("DecodeActiveVisitors(%q) = %+v, re-encoded %s reads back as %+v, %v", in, c, enc, again, err)
		}
		if c.StoreID != nil && *again.StoreID != encodingJSONRoundTrip(t, []byte(*c.StoreID)) {
			t.Fatalf("store %q re-encoded reads back as %q", *c.StoreID, *again.StoreID)
		}
		if c.Start >= 0 && c.End <= math.MaxUint32 && c.Count >= 1 && c.Count <= math.MaxInt64 {
			if err := CheckActiveVisitors(enc); err != nil {
				t.Fatalf("CheckActiveVisitors(%s) = %v", enc, err)
			}
		}
	})
}

func TestDecodeRepartitionedRefusesBrokenCompactRecords(t *testing.T) {
	good := AppendRepartitioned(nil, Repartitioned{ID: []byte("a"), AccountID: 7, StoreID: []byte("uk"), Timestamp: 1_700_000_000.5})
	nan := AppendRepartitioned(nil, Repartitioned{ID: []byte("a"), AccountID: 7, Timestamp: math.NaN()})
	old := AppendRepartitioned(nil, Repartitioned{ID: []byte("a"), AccountID: 7, Timestamp: 900_000_000})
	long := AppendRepartitioned(nil, Repartitioned{ID: bytes.Repeat([]byte("x"), DefaultMaxIDLen+1), AccountID: 7, Timestamp: 1_700_000_000})
	notText := AppendRepartitioned(nil, Repartitioned{ID: []byte("a"), AccountID: 7, StoreID: []byte{0xff}, Timestamp: 1_700_000_000})
	withFlag := func(b []byte, flags byte) []byte { c := bytes.Clone(b); c[1] = flags; return c }
	for _, tc := range []struct {
		name string
		in   []byte
		want Reason
	}{
		{"only the mark", []byte{compactMark}, ReasonMalformedJSON},
		{"cut in the fixed part", good[:10], ReasonMalformedJSON},
		{"cut in the store", good[:len(good)-1], ReasonMalformedJSON},
		{"trailing byte", append(bytes.Clone(good), 0), ReasonMalformedJSON},
		{"unknown flag", withFlag(good, 0x80), ReasonMalformedJSON},
		{"store flag without a store", withFlag(AppendRepartitioned(nil, Repartitioned{ID: []byte("a"), Timestamp: 1_700_000_000}), compactHasStore), ReasonMalformedJSON},
		{"NaN timestamp", nan, ReasonWrongType},
		{"timestamp before 2000", old, ReasonBadTimestamp},
		{"id too long", long, ReasonBadID},
		{"store not UTF-8", notText, ReasonBadStoreID},
	} {
		_, err := DecodeRepartitioned(tc.in, time.Time{}, VisitLimits{})
		if err == nil || err.Reason != tc.want {
			t.Errorf("%s (% x): %v, want %s", tc.name, tc.in, err, tc.want)
		}
	}
	if v, err := DecodeRepartitioned(good, time.Time{}, VisitLimits{}); err != nil || string(v.ID) != "a" || v.AccountID != 7 || string(v.StoreID) != "uk" || v.Timestamp != 1_700_000_000.5 {
		t.Errorf("the good record reads as %+v, %v", v, err)
	}
}

// FuzzDecodeRepartitioned checks the repartition topic's decoder on any
// bytes: it never panics, and what it accepts is within the limits and
// reads back the same from its compact form.
func FuzzDecodeRepartitioned(f *testing.F) {
	f.Add([]byte(faustVisit))
	f.Add(AppendRepartitioned(nil, Repartitioned{ID: []byte(exampleUUID), AccountID: 352, StoreID: []byte("uk"), Timestamp: 1_700_000_000.123456}))
	f.Add(AppendRepartitioned(nil, Repartitioned{ID: []byte("a"), AccountID: -1, Timestamp: 1_700_000_000}))
	lim := VisitLimits{}.WithDefaults()
	f.Fuzz(func(t *testing.T, in []byte) {
		v, err := DecodeRepartitioned(in, time.Time{}, VisitLimits{})
		if err != nil {
			return
		}
		if len(v.ID) == 0 || len(v.ID) > lim.MaxIDLen || (v.StoreID != nil && (len(v.StoreID) == 0 || len(v.StoreID) > lim.MaxIDLen)) ||
			math.IsNaN(v.Timestamp) || v.Timestamp < MinUnix || !utf8.Valid(v.ID) || !utf8.Valid(v.StoreID) {
			t.Fatalf("DecodeRepartitioned(%q) accepted %+v outside the limits", in, v.Visit())
		}
		enc := AppendRepartitioned(nil, v)
		again, err := DecodeRepartitioned(enc, time.Time{}, VisitLimits{})
		if err != nil || !reflect.DeepEqual(again.Visit(), v.Visit()) {
			t.Fatalf("DecodeRepartitioned(%q) = %+v, but its compact form reads back as %+v, %v", in, v.Visit(), again.Visit(), err)
		}
	})
}
