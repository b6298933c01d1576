package wire

import (
	"bytes"
	"cmp"
	"math"
	"strconv"
	"time"
)

// Defaults of VisitLimits' bounds on time; its sizes default to
// DefaultMaxMessageBytes and DefaultMaxIDLen.
const (
	// DefaultMaxFuture is how far after its record's Kafka timestamp a
	// visit may be stamped.
	DefaultMaxFuture = time.Hour
	// DefaultMaxPast is how far before its record's Kafka timestamp a visit
	// may be stamped.
	DefaultMaxPast = 7 * 24 * time.Hour
)

// VisitLimits bound what DecodeVisit accepts. Zero or negative fields mean
// the defaults.
type VisitLimits struct {
	// MaxMessageBytes caps a message. Default DefaultMaxMessageBytes.
	MaxMessageBytes int
	// MaxIDLen caps id and store_id, in bytes. Default DefaultMaxIDLen.
	MaxIDLen int
	// MaxFuture is how far after the message's Kafka timestamp a visit may
	// be stamped. Default DefaultMaxFuture.
	MaxFuture time.Duration
	// MaxPast is how far before the message's Kafka timestamp a visit may
	// be stamped. Default DefaultMaxPast.
	MaxPast time.Duration
}

// WithDefaults returns l with its zero or negative fields set to the
// defaults.
func (l VisitLimits) WithDefaults() VisitLimits {
	l.MaxMessageBytes = cmp.Or(max(l.MaxMessageBytes, 0), DefaultMaxMessageBytes)
	l.MaxIDLen = cmp.Or(max(l.MaxIDLen, 0), DefaultMaxIDLen)
	l.MaxFuture = cmp.Or(max(l.MaxFuture, 0), DefaultMaxFuture)
	l.MaxPast = cmp.Or(max(l.MaxPast, 0), DefaultMaxPast)
	return l
}

// MinUnix is the earliest timestamp a record may carry, unix seconds:
// 2000-01-01T00:00:00Z. A visit stamped earlier is bad_timestamp, the
// shadow agent dead-letters a rating record stamped earlier, and the shadow
// topic's contract refuses an earlier emit_timestamp.
const MinUnix = 946684800

// FormatSeconds writes unix seconds as RFC 3339 when they are a time of
// years 1 to 9999, else as the number: how a timestamp is quoted in a
// DecodeError's detail.
func FormatSeconds(s float64) string {
	if s >= -62135596800 && s < 253402300800 {
		return time.UnixMilli(int64(math.Floor(s * 1000))).UTC().Format(time.RFC3339Nano)
	}
	return strconv.FormatFloat(s, 'g', -1, 64) + " s"
}

// Visit is one record of the visits topic, validated.
type Visit struct {
	ID        string  `json:"id"`
	AccountID int64   `json:"account_id"`
	StoreID   *string `json:"store_id"`
	// Timestamp is unix seconds with a fraction.
	Timestamp float64 `json:"timestamp"`
}

// Time returns the visit's timestamp, to the millisecond.
func (v Visit) Time() time.Time { return time.UnixMilli(int64(math.Floor(v.Timestamp * 1000))) }

// GroupKey is the repartition key of the visit's (account_id, store_id):
// `352:"uk"`, or `352:null` without a store.
func (v Visit) GroupKey() []byte { return AppendGroupKey(nil, v.AccountID, v.storeBytes()) }

func (v Visit) storeBytes() []byte {
	if v.StoreID == nil {
		return nil
	}
	return []byte(*v.StoreID)
}

// AppendVisit appends the visit's canonical JSON (see
// AppendRepartitionedJSON):
//
//	{"id":"<id>","account_id":352,"store_id":"uk","timestamp":1700000000.123456}
//
// with "store_id":null for no store, strings escaped as encoding/json would
// and the timestamp in the shortest decimal that reads back as the same
// float64.
func AppendVisit(dst []byte, v Visit) []byte {
	return AppendRepartitionedJSON(dst, Repartitioned{ID: []byte(v.ID), AccountID: v.AccountID, StoreID: v.storeBytes(), Timestamp: v.Timestamp})
}

// visitKeys are the keys of a visit, indexed by the visit*Field constants:
// the order in which DecodeVisit checks them.
var visitKeys = []string{"id", "account_id", "store_id", "timestamp"}

const (
	visitIDField = iota
	visitAccountField
	visitStoreField
	visitTimestampField
)

// DecodeVisit parses and checks one visit. recorded is the message's Kafka
// timestamp, against which the visit's own timestamp is judged, so that the
// verdict does not depend on when the message is processed; the zero time
// skips those two bounds.
//
// The rules are DecodeRating's, applied to the keys "id", "account_id",
// "store_id" and "timestamp":
//   - the message is one JSON object (RFC 8259, UTF-8), optionally between
//     whitespace, nested at most 32 deep; anything else, invalid UTF-8 in a
//     string included, is malformed_json;
//   - keys are compared exactly after unescaping: "ID" or "Id" is not "id"
//     but an unknown key;
//   - each of the four may appear only once: a repeat is malformed_json
//     ("duplicate key"), so no reader of the same record can see another
//     value than the agents do;
//   - other keys are skipped with their values, which must still be valid
//     JSON. So is the original Faust producer's record metadata,
//     "__faust": {"ns": "…"}.
//
// Then, in this order, the first problem found is reported:
//   - id: absent or null is missing_field, not a string wrong_type; empty,
//     over VisitLimits.MaxIDLen bytes once unescaped, or holding an unpaired
//     UTF-16 surrogate escape is bad_unique_id;
//   - account_id: absent or null is missing_field; anything but a plain
//     JSON integer that fits an int64 (1.0, 1e3, "1") is wrong_type;
//   - store_id: absent or null means no store; not a string is wrong_type;
//     empty, over MaxIDLen bytes or an unpaired surrogate is bad_store_id;
//   - timestamp: absent or null is missing_field; not a JSON number, or one
//     too large for a float64, is wrong_type. Integers and fractions
//     (1606470000.123456, as Faust sends them) and exponents are numbers.
//     One before 2000, or more than VisitLimits.MaxFuture after or MaxPast
//     before recorded, is bad_timestamp.
//
// DecodeVisit copies the strings out of value; ScanVisit applies the same
// rules without the copies.
func DecodeVisit(value []byte, recorded time.Time, lim VisitLimits) (Visit, *DecodeError) {
	r, err := ScanVisit(value, recorded, lim)
	if err != nil {
		return Visit{}, err
	}
	return r.Visit(), nil
}

// DecodeRepartitioned decodes a record of the repartition topic: the
// compact form AppendRepartitioned writes, or the JSON that
// AppendRepartitionedJSON writes, by DecodeVisit's rules. It decodes in
// place and allocates only to unescape a JSON string that has escapes.
func DecodeRepartitioned(value []byte, recorded time.Time, lim VisitLimits) (Repartitioned, *DecodeError) {
	if len(value) > 0 && value[0] == compactMark {
		return decodeCompact(value, recorded, lim.WithDefaults())
	}
	return ScanVisit(value, recorded, lim)
}

// ScanVisit decodes a record of the visits topic, JSON, with DecodeVisit's
// rules, in place: it allocates only to unescape a string that has
// escapes.
func ScanVisit(value []byte, recorded time.Time, lim VisitLimits) (Repartitioned, *DecodeError) {
	lim = lim.WithDefaults()
	if v, ok := laidOutVisit(value, recorded, lim); ok {
		return v, nil
	}
	return scanVisit(value, recorded, lim)
}

// scanVisit is ScanVisit on the scanner, for any layout; lim has its
// defaults.
func scanVisit(value []byte, recorded time.Time, lim VisitLimits) (Repartitioned, *DecodeError) {
	f := fields{names: visitKeys}
	if err := f.scan(value, lim.MaxMessageBytes); err != nil {
		return Repartitioned{}, err
	}
	var v Repartitioned

	idVal := f.vals[visitIDField]
	if err := required(idVal, "id", kindString, "a string"); err != nil {
		return Repartitioned{}, err
	}
	id, p := visitString(value, idVal, lim.MaxIDLen)
	if p != 0 || len(id) == 0 {
		return Repartitioned{}, decodeErr(ReasonBadID, "id %s (want 1..%d bytes of text)", describeString(id, p, lim.MaxIDLen), lim.MaxIDLen)
	}
	v.ID = id

	accVal := f.vals[visitAccountField]
	if err := required(accVal, "account_id", kindNumber, "an integer"); err != nil {
		return Repartitioned{}, err
	}
	tok := value[accVal.start:accVal.end]
	acc, ok := parseInt(tok)
	if !accVal.plain || !ok {
		return Repartitioned{}, decodeErr(ReasonWrongType, "account_id is not an integer: %s", clip(tok))
	}
	v.AccountID = acc

	switch storeVal := f.vals[visitStoreField]; storeVal.kind {
	case kindAbsent, kindNull:
	case kindString:
		store, p := visitString(value, storeVal, lim.MaxIDLen)
		if p != 0 || len(store) == 0 {
			return Repartitioned{}, decodeErr(ReasonBadStoreID, "store_id %s (want 1..%d bytes of text, or null)", describeString(store, p, lim.MaxIDLen), lim.MaxIDLen)
		}
		v.StoreID = store
	default:
		return Repartitioned{}, decodeErr(ReasonWrongType, "store_id is %s, want a string or null", storeVal.kind)
	}

	tsVal := f.vals[visitTimestampField]
	if err := required(tsVal, "timestamp", kindNumber, "a number of seconds"); err != nil {
		return Repartitioned{}, err
	}
	tok = value[tsVal.start:tsVal.end]
	ts, tsText, perr := parseSeconds(tok)
	if perr != nil || math.IsInf(ts, 0) {
		return Repartitioned{}, decodeErr(ReasonWrongType, "timestamp is not a number of seconds: %s", clip(tok))
	}
	if err := checkSeconds(ts, recorded, lim); err != nil {
		return Repartitioned{}, err
	}
	v.Timestamp, v.text = ts, tsText
	return v, nil
}

// laidOutVisit is ScanVisit's fast path: one pass over a visit laid out
// byte for byte as AppendVisit writes it, for strings without escapes,
// control characters or invalid UTF-8 and a timestamp without an exponent.
// It reports true only for a visit ScanVisit accepts, with the same
// fields, and leaves every other, good or bad, to the scanner, so verdicts
// and their wording are the scanner's.
func laidOutVisit(value []byte, recorded time.Time, lim VisitLimits) (Repartitioned, bool) {
	if len(value) > lim.MaxMessageBytes {
		return Repartitioned{}, false
	}
	var v Repartitioned
	b, ok := cutPrefix(value, `{"id":"`)
	if !ok {
		return Repartitioned{}, false
	}
	if v.ID, b, ok = plainString(b, lim.MaxIDLen); !ok {
		return Repartitioned{}, false
	}
	if b, ok = cutPrefix(b, `,"account_id":`); !ok {
		return Repartitioned{}, false
	}
	acc, n := leadingInt(b)
	if n == 0 {
		return Repartitioned{}, false
	}
	v.AccountID = acc
	if b, ok = cutPrefix(b[n:], `,"store_id":`); !ok {
		return Repartitioned{}, false
	}
	if rest, null := cutPrefix(b, "null"); null {
		b = rest
	} else if b, ok = cutPrefix(b, `"`); ok {
		if v.StoreID, b, ok = plainString(b, lim.MaxIDLen); !ok {
			return Repartitioned{}, false
		}
	} else {
		return Repartitioned{}, false
	}
	if b, ok = cutPrefix(b, `,"timestamp":`); !ok {
		return Repartitioned{}, false
	}
	n = plainDecimalLen(b)
	if n == 0 || string(b[n:]) != "}" {
		return Repartitioned{}, false
	}
	ts, text, err := parseSeconds(b[:n])
	if err != nil || math.IsInf(ts, 0) || checkSeconds(ts, recorded, lim) != nil {
		return Repartitioned{}, false
	}
	v.Timestamp, v.text = ts, text
	return v, true
}

// checkSeconds applies DecodeVisit's bounds to a visit's timestamp: not
// before 2000, and within lim of recorded unless that is the zero time.
func checkSeconds(ts float64, recorded time.Time, lim VisitLimits) *DecodeError {
	// Compared as seconds, before any conversion: 1e20 seconds would
	// overflow a time.Time.
	switch rec := float64(recorded.UnixMilli()) / 1000; {
	case ts < MinUnix:
		return decodeErr(ReasonBadTimestamp, "timestamp %s is before %s", FormatSeconds(ts), time.Unix(MinUnix, 0).UTC().Format("2006"))
	case !recorded.IsZero() && ts > rec+lim.MaxFuture.Seconds():
		return decodeErr(ReasonBadTimestamp, "timestamp %s is more than %s after the message was recorded", FormatSeconds(ts), lim.MaxFuture)
	case !recorded.IsZero() && ts < rec-lim.MaxPast.Seconds():
		return decodeErr(ReasonBadTimestamp, "timestamp %s is more than %s before the message was recorded", FormatSeconds(ts), lim.MaxPast)
	}
	return nil
}

// exactPow10 holds the powers of ten a float64 represents exactly.
var exactPow10 = [...]float64{1e0, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9, 1e10, 1e11, 1e12, 1e13, 1e14, 1e15, 1e16, 1e17, 1e18, 1e19, 1e20, 1e21, 1e22}

// parseSeconds converts a syntax-checked JSON number as
// strconv.ParseFloat does. A plain decimal whose digits make an integer of
// at most 2^53, such as 1700000000.123456, takes a short cut: a float64
// holds that integer exactly, and dividing it by an exact power of ten
// rounds correctly, so the result is ParseFloat's. When it has at most 15
// significant digits, the decimal without its fraction's trailing zeros is
// also the shortest that reads back as the same float64 (any two decimals
// of at most 15 digits are different float64s), which is what
// strconv.AppendFloat writes: that text is returned as short, else nil.
func parseSeconds(tok []byte) (f float64, short []byte, err error) {
	var m uint64
	digits, frac, dot := 0, 0, false
	for i, c := range tok {
		switch {
		case c >= '0' && c <= '9':
			if m == 0 && c == '0' {
				if dot {
					frac++
				}
				continue
			}
			if digits++; digits > 19 { // m would overflow
				return parseFloat(tok)
			}
			m = m*10 + uint64(c-'0')
			if dot {
				frac++
			}
		case c == '.':
			dot = true
		case c == '-' && i == 0:
		default: // an exponent
			return parseFloat(tok)
		}
	}
	if m > 1<<53 || frac >= len(exactPow10) {
		return parseFloat(tok)
	}
	f = float64(m) / exactPow10[frac]
	if tok[0] == '-' {
		f = -f
	}
	if digits > 15 {
		return f, nil, nil
	}
	short = tok
	if dot {
		// Trailing zeros go, and then the point if nothing is left after it.
		short = bytes.TrimRight(short, "0")
		if short[len(short)-1] == '.' {
			short = short[:len(short)-1]
		}
	}
	return f, short, nil
}

func parseFloat(tok []byte) (float64, []byte, error) {
	f, err := strconv.ParseFloat(string(tok), 64)
	return f, nil, err
}

// required reports a field that is absent or null (missing_field) or not
// of kind k (wrong_type, saying what it should be).
func required(sp span, name string, k kind, want string) *DecodeError {
	switch sp.kind {
	case k:
		return nil
	case kindAbsent, kindNull:
		return decodeErr(ReasonMissingField, "%s is missing", name)
	}
	return decodeErr(ReasonWrongType, "%s is %s, want %s", name, sp.kind, want)
}

// visitString returns the contents of the scanned string sp, unescaped
// into a new slice when it has escapes, else aliasing buf. It stops at
// maxLen bytes or an unpaired surrogate escape and says which.
func visitString(buf []byte, sp span, maxLen int) ([]byte, unescapeProblem) {
	raw := buf[sp.start:sp.end]
	if !sp.escaped {
		if len(raw) > maxLen {
			return raw, tooLong
		}
		return raw, 0
	}
	return appendUnescaped(make([]byte, 0, min(len(raw), maxLen)), raw, maxLen)
}

// describeString says what is wrong with a string visitString returned:
// never its contents, which may be anything.
func describeString(s []byte, p unescapeProblem, maxLen int) string {
	switch p {
	case tooLong:
		return "is over " + strconv.Itoa(maxLen) + " bytes"
	case unpairedSurrogate:
		return "has an unpaired UTF-16 surrogate escape"
	}
	return "is empty"
}
