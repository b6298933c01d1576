package wire

import (
	"encoding/json"
	"fmt"
	"math"
	"math/rand/v2"
	"reflect"
	"strconv"
	"strings"
	"testing"
	"time"
)

// visitRecorded is the Kafka timestamp the visit tests decode against.
var visitRecorded = time.Unix(1_700_000_000, 0)

// faustVisit is a visit as the original Faust producer sent it: Python's
// json.dumps spacing, the record's namespace under "__faust", a float
// timestamp.
const faustVisit = `{"id": "` + exampleUUID + `", "account_id": 352, "store_id": "uk", "timestamp": 1700000000.123456, "__faust": {"ns": "visit_aggregator.models.Visit"}}`

func storePtr(s string) *string { return &s }

func TestDecodeVisitAcceptsTheFaustProducersShapes(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want Visit
	}{
		{faustVisit, Visit{ID: exampleUUID, AccountID: 352, StoreID: storePtr("uk"), Timestamp: 1700000000.123456}},
		{`{"id": "a", "account_id": 352, "store_id": null, "timestamp": 1700000000.5, "__faust": {"ns": "visit_aggregator.models.Visit"}}`,
			Visit{ID: "a", AccountID: 352, Timestamp: 1700000000.5}},
		{`{"__faust": {"ns": "visit_aggregator.models.Visit"}, "timestamp": 1700000000, "store_id": "us", "account_id": -1, "id": "a"}`,
			Visit{ID: "a", AccountID: -1, StoreID: storePtr("us"), Timestamp: 1700000000}},
		// Python's default ensure_ascii escapes every non-ASCII character.
		{`{"id": "caf\u00e9 \ud83d\ude00", "account_id": 1, "store_id": "m\u00fcnchen", "timestamp": 1.7e9, "__faust": {"ns": "x"}}`,
			Visit{ID: "café 😀", AccountID: 1, StoreID: storePtr("münchen"), Timestamp: 1.7e9}},
		{`{"id":"a","account_id":1,"timestamp":1700000000}`, Visit{ID: "a", AccountID: 1, Timestamp: 1700000000}},
		{" \n{\"\\u0069d\":\"a\",\"account_id\":0,\"timestamp\":1700000000E0,\"extra\":[1,{\"id\":2}]}\t", Visit{ID: "a", Timestamp: 1700000000}},
	} {
		got, err := DecodeVisit([]byte(tc.in), visitRecorded, VisitLimits{})
		switch {
		case err != nil:
			t.Errorf("DecodeVisit(%s) = %v, want it accepted", tc.in, err)
		case !sameVisit(got, tc.want):
			t.Errorf("DecodeVisit(%s) = %s, want %s", tc.in, showVisit(got), showVisit(tc.want))
		}
	}
}

func TestDecodeVisitRejectsDuplicateAndMisspeltKeys(t *testing.T) {
	const base = `"account_id":1,"store_id":"uk","timestamp":1700000000`
	for _, tc := range []struct {
		in     string
		reason Reason
		detail string
	}{
		{`{"id":"a","id":"b",` + base + `}`, ReasonMalformedJSON, `duplicate key "id"`},
		{`{"id":"a",` + base + `,"account_id":2}`, ReasonMalformedJSON, `duplicate key "account_id"`},
		{`{"id":"a",` + base + `,"store_id":null}`, ReasonMalformedJSON, `duplicate key "store_id"`},
		{`{"id":"a",` + base + `,"timestamp":1700000001}`, ReasonMalformedJSON, `duplicate key "timestamp"`},
		{`{"id":"a",` + base + `,"tim\u0065stamp":1700000001}`, ReasonMalformedJSON, `duplicate key "timestamp"`},
		{`{"id":"a","id":7,` + base + `}`, ReasonMalformedJSON, `duplicate key "id"`},
		{`{"ID":"a",` + base + `}`, ReasonMissingField, "id is missing"},
		{`{"id":"a","Account_ID":1,"store_id":"uk","timestamp":1700000000}`, ReasonMissingField, "account_id is missing"},
		{`{"id":"a","account_id":1,"store_id":"uk","Timestamp":1700000000}`, ReasonMissingField, "timestamp is missing"},
		// A misspelt store_id is an unknown key, and the visit has no store.
	} {
		_, err := DecodeVisit([]byte(tc.in), visitRecorded, VisitLimits{})
		if err == nil || err.Reason != tc.reason || !strings.Contains(err.Detail, tc.detail) {
			t.Errorf("DecodeVisit(%s) = %v, want %s containing %q", tc.in, err, tc.reason, tc.detail)
		}
	}
	v, err := DecodeVisit([]byte(`{"id":"a","account_id":1,"Store_Id":"uk","timestamp":1700000000}`), visitRecorded, VisitLimits{})
	if err != nil || v.StoreID != nil {
		t.Errorf("a misspelt store_id gave %s, %v; want a visit without a store", showVisit(v), err)
	}
}

func TestDecodeVisitRejectsBadValuesWithMeaningfulReasons(t *testing.T) {
	long := strings.Repeat("x", 129)
	for _, tc := range []struct {
		in     string
		reason Reason
		detail string
	}{
		{``, ReasonMalformedJSON, "want an object"},
		{`[{"id":"a"}]`, ReasonMalformedJSON, "want an object"},
		{`{"id":"a","account_id":1,"timestamp":1700000000}{}`, ReasonMalformedJSON, "after the object"},
		{"{\"id\":\"a\xff\",\"account_id\":1,\"timestamp\":1700000000}", ReasonMalformedJSON, "invalid UTF-8"},
		{`{"id":"a","account_id":1,"timestamp":NaN}`, ReasonMalformedJSON, "want a value"},
		{`{"id":"a","account_id":01,"timestamp":1700000000}`, ReasonMalformedJSON, "unexpected"},
		{`{"id":"a","account_id":1,"timestamp":1700000000,"x":` + strings.Repeat("[", 32) + strings.Repeat("]", 32) + `}`, ReasonMalformedJSON, "nesting deeper"},
		{`{"id":null,"account_id":1,"timestamp":1700000000}`, ReasonMissingField, "id is missing"},
		{`{"id":["a"],"account_id":1,"timestamp":1700000000}`, ReasonWrongType, "id is an array, want a string"},
		{`{"id":"","account_id":1,"timestamp":1700000000}`, ReasonBadID, "id is empty"},
		{`{"id":"` + long + `","account_id":1,"timestamp":1700000000}`, ReasonBadID, "id is over 128 bytes"},
		{`{"id":"` + strings.Repeat(`\u0078`, 129) + `","account_id":1,"timestamp":1700000000}`, ReasonBadID, "id is over 128 bytes"},
		{`{"id":"\ud800","account_id":1,"timestamp":1700000000}`, ReasonBadID, "unpaired UTF-16 surrogate"},
		{`{"id":"a","account_id":null,"timestamp":1700000000}`, ReasonMissingField, "account_id is missing"},
		{`{"id":"a","account_id":true,"timestamp":1700000000}`, ReasonWrongType, "account_id is a boolean"},
		{`{"id":"a","account_id":1e3,"timestamp":1700000000}`, ReasonWrongType, "not an integer: 1e3"},
		{`{"id":"a","account_id":9223372036854775808,"timestamp":1700000000}`, ReasonWrongType, "not an integer"},
		{`{"id":"a","account_id":1,"store_id":["uk"],"timestamp":1700000000}`, ReasonWrongType, "store_id is an array, want a string or null"},
		{`{"id":"a","account_id":1,"store_id":"","timestamp":1700000000}`, ReasonBadStoreID, "store_id is empty"},
		{`{"id":"a","account_id":1,"store_id":"` + long + `","timestamp":1700000000}`, ReasonBadStoreID, "store_id is over 128 bytes"},
		{`{"id":"a","account_id":1,"store_id":"\udc00x","timestamp":1700000000}`, ReasonBadStoreID, "unpaired"},
		{`{"id":"a","account_id":1,"timestamp":null}`, ReasonMissingField, "timestamp is missing"},
		{`{"id":"a","account_id":1,"timestamp":"1700000000"}`, ReasonWrongType, "timestamp is a string"},
		{`{"id":"a","account_id":1,"timestamp":1e400}`, ReasonWrongType, "not a number of seconds: 1e400"},
		{`{"id":"a","account_id":1,"timestamp":946684799.999}`, ReasonBadTimestamp, "before 2000"},
		{`{"id":"a","account_id":1,"timestamp":1700003601}`, ReasonBadTimestamp, "after the message was recorded"},
		{`{"id":"a","account_id":1,"timestamp":1699395199}`, ReasonBadTimestamp, "before the message was recorded"},
	} {
		_, err := DecodeVisit([]byte(tc.in), visitRecorded, VisitLimits{})
		if err == nil || err.Reason != tc.reason || !strings.Contains(err.Detail, tc.detail) {
			t.Errorf("DecodeVisit(%.80s) = %v, want %s containing %q", tc.in, err, tc.reason, tc.detail)
		}
	}
}

func TestDecodeVisitRejectsOversizedMessagesBeforeParsing(t *testing.T) {
	in := []byte(`{"id":` + strings.Repeat(" ", 100))
	_, err := DecodeVisit(in, visitRecorded, VisitLimits{MaxMessageBytes: 64})
	if err == nil || err.Reason != ReasonTooLarge {
		t.Errorf("DecodeVisit of a %d-byte message, limit 64 = %v, want %s", len(in), err, ReasonTooLarge)
	}
}

func TestDecodeVisitChecksInTheDocumentedOrder(t *testing.T) {
	// Each message is wrong in every field from the one named on.
	for _, tc := range []struct {
		in   string
		want Reason
	}{
		{`{"id":"","account_id":"1","store_id":5,"timestamp":"x"}x`, ReasonMalformedJSON},
		{`{"id":"","account_id":"1","store_id":5,"timestamp":"x"}`, ReasonBadID},
		{`{"id":"a","account_id":"1","store_id":5,"timestamp":"x"}`, ReasonWrongType},
		{`{"id":"a","account_id":1,"store_id":"","timestamp":"x"}`, ReasonBadStoreID},
		{`{"id":"a","account_id":1,"store_id":"s","timestamp":"x"}`, ReasonWrongType},
		{`{"id":"a","account_id":1,"store_id":"s","timestamp":1}`, ReasonBadTimestamp},
	} {
		_, err := DecodeVisit([]byte(tc.in), visitRecorded, VisitLimits{})
		if err == nil || err.Reason != tc.want {
			t.Errorf("DecodeVisit(%s) = %v, want %s", tc.in, err, tc.want)
		}
	}
}

func TestDecodeVisitDetailsNeverQuoteTheIDOrStore(t *testing.T) {
	const secret = "s3cr3t"
	for _, in := range []string{
		`{"id":"` + secret + strings.Repeat("x", 200) + `","account_id":1,"timestamp":1700000000}`,
		`{"id":"a","account_id":1,"store_id":"` + secret + strings.Repeat("x", 200) + `","timestamp":1700000000}`,
		`{"id":"` + secret + `","account_id":1,"store_id":"` + secret + `\ud800","timestamp":1700000000}`,
	} {
		_, err := DecodeVisit([]byte(in), visitRecorded, VisitLimits{})
		if err == nil || strings.Contains(err.Detail, secret) {
			t.Errorf("DecodeVisit(%.60s…) = %v, want an error that does not quote the value", in, err)
		}
	}
}

func TestDecodeVisitSkipsTheBoundsAgainstAZeroRecordedTime(t *testing.T) {
	in := []byte(`{"id":"a","account_id":1,"timestamp":4000000000}`)
	if _, err := DecodeVisit(in, time.Time{}, VisitLimits{}); err != nil {
		t.Errorf("DecodeVisit without a recorded time = %v, want it accepted", err)
	}
	if _, err := DecodeVisit(in, visitRecorded, VisitLimits{}); err == nil || err.Reason != ReasonBadTimestamp {
		t.Errorf("DecodeVisit recorded at %s = %v, want %s", visitRecorded, err, ReasonBadTimestamp)
	}
}

func TestVisitJSONRoundTripsThroughDecodeVisit(t *testing.T) {
	for _, v := range []Visit{
		{ID: exampleUUID, AccountID: 352, StoreID: storePtr("uk"), Timestamp: 1700000000.123456},
		{ID: "a", AccountID: -9223372036854775808, Timestamp: 1700000000},
		{ID: "q\"b\\s/\x01\x1f\u007f\u2028é😀", AccountID: 9223372036854775807, StoreID: storePtr("<&>\t\u2029"), Timestamp: 1699999999.999999},
		{ID: strings.Repeat("é", 64), AccountID: 0, StoreID: storePtr(strings.Repeat("z", 128)), Timestamp: 1.7e9 + 1.0/3},
	} {
		enc := AppendVisit(nil, v)
		got, err := DecodeVisit(enc, visitRecorded, VisitLimits{})
		if err != nil || !sameVisit(got, v) {
			t.Errorf("DecodeVisit(%s) = %s, %v; want %s", enc, showVisit(got), err, showVisit(v))
		}
		var std Visit
		if err := json.Unmarshal(enc, &std); err != nil || !sameVisit(std, v) {
			t.Errorf("encoding/json reads %s as %s, %v; want %s", enc, showVisit(std), err, showVisit(v))
		}
		if key, want := v.GroupKey(), AppendGroupKey(nil, v.AccountID, v.storeBytes()); string(key) != string(want) {
			t.Errorf("GroupKey %s, AppendGroupKey %s", key, want)
		}
	}
}

func TestVisitsHotPathDoesNotAllocate(t *testing.T) {
	in := []byte(faustVisit)
	dst := make([]byte, 0, 512)
	allocs := testing.AllocsPerRun(100, func() {
		v, err := ScanVisit(in, visitRecorded, VisitLimits{})
		if err != nil {
			t.Fatal(err)
		}
		dst = AppendGroupKey(dst[:0], v.AccountID, v.StoreID)
		dst = AppendRepartitioned(dst, v)
		if _, err := DecodeRepartitioned(AppendRepartitioned(dst[:0], v), visitRecorded, VisitLimits{}); err != nil {
			t.Fatal(err)
		}
	})
	if allocs != 0 {
		t.Errorf("decoding, re-encoding and reading back a visit made %v allocations, want 0", allocs)
	}
}

func TestParseSecondsAgreesWithParseFloat(t *testing.T) {
	toks := []string{"0", "-0", "0.0", "-0.000", "10.50", "100.0", "0.0000001", "1700000000", "1700000000.000", "1700000000.123456", "1700000000.1234567", "1606470000.123456789",
		"999999999999999", "9999999999999999", "0.000000000000000000000123", "1.5e9", "1E9", "-1700000000.5", "123456789012345.6",
		"1.0000000000000000000000001", "17000000000000000000000000000000.5",
		// Around 2^53 = 9007199254740992, where the short cut ends.
		"9007199254740992", "9007199254740993", "900719925474099.3", "9007199254740.991", "1764614400.123456", "1764614400.1234567", "99999999999999999999"}
	rng := rand.New(rand.NewPCG(1, 2))
	for range 20000 {
		// Unix seconds with 0 to 9 decimals, as producers write them.
		toks = append(toks, strconv.FormatFloat(1.7e9+rng.Float64()*1e8, 'f', rng.IntN(10), 64))
		// Unix microseconds over 1e6, as the producer writes them.
		toks = append(toks, strconv.FormatFloat(float64(1_700_000_000_000_000+rng.Int64N(1e14))/1e6, 'f', -1, 64))
	}
	for _, tok := range toks {
		want, werr := strconv.ParseFloat(tok, 64)
		got, short, err := parseSeconds([]byte(tok))
		if got != want || math.Signbit(got) != math.Signbit(want) || (err == nil) != (werr == nil) {
			t.Errorf("parseSeconds(%s) = %v, %v; ParseFloat %v, %v", tok, got, err, want, werr)
		}
		if f := strconv.FormatFloat(want, 'f', -1, 64); short != nil && string(short) != f {
			t.Errorf("parseSeconds(%s) gave the text %s, AppendFloat writes %s", tok, short, f)
		}
	}
}

// visitReasons are the reasons DecodeVisit refuses a visit for.
var visitReasons = []Reason{
	ReasonTooLarge, ReasonMalformedJSON, ReasonMissingField, ReasonWrongType,
	ReasonBadID, ReasonBadStoreID, ReasonBadTimestamp,
}

// visitFuzzSeeds are inputs near the edges of what DecodeVisit accepts.
var visitFuzzSeeds = []string{
	`{"id":"a","account_id":1,"store_id":"uk","timestamp":1764614400.123456}`,
	`{"id":"a","account_id":-0,"store_id":null,"timestamp":0.5}`,
	`{"id":"a","account_id":01,"store_id":null,"timestamp":1700000000}`,
	`{"id":"a","account_id":1,"store_id":null,"timestamp":1700000000.}`,
	`{"id":"a","account_id":1,"store_id":"","timestamp":1700000000}`,
	faustVisit,
	`{"id": "a", "account_id": 1, "store_id": null, "timestamp": 1700000000.5, "__faust": {"ns": "m.Visit"}}`,
	`{"id":"a","account_id":1,"timestamp":1700000000}`,
	`{"\u0069d":"caf\u00e9","account_id":-0,"store_id":"\ud83d\ude00","timestamp":1.7e9}`,
	`{"id":"a","id":"b","account_id":1,"timestamp":1700000000}`,
	`{"ID":"a","account_id":1,"timestamp":1700000000}`,
	`{"id":"\ud800","account_id":1,"timestamp":1700000000}`,
	`{"id":"a","account_id":1.0,"timestamp":1700000000}`,
	`{"id":"a","account_id":1,"store_id":"","timestamp":1700000000}`,
	`{"id":"a","account_id":1,"timestamp":1e400}`,
	`{"id":"a","account_id":1,"timestamp":"1700000000"}`,
	"{\"id\":\"a\xff\",\"account_id\":1,\"timestamp\":1700000000}",
	`{"id":"a","account_id":1,"timestamp":1700000000}x`,
	`{}`,
	``,
}

// FuzzDecodeVisit checks DecodeVisit against encoding/json: it never
// panics, it accepts only valid JSON and then agrees with encoding/json on
// every field, it rejects valid JSON as malformed only for its documented
// strictness, and what it accepts round-trips through the repartition
// topic's encoding.
func FuzzDecodeVisit(f *testing.F) {
	for _, s := range visitFuzzSeeds {
		f.Add([]byte(s))
	}
	lim := VisitLimits{}.WithDefaults()
	f.Fuzz(func(t *testing.T, in []byte) {
		v, err := DecodeVisit(in, visitRecorded, VisitLimits{})
		m, ok := checkStrictVerdict(t, "DecodeVisit", in, err, visitReasons)
		if !ok {
			return
		}
		var std Visit
		for key, dst := range map[string]any{"id": &std.ID, "account_id": &std.AccountID, "store_id": &std.StoreID, "timestamp": &std.Timestamp} {
			if raw, ok := m[key]; ok {
				if err := json.Unmarshal(raw, dst); err != nil {
					t.Fatalf("DecodeVisit(%q) accepted %s, which encoding/json cannot read: %v", in, key, err)
				}
			}
		}
		if !sameVisit(v, std) {
			t.Fatalf("DecodeVisit(%q) = %s, encoding/json %s", in, showVisit(v), showVisit(std))
		}
		if len(v.ID) == 0 || len(v.ID) > lim.MaxIDLen || (v.StoreID != nil && (len(*v.StoreID) == 0 || len(*v.StoreID) > lim.MaxIDLen)) {
			t.Fatalf("DecodeVisit(%q) accepted %s outside the limits", in, showVisit(v))
		}
		enc := AppendVisit(nil, v)
		fv, _ := ScanVisit(in, visitRecorded, lim)
		if lv, ok := laidOutVisit(in, visitRecorded, lim); ok {
			sv, err := scanVisit(in, visitRecorded, lim)
			if err != nil || !reflect.DeepEqual(lv, sv) {
				t.Fatalf("the layout fast path reads %q as %+v, the scanner as %+v, %v", in, lv, sv, err)
			}
		}
		if string(AppendRepartitionedJSON(nil, fv)) != string(enc) {
			t.Fatalf("DecodeVisit(%q): the visits agent's JSON form is %s, AppendVisit %s", in, AppendRepartitionedJSON(nil, fv), enc)
		}
		compact := AppendRepartitioned(nil, fv)
		if back, err := DecodeRepartitioned(compact, visitRecorded, lim); err != nil || !sameVisit(back.Visit(), v) {
			t.Fatalf("DecodeVisit(%q) = %s, but its compact form % x reads back as %s, %v", in, showVisit(v), compact, showVisit(back.Visit()), err)
		}
		again, err := DecodeVisit(enc, visitRecorded, VisitLimits{})
		if err != nil || !sameVisit(again, v) {
			t.Fatalf("DecodeVisit(%q) = %s, but its encoding %s reads back as %s, %v", in, showVisit(v), enc, showVisit(again), err)
		}
	})
}

func sameVisit(a, b Visit) bool {
	return a.ID == b.ID && a.AccountID == b.AccountID && a.Timestamp == b.Timestamp &&
		(a.StoreID == nil) == (b.StoreID == nil) && (a.StoreID == nil || *a.StoreID == *b.StoreID)
}

func showVisit(v Visit) string {
	store := "null"
	if v.StoreID != nil {
		store = fmt.Sprintf("%q", *v.StoreID)
	}
	return fmt.Sprintf("{id %q, account %d, store %s, ts %v}", v.ID, v.AccountID, store, v.Timestamp)
}

func TestDecodeVisitRejectsBadVisitsWithReasons(t *testing.T) {
	rec := time.Unix(1_700_000_000, 0)
	for _, tc := range []struct {
		in   string
		want Reason
	}{
		{`{"id":"a","account_id":1,"store_id":"uk","timestamp":1700000000.5}`, ""},
		{`{"id":"a","account_id":1,"store_id":null,"timestamp":1700000000}`, ""},
		{`{"id":"a","account_id":1,"timestamp":1700000000}`, ""},
		{`not json`, ReasonMalformedJSON},
		{`{"id":"a","account_id":1`, ReasonMalformedJSON},
		{`{"account_id":1,"timestamp":1700000000}`, ReasonMissingField},
		{`{"id":"a","timestamp":1700000000}`, ReasonMissingField},
		{`{"id":"a","account_id":1}`, ReasonMissingField},
		{`{"id":7,"account_id":1,"timestamp":1700000000}`, ReasonWrongType},
		{`{"id":"a","account_id":"1","timestamp":1700000000}`, ReasonWrongType},
		{`{"id":"a","account_id":1.5,"timestamp":1700000000}`, ReasonWrongType},
		{`{"id":"a","account_id":1,"store_id":5,"timestamp":1700000000}`, ReasonWrongType},
		{`{"id":"a","account_id":1,"timestamp":"now"}`, ReasonWrongType},
		{`{"id":"","account_id":1,"timestamp":1700000000}`, ReasonBadID},
		{`{"id":"a","account_id":1,"store_id":"","timestamp":1700000000}`, ReasonBadStoreID},
		{`{"id":"a","account_id":1,"timestamp":0}`, ReasonBadTimestamp},
		{`{"id":"a","account_id":1,"timestamp":2015000000}`, ReasonBadTimestamp},
		{`{"id":"a","account_id":1,"timestamp":1e400}`, ReasonWrongType},
	} {
		_, err := DecodeVisit([]byte(tc.in), rec, VisitLimits{})
		switch {
		case tc.want == "" && err != nil:
			t.Errorf("DecodeVisit(%s) = %v, want it accepted", tc.in, err)
		case tc.want != "" && (err == nil || err.Reason != tc.want):
			t.Errorf("DecodeVisit(%s) = %v, want reason %s", tc.in, err, tc.want)
		}
	}
}

func TestDecodeVisitReportsAnAbsurdTimestampAsItWasSent(t *testing.T) {
	rec := time.Unix(1_800_000_000, 0)
	for _, tc := range []struct{ ts, want string }{
		{"1e20", "timestamp 1e+20 s is more than 1h0m0s after the message was recorded"},
		{"-1e20", "timestamp -1e+20 s is before 2000"},
		{"86400", "timestamp 1970-01-02T00:00:00Z is before 2000"},
		{"1800003660", "timestamp 2027-01-15T09:01:00Z is more than 1h0m0s after the message was recorded"},
	} {
		_, err := DecodeVisit([]byte(`{"id":"a","account_id":1,"timestamp":`+tc.ts+`}`), rec, VisitLimits{})
		if err == nil || err.Reason != ReasonBadTimestamp || err.Detail != tc.want {
			t.Errorf("timestamp %s: got %v, want bad_timestamp: %s", tc.ts, err, tc.want)
		}
	}
}
