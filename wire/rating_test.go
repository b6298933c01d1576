package wire

import (
	"bytes"
	"encoding/json"
	"errors"
	"math"
	"strings"
	"testing"

	"github.com/domination/domination/internal/testenv"
)

const exampleUUID = "0b8c9f0e-3a6f-4c55-9b1e-8d7c2f1a0e11"

func TestTypeValuesMatchClickHouseEnum(t *testing.T) {
	// Enum8('Incompatible'=0,'Sha'=1,'Dow'=2,'ShaDow'=3)
	want := map[Type]uint8{Incompatible: 0, Sha: 1, Dow: 2, ShaDow: 3}
	for typ, n := range want {
		if uint8(typ) != n {
			t.Errorf("%s = %d, want %d", typ, uint8(typ), n)
		}
	}
	if len(Types) != len(want) {
		t.Fatalf("Types has %d entries, want %d", len(Types), len(want))
	}
	for i, typ := range Types {
		if int(typ) != i {
			t.Errorf("Types[%d] = %s, want enum order", i, typ)
		}
	}
}

func TestParseTypeInvertsString(t *testing.T) {
	names := []string{"Incompatible", "Sha", "Dow", "ShaDow"}
	for i, typ := range Types {
		if got := typ.String(); got != names[i] {
			t.Errorf("Type(%d).String() = %q, want %q", i, got, names[i])
		}
		got, ok := ParseType(typ.String())
		if !ok || got != typ {
			t.Errorf("ParseType(%q) = %v, %v; want %v, true", typ.String(), got, ok, typ)
		}
	}
}

func TestParseTypeRejectsOtherSpellings(t *testing.T) {
	for _, s := range []string{"", "sha", "SHA", "shadow", "Shadow", "SHADOW", " Sha", "Sha ", "Type(4)", "0"} {
		if typ, ok := ParseType(s); ok {
			t.Errorf("ParseType(%q) = %v, true; want false", s, typ)
		}
	}
}

func TestTypeStringNamesUnknownValues(t *testing.T) {
	if got := Type(7).String(); got != "Type(7)" {
		t.Errorf("Type(7).String() = %q, want %q", got, "Type(7)")
	}
}

func TestClassifyNamesMultiplesOfThreeAndFive(t *testing.T) {
	tests := []struct {
		rating int64
		want   Type
	}{
		{1, Incompatible},
		{2, Incompatible},
		{3, Sha},
		{5, Dow},
		{15, ShaDow},
		{30, ShaDow},
		{42, Sha},
		{98, Incompatible},
		{99, Sha},
		{100, Dow},
		{0, ShaDow},
		{-3, Sha},
		{-5, Dow},
		{-15, ShaDow},
		{-7, Incompatible},
		{math.MaxInt64, Incompatible},
		{math.MinInt64, Incompatible},
	}
	for _, tt := range tests {
		if got := Classify(tt.rating); got != tt.want {
			t.Errorf("Classify(%d) = %s, want %s", tt.rating, got, tt.want)
		}
	}
}

func TestClassifyAgreesWithDivisibilityOverTheDefaultRange(t *testing.T) {
	for r := int64(1); r <= 100; r++ {
		by3, by5 := r%3 == 0, r%5 == 0
		want := Incompatible
		switch {
		case by3 && by5:
			want = ShaDow
		case by3:
			want = Sha
		case by5:
			want = Dow
		}
		if got := Classify(r); got != want {
			t.Errorf("Classify(%d) = %s, want %s", r, got, want)
		}
	}
}

func TestRatingLimitsZeroValueMeansDefaults(t *testing.T) {
	want := RatingLimits{MinRating: 1, MaxRating: 100, MaxIDLen: 128, MaxMessageBytes: 64 << 10}
	if got := DefaultRatingLimits(); got != want {
		t.Errorf("DefaultRatingLimits() = %+v, want %+v", got, want)
	}
	if got := (RatingLimits{}).WithDefaults(); got != want {
		t.Errorf("RatingLimits{}.WithDefaults() = %+v, want %+v", got, want)
	}
}

func TestRatingLimitsKeepAZeroBoundWhenTheOtherIsSet(t *testing.T) {
	tests := []RatingLimits{
		{MinRating: 0, MaxRating: 100},
		{MinRating: -5, MaxRating: 0},
	}
	for _, lim := range tests {
		got := lim.WithDefaults()
		if got.MinRating != lim.MinRating || got.MaxRating != lim.MaxRating {
			t.Errorf("%+v.WithDefaults() range = %d..%d, want %d..%d",
				lim, got.MinRating, got.MaxRating, lim.MinRating, lim.MaxRating)
		}
	}
}

func TestRatingLimitsValidateRejectsInvertedRangesAndNegativeSizes(t *testing.T) {
	tests := []struct {
		name    string
		lim     RatingLimits
		wantErr string
	}{
		{"zero value", RatingLimits{}, ""},
		{"defaults", DefaultRatingLimits(), ""},
		{"zero to hundred", RatingLimits{MinRating: 0, MaxRating: 100}, ""},
		{"single rating", RatingLimits{MinRating: 7, MaxRating: 7}, ""},
		{"inverted range", RatingLimits{MinRating: 10, MaxRating: 5}, "min rating 10 above max rating 5"},
		{"negative max with zero min", RatingLimits{MaxRating: -1}, "min rating 0 above max rating -1"},
		{"negative id length", RatingLimits{MaxIDLen: -1}, "max unique_id length -1"},
		{"negative message size", RatingLimits{MaxMessageBytes: -1}, "max message size -1"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			testenv.CheckErr(t, "Validate()", tt.lim.Validate(), tt.wantErr)
		})
	}
}

func TestDecodeRatingAcceptsWellFormedMessages(t *testing.T) {
	wide := RatingLimits{MinRating: math.MinInt64, MaxRating: math.MaxInt64}
	tests := []struct {
		name   string
		in     string
		lim    RatingLimits
		rating int64
		id     string
	}{
		{"typical", `{"rating": 42, "unique_id": "` + exampleUUID + `"}`, RatingLimits{}, 42, exampleUUID},
		{"compact", `{"rating":42,"unique_id":"a"}`, RatingLimits{}, 42, "a"},
		{"keys in reverse order", `{"unique_id":"a","rating":7}`, RatingLimits{}, 7, "a"},
		{"whitespace everywhere", " \t\r\n{ \n\"rating\" \t: \r 7 \n, \"unique_id\"\t:\"a\"\r\n } \n\t", RatingLimits{}, 7, "a"},
		{"unknown scalar keys skipped", `{"t":true,"f":false,"n":null,"s":"x","x":-1.5e+3,"rating":3,"unique_id":"a"}`, RatingLimits{}, 3, "a"},
		{"nested unknown keys skipped", `{"meta":{"a":[1,2.5e-3,{"b":null,"c":[[],{}]}],"d":"x\"}y"},"rating":3,"unique_id":"a","z":[ ]}`, RatingLimits{}, 3, "a"},
		{"unknown key differing only in case", `{"Rating":"x","RATING":1.5,"rating":5,"Unique_ID":0,"unique_id":"a"}`, RatingLimits{}, 5, "a"},
		{"unknown keys repeated", `{"x":1,"x":2,"rating":5,"unique_id":"a","x":3}`, RatingLimits{}, 5, "a"},
		{"escaped key names", `{"r\u0061ting":5,"unique\u005fid":"a"}`, RatingLimits{}, 5, "a"},
		{"escaped id", `{"rating":5,"unique_id":"a\"b\\c\/d\u00e9\ud83d\ude00\uFEFF"}`, RatingLimits{}, 5, "a\"b\\c/dé😀\ufeff"},
		{"raw UTF-8 id", `{"rating":5,"unique_id":"ünïcødé-😀"}`, RatingLimits{}, 5, "ünïcødé-😀"},
		{"lowest default rating", `{"rating":1,"unique_id":"a"}`, RatingLimits{}, 1, "a"},
		{"highest default rating", `{"rating":100,"unique_id":"a"}`, RatingLimits{}, 100, "a"},
		{"zero when allowed", `{"rating":0,"unique_id":"a"}`, RatingLimits{MinRating: 0, MaxRating: 100}, 0, "a"},
		{"negative zero when zero allowed", `{"rating":-0,"unique_id":"a"}`, RatingLimits{MinRating: 0, MaxRating: 100}, 0, "a"},
		{"negative when allowed", `{"rating":-10,"unique_id":"a"}`, RatingLimits{MinRating: -10, MaxRating: 0}, -10, "a"},
		{"largest int64", `{"rating":9223372036854775807,"unique_id":"a"}`, wide, math.MaxInt64, "a"},
		{"smallest int64", `{"rating":-9223372036854775808,"unique_id":"a"}`, wide, math.MinInt64, "a"},
		{"id at the length limit", `{"rating":5,"unique_id":"` + strings.Repeat("a", 128) + `"}`, RatingLimits{}, 5, strings.Repeat("a", 128)},
		{"escaped id at the length limit", `{"rating":5,"unique_id":"` + strings.Repeat("a", 126) + `\u00e9"}`, RatingLimits{}, 5, strings.Repeat("a", 126) + "é"},
		{"nesting 32 deep", `{"rating":5,"unique_id":"a","deep":` + strings.Repeat("[", 31) + strings.Repeat("]", 31) + `}`, RatingLimits{}, 5, "a"},
		{"message at the size limit", `{"rating":5,"unique_id":"a"}`, RatingLimits{MaxMessageBytes: len(`{"rating":5,"unique_id":"a"}`)}, 5, "a"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := DecodeRating([]byte(tt.in), tt.lim)
			if err != nil {
				t.Fatalf("DecodeRating(%q) = %v", tt.in, err)
			}
			if got.Rating != tt.rating || string(got.UniqueID) != tt.id {
				t.Errorf("DecodeRating(%q) = {%d %q}, want {%d %q}", tt.in, got.Rating, got.UniqueID, tt.rating, tt.id)
			}
		})
	}
}

// rejectCase is one input DecodeRating must reject, and the reason it must
// give.
type rejectCase struct {
	name string
	in   string
	lim  RatingLimits
	want Reason
}

func runRejectCases(t *testing.T, tests []rejectCase) {
	t.Helper()
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := DecodeRating([]byte(tt.in), tt.lim)
			if err == nil {
				t.Fatalf("DecodeRating(%q) = {%d %q}, nil; want %s", clip([]byte(tt.in)), got.Rating, got.UniqueID, tt.want)
			}
			var de *DecodeError
			if !errors.As(err, &de) {
				t.Fatalf("DecodeRating(%q) error %T, want *DecodeError", clip([]byte(tt.in)), err)
			}
			if de.Reason != tt.want {
				t.Errorf("DecodeRating(%q) reason %s (%s), want %s", clip([]byte(tt.in)), de.Reason, de.Detail, tt.want)
			}
			if de.Detail == "" {
				t.Errorf("DecodeRating(%q) gave no detail", clip([]byte(tt.in)))
			}
			if got.Rating != 0 || got.UniqueID != nil {
				t.Errorf("DecodeRating(%q) returned %+v with an error, want the zero Rating", clip([]byte(tt.in)), got)
			}
		})
	}
}

func TestDecodeRatingRejectsOversizedMessagesBeforeParsing(t *testing.T) {
	big := `{"rating":5,"unique_id":"` + strings.Repeat("a", 2<<20) + `"}`
	runRejectCases(t, []rejectCase{
		{"2 MB valid JSON", big, RatingLimits{}, ReasonTooLarge},
		{"2 MB garbage", strings.Repeat("\xff", 2<<20), RatingLimits{}, ReasonTooLarge},
		{"one byte over a custom limit", `{"rating":5,"unique_id":"a"}`, RatingLimits{MaxMessageBytes: len(`{"rating":5,"unique_id":"a"}`) - 1}, ReasonTooLarge},
	})
}

func TestDecodeRatingRejectsMalformedJSONWithReason(t *testing.T) {
	runRejectCases(t, []rejectCase{
		{"empty", ``, RatingLimits{}, ReasonMalformedJSON},
		{"whitespace only", " \n\t", RatingLimits{}, ReasonMalformedJSON},
		{"null", `null`, RatingLimits{}, ReasonMalformedJSON},
		{"top-level array", `[{"rating":5,"unique_id":"a"}]`, RatingLimits{}, ReasonMalformedJSON},
		{"top-level string", `"{\"rating\":5,\"unique_id\":\"a\"}"`, RatingLimits{}, ReasonMalformedJSON},
		{"top-level number", `5`, RatingLimits{}, ReasonMalformedJSON},
		{"binary garbage", "\x00\xff\xfe\x01\x02", RatingLimits{}, ReasonMalformedJSON},
		{"byte order mark", "\xef\xbb\xbf" + `{"rating":5,"unique_id":"a"}`, RatingLimits{}, ReasonMalformedJSON},
		{"trailing garbage", `{"rating":5,"unique_id":"a"}x`, RatingLimits{}, ReasonMalformedJSON},
		{"trailing NUL", "{\"rating\":5,\"unique_id\":\"a\"}\x00", RatingLimits{}, ReasonMalformedJSON},
		{"two objects", `{"rating":5,"unique_id":"a"}{"rating":5,"unique_id":"a"}`, RatingLimits{}, ReasonMalformedJSON},
		{"unterminated object", `{"rating":5,"unique_id":"a"`, RatingLimits{}, ReasonMalformedJSON},
		{"unterminated string", `{"rating":5,"unique_id":"a}`, RatingLimits{}, ReasonMalformedJSON},
		{"trailing comma", `{"rating":5,"unique_id":"a",}`, RatingLimits{}, ReasonMalformedJSON},
		{"missing comma", `{"rating":5 "unique_id":"a"}`, RatingLimits{}, ReasonMalformedJSON},
		{"missing colon", `{"rating" 5,"unique_id":"a"}`, RatingLimits{}, ReasonMalformedJSON},
		{"missing value", `{"rating":,"unique_id":"a"}`, RatingLimits{}, ReasonMalformedJSON},
		{"unquoted key", `{rating:5,"unique_id":"a"}`, RatingLimits{}, ReasonMalformedJSON},
		{"single quotes", `{'rating':5,'unique_id':'a'}`, RatingLimits{}, ReasonMalformedJSON},
		{"comment", `{"rating":5,/* c */"unique_id":"a"}`, RatingLimits{}, ReasonMalformedJSON},
		{"leading zero", `{"rating":05,"unique_id":"a"}`, RatingLimits{}, ReasonMalformedJSON},
		{"leading plus", `{"rating":+5,"unique_id":"a"}`, RatingLimits{}, ReasonMalformedJSON},
		{"lone minus", `{"rating":-,"unique_id":"a"}`, RatingLimits{}, ReasonMalformedJSON},
		{"fraction without digits", `{"rating":5.,"unique_id":"a"}`, RatingLimits{}, ReasonMalformedJSON},
		{"leading dot", `{"rating":.5,"unique_id":"a"}`, RatingLimits{}, ReasonMalformedJSON},
		{"exponent without digits", `{"rating":5e,"unique_id":"a"}`, RatingLimits{}, ReasonMalformedJSON},
		{"hex number", `{"rating":0x5,"unique_id":"a"}`, RatingLimits{}, ReasonMalformedJSON},
		{"NaN", `{"rating":NaN,"unique_id":"a"}`, RatingLimits{}, ReasonMalformedJSON},
		{"Infinity", `{"rating":Infinity,"unique_id":"a"}`, RatingLimits{}, ReasonMalformedJSON},
		{"truncated literal", `{"rating":5,"unique_id":"a","x":tru}`, RatingLimits{}, ReasonMalformedJSON},
		{"capitalised literal", `{"rating":5,"unique_id":"a","x":True}`, RatingLimits{}, ReasonMalformedJSON},
		{"invalid escape", `{"rating":5,"unique_id":"a\x"}`, RatingLimits{}, ReasonMalformedJSON},
		{"short unicode escape", `{"rating":5,"unique_id":"a\u12"}`, RatingLimits{}, ReasonMalformedJSON},
		{"non-hex unicode escape", `{"rating":5,"unique_id":"a\u12g4"}`, RatingLimits{}, ReasonMalformedJSON},
		{"raw tab in string", "{\"rating\":5,\"unique_id\":\"a\tb\"}", RatingLimits{}, ReasonMalformedJSON},
		{"raw newline in string", "{\"rating\":5,\"unique_id\":\"a\nb\"}", RatingLimits{}, ReasonMalformedJSON},
		{"invalid UTF-8 in id", "{\"rating\":5,\"unique_id\":\"a\xffb\"}", RatingLimits{}, ReasonMalformedJSON},
		{"invalid UTF-8 in unknown value", "{\"rating\":5,\"unique_id\":\"a\",\"x\":\"\xc3\"}", RatingLimits{}, ReasonMalformedJSON},
		{"invalid UTF-8 in key", "{\"rating\":5,\"unique_id\":\"a\",\"\xfe\":1}", RatingLimits{}, ReasonMalformedJSON},
		{"UTF-8 encoded surrogate", "{\"rating\":5,\"unique_id\":\"\xed\xa0\x80\"}", RatingLimits{}, ReasonMalformedJSON},
		{"overlong UTF-8", "{\"rating\":5,\"unique_id\":\"\xc0\xaf\"}", RatingLimits{}, ReasonMalformedJSON},
		{"nesting 33 deep", `{"rating":5,"unique_id":"a","deep":` + strings.Repeat("[", 32) + strings.Repeat("]", 32) + `}`, RatingLimits{}, ReasonMalformedJSON},
		{"deep nesting of objects", `{"rating":5,"unique_id":"a","deep":` + strings.Repeat(`{"a":`, 1000) + `1` + strings.Repeat("}", 1000) + `}`, RatingLimits{}, ReasonMalformedJSON},
		{"mismatched brackets", `{"rating":5,"unique_id":"a","x":[1}`, RatingLimits{}, ReasonMalformedJSON},
		{"duplicate rating", `{"rating":5,"unique_id":"a","rating":6}`, RatingLimits{}, ReasonMalformedJSON},
		{"duplicate rating first null", `{"rating":null,"unique_id":"a","rating":6}`, RatingLimits{}, ReasonMalformedJSON},
		{"duplicate unique_id", `{"unique_id":"a","rating":5,"unique_id":"b"}`, RatingLimits{}, ReasonMalformedJSON},
		{"duplicate through an escaped key", `{"rating":5,"unique_id":"a","\u0072ating":6}`, RatingLimits{}, ReasonMalformedJSON},
	})
}

func TestDecodeRatingRejectsMissingOrNullFieldsWithReason(t *testing.T) {
	runRejectCases(t, []rejectCase{
		{"empty object", `{}`, RatingLimits{}, ReasonMissingField},
		{"only unknown keys", `{"x":1,"y":"z"}`, RatingLimits{}, ReasonMissingField},
		{"no rating", `{"unique_id":"a"}`, RatingLimits{}, ReasonMissingField},
		{"no unique_id", `{"rating":5}`, RatingLimits{}, ReasonMissingField},
		{"null rating", `{"rating":null,"unique_id":"a"}`, RatingLimits{}, ReasonMissingField},
		{"null unique_id", `{"rating":5,"unique_id":null}`, RatingLimits{}, ReasonMissingField},
		{"rating only under another case", `{"Rating":5,"unique_id":"a"}`, RatingLimits{}, ReasonMissingField},
		{"rating only nested", `{"x":{"rating":5},"unique_id":"a"}`, RatingLimits{}, ReasonMissingField},
	})
}

func TestDecodeRatingRejectsRatingsThatAreNotPlainIntegersWithReason(t *testing.T) {
	runRejectCases(t, []rejectCase{
		{"string holding a number", `{"rating":"15","unique_id":"a"}`, RatingLimits{}, ReasonWrongType},
		{"fraction", `{"rating":1.5,"unique_id":"a"}`, RatingLimits{}, ReasonWrongType},
		{"integral fraction", `{"rating":15.0,"unique_id":"a"}`, RatingLimits{}, ReasonWrongType},
		{"exponent", `{"rating":1e2,"unique_id":"a"}`, RatingLimits{}, ReasonWrongType},
		{"signed exponent", `{"rating":15E+0,"unique_id":"a"}`, RatingLimits{}, ReasonWrongType},
		{"huge exponent", `{"rating":1e309,"unique_id":"a"}`, RatingLimits{}, ReasonWrongType},
		{"negative zero fraction", `{"rating":-0.0,"unique_id":"a"}`, RatingLimits{}, ReasonWrongType},
		{"boolean", `{"rating":true,"unique_id":"a"}`, RatingLimits{}, ReasonWrongType},
		{"array", `{"rating":[15],"unique_id":"a"}`, RatingLimits{}, ReasonWrongType},
		{"object", `{"rating":{"v":15},"unique_id":"a"}`, RatingLimits{}, ReasonWrongType},
	})
}

func TestDecodeRatingRejectsUniqueIDsThatAreNotStringsWithReason(t *testing.T) {
	runRejectCases(t, []rejectCase{
		{"number", `{"rating":5,"unique_id":5}`, RatingLimits{}, ReasonWrongType},
		{"boolean", `{"rating":5,"unique_id":false}`, RatingLimits{}, ReasonWrongType},
		{"array", `{"rating":5,"unique_id":["a"]}`, RatingLimits{}, ReasonWrongType},
		{"object", `{"rating":5,"unique_id":{}}`, RatingLimits{}, ReasonWrongType},
	})
}

func TestDecodeRatingRejectsOutOfRangeRatingsWithReason(t *testing.T) {
	runRejectCases(t, []rejectCase{
		{"zero", `{"rating":0,"unique_id":"a"}`, RatingLimits{}, ReasonOutOfRange},
		{"negative zero", `{"rating":-0,"unique_id":"a"}`, RatingLimits{}, ReasonOutOfRange},
		{"minus one", `{"rating":-1,"unique_id":"a"}`, RatingLimits{}, ReasonOutOfRange},
		{"one over the maximum", `{"rating":101,"unique_id":"a"}`, RatingLimits{}, ReasonOutOfRange},
		{"largest int64", `{"rating":9223372036854775807,"unique_id":"a"}`, RatingLimits{}, ReasonOutOfRange},
		{"overflows int64", `{"rating":9223372036854775808,"unique_id":"a"}`, RatingLimits{MinRating: math.MinInt64, MaxRating: math.MaxInt64}, ReasonOutOfRange},
		{"underflows int64", `{"rating":-9223372036854775809,"unique_id":"a"}`, RatingLimits{MinRating: math.MinInt64, MaxRating: math.MaxInt64}, ReasonOutOfRange},
		{"far beyond int64", `{"rating":` + strings.Repeat("9", 400) + `,"unique_id":"a"}`, RatingLimits{}, ReasonOutOfRange},
		{"below a custom minimum", `{"rating":4,"unique_id":"a"}`, RatingLimits{MinRating: 5, MaxRating: 10}, ReasonOutOfRange},
		{"above a custom maximum", `{"rating":11,"unique_id":"a"}`, RatingLimits{MinRating: 5, MaxRating: 10}, ReasonOutOfRange},
		{"anything under an inverted range", `{"rating":7,"unique_id":"a"}`, RatingLimits{MinRating: 10, MaxRating: 5}, ReasonOutOfRange},
	})
}

func TestDecodeRatingRejectsBadUniqueIDsWithReason(t *testing.T) {
	runRejectCases(t, []rejectCase{
		{"empty", `{"rating":5,"unique_id":""}`, RatingLimits{}, ReasonBadID},
		{"one byte over the limit", `{"rating":5,"unique_id":"` + strings.Repeat("a", 129) + `"}`, RatingLimits{}, ReasonBadID},
		{"10 KB", `{"rating":5,"unique_id":"` + strings.Repeat("a", 10<<10) + `"}`, RatingLimits{}, ReasonBadID},
		{"escaped, over the limit after unescaping", `{"rating":5,"unique_id":"` + strings.Repeat("a", 127) + `\u00e9"}`, RatingLimits{}, ReasonBadID},
		{"10 KB of escapes", `{"rating":5,"unique_id":"` + strings.Repeat(`\u0061`, 10<<10) + `"}`, RatingLimits{}, ReasonBadID},
		{"over a custom limit", `{"rating":5,"unique_id":"abcd"}`, RatingLimits{MaxIDLen: 3}, ReasonBadID},
		{"escaped NUL", `{"rating":5,"unique_id":"a\u0000"}`, RatingLimits{}, ReasonBadID},
		{"escaped newline", `{"rating":5,"unique_id":"a\nb"}`, RatingLimits{}, ReasonBadID},
		{"escaped tab", `{"rating":5,"unique_id":"\ta"}`, RatingLimits{}, ReasonBadID},
		{"raw DEL", "{\"rating\":5,\"unique_id\":\"a\x7f\"}", RatingLimits{}, ReasonBadID},
		{"escaped DEL", `{"rating":5,"unique_id":"a\u007F"}`, RatingLimits{}, ReasonBadID},
		{"raw C1 control", "{\"rating\":5,\"unique_id\":\"a\xc2\x85\"}", RatingLimits{}, ReasonBadID},
		{"escaped C1 control", `{"rating":5,"unique_id":"a\u009f"}`, RatingLimits{}, ReasonBadID},
		{"unpaired high surrogate", `{"rating":5,"unique_id":"a\ud800"}`, RatingLimits{}, ReasonBadID},
		{"unpaired high surrogate before text", `{"rating":5,"unique_id":"\ud800abcdefgh"}`, RatingLimits{}, ReasonBadID},
		{"high surrogate before a non-surrogate escape", `{"rating":5,"unique_id":"\ud800\u0041"}`, RatingLimits{}, ReasonBadID},
		{"two high surrogates", `{"rating":5,"unique_id":"\ud800\ud800"}`, RatingLimits{}, ReasonBadID},
		{"unpaired low surrogate", `{"rating":5,"unique_id":"\udc00a"}`, RatingLimits{}, ReasonBadID},
	})
}

func TestDecodeRatingChecksReasonsInTheDocumentedOrder(t *testing.T) {
	runRejectCases(t, []rejectCase{
		{"too large before malformed", "\xff\xff\xff", RatingLimits{MaxMessageBytes: 2}, ReasonTooLarge},
		{"malformed after a wrong type", `{"rating":"x","unique_id":"a"`, RatingLimits{}, ReasonMalformedJSON},
		{"malformed after a missing field", `{"rating":5}}`, RatingLimits{}, ReasonMalformedJSON},
		{"missing id before wrong-type rating", `{"rating":"5"}`, RatingLimits{}, ReasonMissingField},
		{"wrong-type rating before bad id", `{"rating":1.5,"unique_id":""}`, RatingLimits{}, ReasonWrongType},
		{"wrong-type id before out-of-range rating", `{"rating":0,"unique_id":1}`, RatingLimits{}, ReasonWrongType},
		{"out-of-range rating before bad id", `{"rating":0,"unique_id":""}`, RatingLimits{}, ReasonOutOfRange},
	})
}

func TestDecodeRatingDetailsSayWhatWasWrong(t *testing.T) {
	tests := []struct {
		in   string
		want string
	}{
		{`{"rating":101,"unique_id":"a"}`, "out_of_range: rating 101 outside 1..100"},
		{`{"rating":5,"unique_id":"a"}x`, "malformed_json: unexpected character 'x' at offset 28 after the object"},
		{`{"rating":5 x}`, "malformed_json: unexpected character 'x' at offset 12, want ',' or '}'"},
		{`[]`, "malformed_json: unexpected character '[' at offset 0, want an object"},
		{`{"rating":15.0,"unique_id":"a"}`, "wrong_type: rating 15.0 is not a plain integer"},
		{`{"rating":"15","unique_id":"a"}`, "wrong_type: rating is a string, want an integer"},
		{`{"unique_id":"a"}`, `missing_field: missing field "rating"`},
		{`{"rating":5,"unique_id":"a","rating":5}`, `malformed_json: duplicate key "rating" at offset 28`},
		{`{"rating":5,"unique_id":"a\u0001"}`, "bad_unique_id: unique_id has control character U+0001 at byte 1"},
	}
	for _, tt := range tests {
		_, err := DecodeRating([]byte(tt.in), RatingLimits{})
		if err == nil || err.Error() != tt.want {
			t.Errorf("DecodeRating(%q) = %v, want %q", tt.in, err, tt.want)
		}
	}
}

func TestDecodeRatingDetailsNeverQuoteTheUniqueID(t *testing.T) {
	const secret = "s3cr3t"
	for _, in := range []string{
		`{"rating":0,"unique_id":"` + secret + `"}`,
		`{"rating":5,"unique_id":"` + secret + `\u0000"}`,
		`{"rating":5,"unique_id":"` + secret + strings.Repeat("x", 200) + `"}`,
	} {
		_, err := DecodeRating([]byte(in), RatingLimits{})
		if err == nil || strings.Contains(err.Error(), secret) {
			t.Errorf("DecodeRating(%q) = %v, want an error without the id", in, err)
		}
	}
}

func TestDecodeRatingAliasesTheInputOnlyForUnescapedIDs(t *testing.T) {
	plain := []byte(`{"rating":5,"unique_id":"abc"}`)
	r, err := DecodeRating(plain, RatingLimits{})
	if err != nil {
		t.Fatal(err)
	}
	plain[bytes.Index(plain, []byte("abc"))] = 'X'
	if string(r.UniqueID) != "Xbc" {
		t.Errorf("after changing the input, UniqueID = %q, want it to alias the input (%q)", r.UniqueID, "Xbc")
	}

	escaped := []byte(`{"rating":5,"unique_id":"a\/c"}`)
	r, err = DecodeRating(escaped, RatingLimits{})
	if err != nil {
		t.Fatal(err)
	}
	escaped[bytes.Index(escaped, []byte(`a\/c`))] = 'X'
	if string(r.UniqueID) != "a/c" {
		t.Errorf("after changing the input, UniqueID = %q, want an unescaped copy %q", r.UniqueID, "a/c")
	}
}

func TestDecodeClassifyEncodeDoesNotAllocateForUnescapedIDs(t *testing.T) {
	in := []byte(`{"rating": 42, "unique_id": "` + exampleUUID + `"}`)
	dst := make([]byte, 0, 256)
	allocs := testing.AllocsPerRun(100, func() {
		r, err := DecodeRating(in, RatingLimits{})
		if err != nil {
			t.Fatal(err)
		}
		dst = AppendShadow(dst[:0], Classify(r.Rating), r.UniqueID, 1700000000, r.Rating)
	})
	if allocs != 0 {
		t.Errorf("decode, classify and encode made %v allocations, want 0", allocs)
	}
}

func TestDecodeErrorReportsReasonAndDetail(t *testing.T) {
	var err error = &DecodeError{Reason: ReasonOutOfRange, Detail: "rating 101 outside 1..100"}
	if got, want := err.Error(), "out_of_range: rating 101 outside 1..100"; got != want {
		t.Errorf("Error() = %q, want %q", got, want)
	}
	wrapped := errors.Join(errors.New("consume"), err)
	var de *DecodeError
	if !errors.As(wrapped, &de) || de.Reason != ReasonOutOfRange {
		t.Errorf("errors.As through a wrapper = %v, want the DecodeError", de)
	}
}

func TestReasonsListEveryReasonOnceAsSnakeCase(t *testing.T) {
	want := []Reason{ReasonTooLarge, ReasonMalformedJSON, ReasonMissingField, ReasonWrongType, ReasonOutOfRange, ReasonBadID}
	if len(Reasons) != len(want) {
		t.Fatalf("Reasons = %v, want %v", Reasons, want)
	}
	for i, r := range Reasons {
		if r != want[i] {
			t.Errorf("Reasons[%d] = %s, want %s", i, r, want[i])
		}
		for _, c := range r {
			if (c < 'a' || c > 'z') && c != '_' {
				t.Errorf("reason %q is not snake_case", r)
				break
			}
		}
	}
}

// codecShadowRecord is the shadow topic's JSON as a consumer would decode it.
type codecShadowRecord struct {
	Type          string `json:"type"`
	UniqueID      string `json:"unique_id"`
	EmitTimestamp int64  `json:"emit_timestamp"`
	Rating        int64  `json:"rating"`
}

func TestAppendShadowWritesTheDocumentedLayout(t *testing.T) {
	got := AppendShadow(nil, Sha, []byte("abc"), 1700000000, 3)
	want := `{"type":"Sha","unique_id":"abc","emit_timestamp":1700000000,"rating":3}`
	if string(got) != want {
		t.Errorf("AppendShadow = %s, want %s", got, want)
	}
}

func TestAppendShadowAppendsToTheGivenBuffer(t *testing.T) {
	dst := []byte("prefix|")
	got := AppendShadow(dst, Dow, []byte("x"), 1, 5)
	want := `prefix|{"type":"Dow","unique_id":"x","emit_timestamp":1,"rating":5}`
	if string(got) != want {
		t.Errorf("AppendShadow = %s, want %s", got, want)
	}
}

// encodingJSONRoundTrip returns what a JSON consumer reads back for id after
// encoding/json wrote it: the reference for how invalid UTF-8 is repaired.
func encodingJSONRoundTrip(t testing.TB, id []byte) string {
	t.Helper()
	b, err := json.Marshal(string(id))
	if err != nil {
		t.Fatal(err)
	}
	var s string
	if err := json.Unmarshal(b, &s); err != nil {
		t.Fatal(err)
	}
	return s
}

// checkShadowRoundTrip asserts that out is valid JSON with exactly the
// shadow record's fields, holding the values given.
func checkShadowRoundTrip(t testing.TB, out []byte, typ Type, id []byte, ts, rating int64) {
	t.Helper()
	if !json.Valid(out) {
		t.Fatalf("AppendShadow wrote invalid JSON: %q", out)
	}
	dec := json.NewDecoder(bytes.NewReader(out))
	dec.DisallowUnknownFields()
	var rec codecShadowRecord
	if err := dec.Decode(&rec); err != nil {
		t.Fatalf("decode %q: %v", out, err)
	}
	want := codecShadowRecord{Type: typ.String(), UniqueID: encodingJSONRoundTrip(t, id), EmitTimestamp: ts, Rating: rating}
	if rec != want {
		t.Fatalf("AppendShadow output %q decodes to %+v, want %+v", out, rec, want)
	}
}

func TestAppendShadowOutputRoundTripsThroughEncodingJSON(t *testing.T) {
	var controls []byte
	for c := byte(0); c < 0x20; c++ {
		controls = append(controls, 'a', c)
	}
	tests := []struct {
		name string
		id   string
	}{
		{"uuid", exampleUUID},
		{"empty", ""},
		{"quotes and backslashes", `a"b\c\"d\\`},
		{"every C0 control", string(controls)},
		{"DEL and C1", "a\x7fb\u0085c"},
		{"HTML characters", `</script>&<!--`},
		{"non-ASCII", "ünïcødé-😀-日本"},
		{"line and paragraph separators", "a\u2028b\u2029c"},
		{"invalid UTF-8", "a\xffb\xc3\xed\xa0\x80c\xf0\x9f"},
		{"replacement character itself", "a\ufffdb"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			for _, typ := range Types {
				for _, n := range []int64{0, 1, -1, math.MaxInt64, math.MinInt64} {
					out := AppendShadow(nil, typ, []byte(tt.id), n, -n)
					checkShadowRoundTrip(t, out, typ, []byte(tt.id), n, -n)
				}
			}
		})
	}
}

func TestDecodedIDsRoundTripThroughAppendShadow(t *testing.T) {
	for _, in := range []string{
		`{"rating":15,"unique_id":"` + exampleUUID + `"}`,
		`{"rating":15,"unique_id":"a\"b\\c\/d\u00e9\ud83d\ude00\u2028"}`,
		`{"rating":15,"unique_id":"ünïcødé"}`,
	} {
		r, err := DecodeRating([]byte(in), RatingLimits{})
		if err != nil {
			t.Fatalf("DecodeRating(%q): %v", in, err)
		}
		out := AppendShadow(nil, Classify(r.Rating), r.UniqueID, 1700000000, r.Rating)
		var rec codecShadowRecord
		if err := json.Unmarshal(out, &rec); err != nil {
			t.Fatalf("unmarshal %q: %v", out, err)
		}
		var want struct {
			UniqueID string `json:"unique_id"`
		}
		if err := json.Unmarshal([]byte(in), &want); err != nil {
			t.Fatal(err)
		}
		if rec.UniqueID != want.UniqueID || rec.Type != "ShaDow" || rec.Rating != 15 {
			t.Errorf("%q → %q → %+v, want unique_id %q, ShaDow, 15", in, out, rec, want.UniqueID)
		}
	}
}
