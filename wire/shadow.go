package wire

import (
	"bytes"
	"encoding/json"
	"math"
	"strconv"
)

// Type is the class of a rating. Its numeric values are those of the
// ClickHouse column type Enum8('Incompatible'=0,'Sha'=1,'Dow'=2,'ShaDow'=3).
type Type uint8

// The classes of a rating, in enum order.
const (
	// Incompatible is a rating that is a multiple of neither 3 nor 5.
	Incompatible Type = iota
	// Sha is a multiple of 3 that is not a multiple of 5.
	Sha
	// Dow is a multiple of 5 that is not a multiple of 3.
	Dow
	// ShaDow is a multiple of 15.
	ShaDow
)

// Types lists every Type in enum order. Callers must not modify it.
var Types = []Type{Incompatible, Sha, Dow, ShaDow}

var typeNames = [...]string{
	Incompatible: "Incompatible",
	Sha:          "Sha",
	Dow:          "Dow",
	ShaDow:       "ShaDow",
}

// String returns the name of t as it appears in the output JSON and in the
// ClickHouse enum, or "Type(n)" for a value outside Types.
func (t Type) String() string {
	if int(t) < len(typeNames) {
		return typeNames[t]
	}
	return "Type(" + strconv.Itoa(int(t)) + ")"
}

// ParseType returns the Type named s. Names are matched exactly and
// case-sensitively: "Sha" is a Type, "sha" is not.
func ParseType(s string) (Type, bool) {
	for i, name := range typeNames {
		if s == name {
			return Type(i), true
		}
	}
	return 0, false
}

// Classify returns the class of rating: ShaDow for a multiple of 15, else
// Sha for a multiple of 3, else Dow for a multiple of 5, else Incompatible.
// Zero and negative multiples count, so Classify(0) is ShaDow.
func Classify(rating int64) Type {
	switch {
	case rating%15 == 0:
		return ShaDow
	case rating%3 == 0:
		return Sha
	case rating%5 == 0:
		return Dow
	default:
		return Incompatible
	}
}

// Shadow is one record of the shadow topic: a rating, classified.
type Shadow struct {
	// Type is the class of Rating (see Classify).
	Type Type
	// UniqueID is the rating's unique_id. DecodeShadow makes it alias the
	// value when the JSON string had no escapes.
	UniqueID []byte
	// EmitTimestamp is the rating record's Kafka timestamp, unix seconds.
	EmitTimestamp int64
	// Rating is the rating.
	Rating int64
}

// The shadow topic's contract: what a record must be for ClickHouse's Kafka
// engine table to parse it and for the store to keep it.
const (
	// MaxShadowIDBytes is the longest unique_id the shadow topic's contract
	// allows, in bytes.
	MaxShadowIDBytes = 1024
)

// AppendShadow appends to dst the shadow topic's JSON for one rating and
// returns the extended buffer:
//
//	{"type":"Sha","unique_id":"<id>","emit_timestamp":1700000000,"rating":3}
//
// The id is escaped as encoding/json would: '"', '\\' and control
// characters are escaped, as are U+2028 and U+2029, and each byte of
// invalid UTF-8 becomes U+FFFD, so the output is always valid JSON. t
// should be one of Types; any other value is written as its String. With a
// dst of enough capacity AppendShadow does not allocate.
func AppendShadow(dst []byte, t Type, uniqueID []byte, emitUnix int64, rating int64) []byte {
	dst = append(dst, `{"type":"`...)
	dst = append(dst, t.String()...)
	dst = append(dst, `","unique_id":"`...)
	dst = appendEscaped(dst, uniqueID)
	dst = append(dst, `","emit_timestamp":`...)
	dst = strconv.AppendInt(dst, emitUnix, 10)
	dst = append(dst, `,"rating":`...)
	dst = strconv.AppendInt(dst, rating, 10)
	return append(dst, '}')
}

// CheckShadow reports why value is not a shadow event the stores keep, or
// nil if it is one:
//
//	{"type":"Sha","unique_id":"<1..1024 bytes>","emit_timestamp":<unix seconds, 2000..2106>,"rating":<Int32>}
//
// with type the classification of rating (see Classify).
func CheckShadow(value []byte) error {
	_, err := DecodeShadow(value)
	return err
}

// DecodeShadow decodes one record of the shadow topic, checking it against
// the topic's contract as CheckShadow does; a record the contract refuses
// is an error wrapping ErrContract. A record AppendShadow wrote for an id
// without escapes is decoded without allocating, UniqueID aliasing value.
func DecodeShadow(value []byte) (Shadow, error) {
	if s, ok := laidOutShadow(value); ok {
		return s, nil
	}
	if s, ok := plainShadow(value); ok {
		return s, nil
	}
	return checkShadowJSON(value)
}

// checkShadowJSON is CheckShadow's full check, with encoding/json.
func checkShadowJSON(value []byte) (Shadow, error) {
	var (
		typ, id    string
		ts, rating int64
	)
	err := checkObject(value, []field{
		{"type", func(d *json.Decoder) (err error) { typ, err = stringValue(d); return }},
		{"unique_id", func(d *json.Decoder) (err error) { id, err = stringValue(d); return }},
		{"emit_timestamp", func(d *json.Decoder) (err error) { ts, err = intValue(d, 0, math.MaxUint32); return }},
		{"rating", func(d *json.Decoder) (err error) { rating, err = intValue(d, math.MinInt32, math.MaxInt32); return }},
	})
	switch {
	case err != nil:
		return Shadow{}, err
	case id == "":
		return Shadow{}, contractErr("unique_id is empty")
	case len(id) > MaxShadowIDBytes:
		return Shadow{}, contractErr("unique_id is %d bytes, over %d", len(id), MaxShadowIDBytes)
	case ts < MinUnix:
		return Shadow{}, contractErr("emit_timestamp %d is before 2000", ts)
	}
	want := Classify(rating)
	if typ != want.String() {
		return Shadow{}, contractErr("type %q is not the type of rating %d (%s)", typ, rating, want)
	}
	return Shadow{Type: want, UniqueID: []byte(id), EmitTimestamp: ts, Rating: rating}, nil
}

// laidOutShadow is CheckShadow's fastest path: one pass over a record laid
// out byte for byte as AppendShadow writes it for an id without escapes,
// control characters or invalid UTF-8, numbers without leading zeros.
// Like plainShadow, it reports true only for a record the contract keeps,
// and leaves every other to the slower paths. The guard audits every
// shadow record with it: the scanner's generic object walk cost a tenth of
// the shadow agent's CPU.
func laidOutShadow(value []byte) (Shadow, bool) {
	b, ok := cutPrefix(value, `{"type":"`)
	if !ok {
		return Shadow{}, false
	}
	i := bytes.IndexByte(b, '"')
	if i < 0 {
		return Shadow{}, false
	}
	typ := b[:i]
	if b, ok = cutPrefix(b[i:], `","unique_id":"`); !ok {
		return Shadow{}, false
	}
	id, b, ok := plainString(b, MaxShadowIDBytes)
	if !ok {
		return Shadow{}, false
	}
	if b, ok = cutPrefix(b, `,"emit_timestamp":`); !ok {
		return Shadow{}, false
	}
	ts, n := leadingInt(b)
	if n == 0 {
		return Shadow{}, false
	}
	if b, ok = cutPrefix(b[n:], `,"rating":`); !ok {
		return Shadow{}, false
	}
	rating, n := leadingInt(b)
	if n == 0 || string(b[n:]) != "}" {
		return Shadow{}, false
	}
	class := Classify(rating)
	if ts < MinUnix || ts > math.MaxUint32 || rating < math.MinInt32 || rating > math.MaxInt32 || string(typ) != class.String() {
		return Shadow{}, false
	}
	return Shadow{Type: class, UniqueID: id, EmitTimestamp: ts, Rating: rating}, true
}

// shadowKeys are the keys of a shadow event, in the contract's order.
var shadowKeys = []string{"type", "unique_id", "emit_timestamp", "rating"}

// plainShadow is CheckShadow's fast path, on the decoders' scanner: it
// reports true only for a record the contract keeps whose strings have no
// escapes, which is every record AppendShadow writes for a plain id. Any
// other record, good or bad, is left to the full check, so verdicts and
// their wording are the full check's.
func plainShadow(value []byte) (Shadow, bool) {
	f := fields{names: shadowKeys}
	if f.scan(value, len(value)) != nil || f.others != 0 {
		return Shadow{}, false
	}
	typ, id, ts, rating := f.vals[0], f.vals[1], f.vals[2], f.vals[3]
	if typ.kind != kindString || typ.escaped || id.kind != kindString || id.escaped ||
		ts.kind != kindNumber || !ts.plain || rating.kind != kindNumber || !rating.plain {
		return Shadow{}, false
	}
	t, ok1 := parseInt(value[ts.start:ts.end])
	r, ok2 := parseInt(value[rating.start:rating.end])
	n := id.end - id.start
	class := Classify(r)
	if !ok1 || !ok2 || n <= 0 || n > MaxShadowIDBytes ||
		t < MinUnix || t > math.MaxUint32 || r < math.MinInt32 || r > math.MaxInt32 ||
		string(value[typ.start:typ.end]) != class.String() {
		return Shadow{}, false
	}
	return Shadow{Type: class, UniqueID: value[id.start:id.end], EmitTimestamp: t, Rating: r}, true
}
