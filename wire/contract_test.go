package wire

import (
	"errors"
	"strings"
	"testing"
)

func TestCheckShadow(t *testing.T) {
	good := string(AppendShadow(nil, Classify(15), []byte("id-1"), 1700000000, 15))
	for _, tc := range []struct {
		value string
		want  string // "" for valid
	}{
		{good, ""},
		{`{"rating":3,"unique_id":"x","emit_timestamp":1700000000,"type":"Sha"}`, ""},
		{` {"type":"Dow","unique_id":"x","emit_timestamp":1700000000,"rating":-5} ` + "\n", ""},
		{`not json`, "not a JSON object"},
		{``, "not a JSON object"},
		{"\xff\xfe", "not UTF-8"},
		{`{"type":"Bogus","unique_id":"x","emit_timestamp":1700000000,"rating":3}`, `type "Bogus" is not the type of rating 3`},
		{`{"type":"Dow","unique_id":"x","emit_timestamp":1700000000,"rating":3}`, `type "Dow" is not the type of rating 3`},
		{`{"type":"Sha","unique_id":"x","emit_timestamp":1700000000}`, `key "rating" is missing`},
		{`{"type":"Sha","unique_id":"x","emit_timestamp":1700000000,"rating":"3"}`, "rating: not a number"},
		{`{"type":"Sha","unique_id":7,"emit_timestamp":1700000000,"rating":3}`, "unique_id: not a string"},
		{`{"type":"Sha","unique_id":"x","emit_timestamp":1700000000,"rating":3.0}`, "not an integer"},
		{`{"type":"Sha","unique_id":"x","emit_timestamp":1700000000,"rating":3e0}`, "not an integer"},
		{`{"type":"Sha","unique_id":"x","emit_timestamp":1700000000,"rating":3000000000}`, "outside"},
		{`{"type":"Sha","unique_id":"","emit_timestamp":1700000000,"rating":3}`, "unique_id is empty"},
		{`{"type":"Sha","unique_id":"` + strings.Repeat("a", 1025) + `","emit_timestamp":1700000000,"rating":3}`, "over 1024"},
		{`{"type":"Sha","unique_id":"x","emit_timestamp":100,"rating":3}`, "before 2000"},
		{`{"type":"Sha","unique_id":"x","emit_timestamp":1700000000,"rating":3,"extra":1}`, `unknown key "extra"`},
		{`{"TYPE":"Sha","unique_id":"x","emit_timestamp":1700000000,"rating":3}`, `unknown key "TYPE"`},
		{`{"type":"Sha","type":"Sha","unique_id":"x","emit_timestamp":1700000000,"rating":3}`, `"type" appears twice`},
		{good + good, "more than one JSON value"},
		{`{"type":"Sha","unique_id":"x","emit_timestamp":1700000000,"rating":3`, "not valid JSON"},
		{`[1,2]`, "not a JSON object"},
	} {
		err := CheckShadow([]byte(tc.value))
		switch {
		case tc.want == "" && err != nil:
			t.Errorf("CheckShadow(%.60q) = %v, want nil", tc.value, err)
		case tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want) || !errors.Is(err, ErrContract)):
			t.Errorf("CheckShadow(%.60q) = %v, want an ErrContract containing %q", tc.value, err, tc.want)
		}
	}
}

func TestCheckActiveVisitors(t *testing.T) {
	for _, tc := range []struct {
		value string
		want  string
	}{
		{`{"account_id":1,"store_id":"uk","window":[1700000000,1700000010],"count":3}`, ""},
		{`{"account_id":-4,"store_id":null,"window":[1700000000,1700000010],"count":1}`, ""},
		{`{"account_id":1,"store_id":"uk","window":[1700000010,1700000000],"count":3}`, "does not end after"},
		{`{"account_id":1,"store_id":"uk","window":[1700000000],"count":3}`, "want 2"},
		{`{"account_id":1,"store_id":"uk","window":[1700000000,1700000010],"count":0}`, "below 1"},
		{`{"account_id":1,"store_id":"uk","window":[1700000000,1700000010]}`, `key "count" is missing`},
		{`{"account_id":"1","store_id":"uk","window":[1700000000,1700000010],"count":3}`, "not a number"},
		{`{"account_id":1,"store_id":5,"window":[1700000000,1700000010],"count":3}`, "neither a string nor null"},
		{`{"account_id":1,"store_id":"uk","window":[1700000000,5000000000],"count":3}`, "outside"},
		{"\x00\x01binary", "not a JSON object"},
	} {
		err := CheckActiveVisitors([]byte(tc.value))
		switch {
		case tc.want == "" && err != nil:
			t.Errorf("CheckActiveVisitors(%.60q) = %v, want nil", tc.value, err)
		case tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)):
			t.Errorf("CheckActiveVisitors(%.60q) = %v, want an error containing %q", tc.value, err, tc.want)
		}
	}
}

// FuzzCheckShadowFastPathKeepsOnlyWhatTheFullCheckKeeps: the scanner's fast
// path accepts a record only when the encoding/json check does.
func FuzzCheckShadowFastPathKeepsOnlyWhatTheFullCheckKeeps(f *testing.F) {
	f.Add([]byte(AppendShadow(nil, Classify(15), []byte("id-1"), 1700000000, 15)))
	f.Add([]byte(` {"rating":-3,"emit_timestamp":946684800,"unique_id":"x\u00e9","type":"Sha"} `))
	f.Add([]byte(`{"type":"Sha","unique_id":"x","emit_timestamp":1700000000,"rating":3,"rating":3}`))
	f.Add([]byte(`{"type":"Sha","unique_id":"x","emit_timestamp":4294967296,"rating":3}`))
	f.Add([]byte(`{"typ\u0065":"Dow","unique_id":"\u00ff","emit_timestamp":1700000000,"rating":2147483645}`))
	f.Add([]byte(`{"type":"Sha","unique_id":"x","emit_timestamp":01700000000,"rating":3}`))
	f.Add([]byte(`{"type":"Dow","unique_id":"x","emit_timestamp":1700000000,"rating":-0}`))
	f.Fuzz(func(t *testing.T, in []byte) {
		for name, fast := range map[string]func([]byte) (Shadow, bool){"scanner": plainShadow, "layout": laidOutShadow} {
			if got, ok := fast(in); ok {
				want, err := checkShadowJSON(in)
				if err != nil {
					t.Fatalf("the %s fast path keeps %q, the full check refuses it: %v", name, in, err)
				}
				if got.Type != want.Type || string(got.UniqueID) != string(want.UniqueID) || got.EmitTimestamp != want.EmitTimestamp || got.Rating != want.Rating {
					t.Fatalf("the %s fast path reads %q as %+v, the full check as %+v", name, in, got, want)
				}
			}
		}
	})
}

// FuzzCheckShadowAcceptsWhatAppendShadowWrites: the checker and the writer
// of the shadow topic agree on every rating the agent can emit.
func FuzzCheckShadowAcceptsWhatAppendShadowWrites(f *testing.F) {
	f.Add([]byte("id"), int64(1700000000), int64(42))
	f.Add([]byte(`q"\`+"\u00e9"), int64(946684800), int64(-15))
	f.Fuzz(func(t *testing.T, id []byte, ts, rating int64) {
		if len(id) == 0 || len(id) > 128 || ts < MinUnix || ts > 1<<32-1 || rating < -1<<31 || rating > 1<<31-1 || checkID(id, 128, true) != nil {
			return
		}
		out := AppendShadow(nil, Classify(rating), id, ts, rating)
		if err := CheckShadow(out); err != nil {
			t.Fatalf("CheckShadow(AppendShadow(%q, %d, %d)) = %v; record %s", id, ts, rating, err, out)
		}
	})
}

func TestCheckShadowKeepsWhatTheAgentWritesWithoutAllocating(t *testing.T) {
	for _, rating := range []int64{1, 3, 5, 15, 100} {
		rec := AppendShadow(nil, Classify(rating), []byte(exampleUUID), 1700000000, rating)
		if _, ok := plainShadow(rec); !ok {
			t.Errorf("the fast path leaves %s to the full check", rec)
		}
		if _, ok := laidOutShadow(rec); !ok {
			t.Errorf("the layout fast path leaves %s to the slower ones", rec)
		}
		if allocs := testing.AllocsPerRun(50, func() {
			if err := CheckShadow(rec); err != nil {
				t.Fatal(err)
			}
		}); allocs != 0 {
			t.Errorf("CheckShadow(%s) made %v allocations, want 0", rec, allocs)
		}
	}
}
