package wire

import (
	"encoding/json"
	"errors"
	"slices"
	"strings"
	"testing"
	"unicode/utf8"
)

// ratingFuzzSeeds are inputs near the edges of what DecodeRating accepts.
var ratingFuzzSeeds = []string{
	`{"rating": 42, "unique_id": "` + exampleUUID + `"}`,
	`{"unique_id":"a","rating":15}`,
	" \t\r\n{ \n\"rating\" \t: \r 7 \n, \"unique_id\"\t:\"a\"\r\n } \n\t",
	`{"meta":{"a":[1,2.5e-3,{"b":null,"c":[[],{}]}],"d":"x\"}y"},"rating":3,"unique_id":"a","z":[ ]}`,
	`{"r\u0061ting":5,"unique\u005fid":"a"}`,
	`{"rating":5,"unique_id":"a\"b\\c\/d\u00e9\ud83d\ude00"}`,
	`{"rating":5,"unique_id":"\ud800\u0041"}`,
	`{"rating":5,"unique_id":"a\u0000"}`,
	"{\"rating\":5,\"unique_id\":\"a\xc2\x85\"}",
	"{\"rating\":5,\"unique_id\":\"a\xffb\"}",
	`{"rating":15.0,"unique_id":"a"}`,
	`{"rating":1e309,"unique_id":"a"}`,
	`{"rating":"15","unique_id":"a"}`,
	`{"rating":-0,"unique_id":"a"}`,
	`{"rating":9223372036854775808,"unique_id":"a"}`,
	`{"rating":null,"unique_id":"a"}`,
	`{"rating":5,"unique_id":"a","rating":6}`,
	`{"rating":5,"unique_id":"a"}x`,
	`[{"rating":5,"unique_id":"a"}]`,
	`{"rating":5,"unique_id":"a","deep":` + strings.Repeat("[", 31) + strings.Repeat("]", 31) + `}`,
	`{}`,
	``,
	"\x00\xff",
}

// FuzzDecodeRating checks DecodeRating against encoding/json: it never
// panics, it accepts only valid JSON and then agrees with encoding/json on
// both fields, it rejects valid JSON only for the documented reasons, and
// what it accepts round-trips through AppendRating.
func FuzzDecodeRating(f *testing.F) {
	for _, s := range ratingFuzzSeeds {
		f.Add([]byte(s))
	}
	f.Add([]byte(`{"rating":01,"unique_id":"a"}`))
	f.Add([]byte(`{"rating":-0,"unique_id":"a\u007f"}`))
	f.Add([]byte("{\"rating\":3,\"unique_id\":\"a\x7f\"}"))
	f.Add([]byte("{\"rating\":3,\"unique_id\":\"a\xc2\x85\"}"))
	lim := DefaultRatingLimits()
	f.Fuzz(func(t *testing.T, in []byte) {
		if fast, ok := laidOutRating(in, lim); ok {
			slow, err := scanRating(in, lim)
			if err != nil || fast.Rating != slow.Rating || string(fast.UniqueID) != string(slow.UniqueID) {
				t.Fatalf("the layout fast path reads %q as %+v, the scanner as %+v, %v", in, fast, slow, err)
			}
		}
		r, err := DecodeRating(in, RatingLimits{})
		var de *DecodeError
		if err != nil && !errors.As(err, &de) {
			t.Fatalf("DecodeRating(%q) error %#v, want a *DecodeError", in, err)
		}
		m, ok := checkStrictVerdict(t, "DecodeRating", in, de, Reasons)
		if !ok {
			return
		}
		var rating int64
		if err := json.Unmarshal(m["rating"], &rating); err != nil || rating != r.Rating {
			t.Fatalf("DecodeRating(%q) rating %d, encoding/json %d (%v)", in, r.Rating, rating, err)
		}
		var id string
		if err := json.Unmarshal(m["unique_id"], &id); err != nil || id != string(r.UniqueID) {
			t.Fatalf("DecodeRating(%q) unique_id %q, encoding/json %q (%v)", in, r.UniqueID, id, err)
		}
		if r.Rating < lim.MinRating || r.Rating > lim.MaxRating {
			t.Fatalf("DecodeRating(%q) accepted rating %d outside the limits", in, r.Rating)
		}
		if len(r.UniqueID) == 0 || len(r.UniqueID) > lim.MaxIDLen || !utf8.Valid(r.UniqueID) {
			t.Fatalf("DecodeRating(%q) accepted unique_id %q", in, r.UniqueID)
		}
		out := AppendShadow(nil, Classify(r.Rating), r.UniqueID, 1700000000, r.Rating)
		checkShadowRoundTrip(t, out, Classify(r.Rating), r.UniqueID, 1700000000, r.Rating)
		enc := AppendRating(nil, r)
		if again, err := DecodeRating(enc, RatingLimits{}); err != nil || again.Rating != r.Rating || string(again.UniqueID) != string(r.UniqueID) {
			t.Fatalf("DecodeRating(%q) = %+v, but AppendRating's %s reads back as %+v, %v", in, r, enc, again, err)
		}
	})
}

// checkStrictVerdict checks a strict decoder's verdict on in against
// encoding/json: a rejection has one of reasons and a detail, and is
// malformed_json for valid JSON only by a documented strictness; an
// accepted input is valid JSON, whose top-level object it returns. ok is
// false for a rejection.
func checkStrictVerdict(t *testing.T, decoder string, in []byte, err *DecodeError, reasons []Reason) (m map[string]json.RawMessage, ok bool) {
	t.Helper()
	valid := json.Valid(in)
	if err != nil {
		if !slices.Contains(reasons, err.Reason) || err.Detail == "" {
			t.Fatalf("%s(%q) error %#v, want a known reason and a detail", decoder, in, err)
		}
		if err.Reason == ReasonMalformedJSON && valid && utf8.Valid(in) && !strictBeyondJSON(err.Detail) {
			t.Fatalf("%s(%q) = %v, but the input is valid JSON", decoder, in, err)
		}
		return nil, false
	}
	if !valid {
		t.Fatalf("%s(%q) accepted invalid JSON", decoder, in)
	}
	if err := json.Unmarshal(in, &m); err != nil {
		t.Fatalf("%s(%q) accepted what encoding/json rejects: %v", decoder, in, err)
	}
	return m, true
}

// strictBeyondJSON reports whether a malformed_json detail is one of the
// rules by which DecodeRating is stricter than JSON itself.
func strictBeyondJSON(detail string) bool {
	for _, s := range []string{"want an object", "nesting deeper than", "duplicate key"} {
		if strings.Contains(detail, s) {
			return true
		}
	}
	return false
}

// FuzzAppendShadow checks that AppendShadow writes valid JSON that
// encoding/json reads back as what it would itself have written, for any
// id bytes and numbers.
func FuzzAppendShadow(f *testing.F) {
	f.Add(uint8(Sha), []byte(exampleUUID), int64(1700000000), int64(3))
	f.Add(uint8(ShaDow), []byte("a\"b\\c\x00\x1f\x7f\u2028\xff"), int64(-1), int64(-9223372036854775808))
	f.Fuzz(func(t *testing.T, typ uint8, id []byte, ts, rating int64) {
		t2 := Type(typ % uint8(len(Types)))
		out := AppendShadow([]byte("x"), t2, id, ts, rating)
		checkShadowRoundTrip(t, out[1:], t2, id, ts, rating)
	})
}
