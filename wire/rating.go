package wire

import (
	"cmp"
	"errors"
	"fmt"
	"strconv"
	"unicode/utf8"
)

// Rating is one decoded input record.
type Rating struct {
	// Rating is the rating, within the RatingLimits it was decoded with.
	Rating int64
	// UniqueID is the record's identifier: valid UTF-8, not empty, no
	// control characters. When the JSON string had no escapes it aliases
	// the buffer given to DecodeRating, so it is valid only as long as that
	// buffer is; copy it to keep it longer.
	UniqueID []byte
}

// Defaults of RatingLimits, and of VisitLimits' sizes.
const (
	// DefaultMinRating and DefaultMaxRating bound a rating when both
	// limits are zero.
	DefaultMinRating = 1
	DefaultMaxRating = 100
	// DefaultMaxIDLen is the longest unique_id (and visit id or store_id)
	// accepted, in bytes.
	DefaultMaxIDLen = 128
	// DefaultMaxMessageBytes is the largest message accepted, in bytes.
	DefaultMaxMessageBytes = 64 << 10
)

// RatingLimits bounds what DecodeRating accepts. The zero value means the
// defaults, DefaultRatingLimits.
type RatingLimits struct {
	// MinRating and MaxRating bound the rating, inclusive. When both are
	// zero they default to DefaultMinRating and DefaultMaxRating; any other
	// pair is used as given, so 0..100 is written {MinRating: 0, MaxRating:
	// 100}. (The range holding only 0 is the one range that cannot be
	// written.)
	MinRating, MaxRating int64
	// MaxIDLen is the longest unique_id accepted, in bytes of UTF-8 after
	// unescaping. Default DefaultMaxIDLen.
	MaxIDLen int
	// MaxMessageBytes is the largest message accepted, in bytes. Default
	// DefaultMaxMessageBytes.
	MaxMessageBytes int
}

// DefaultRatingLimits returns the limits used for zero fields: ratings
// 1..100, unique_id up to 128 bytes, messages up to 64 KiB.
func DefaultRatingLimits() RatingLimits { return RatingLimits{}.WithDefaults() }

// WithDefaults returns l with its zero fields set to the defaults.
func (l RatingLimits) WithDefaults() RatingLimits {
	if l.MinRating == 0 && l.MaxRating == 0 {
		l.MinRating, l.MaxRating = DefaultMinRating, DefaultMaxRating
	}
	l.MaxIDLen = cmp.Or(l.MaxIDLen, DefaultMaxIDLen)
	l.MaxMessageBytes = cmp.Or(l.MaxMessageBytes, DefaultMaxMessageBytes)
	return l
}

// Validate checks that MinRating is not above MaxRating and that the sizes
// are not negative; zero fields, which mean the defaults, pass. DecodeRating
// does not check its limits; call Validate once when building the
// configuration.
func (l RatingLimits) Validate() error {
	var errs []error
	if l.MinRating > l.MaxRating {
		errs = append(errs, fmt.Errorf("rating limits: min rating %d above max rating %d", l.MinRating, l.MaxRating))
	}
	if l.MaxIDLen < 0 {
		errs = append(errs, fmt.Errorf("rating limits: max unique_id length %d is negative", l.MaxIDLen))
	}
	if l.MaxMessageBytes < 0 {
		errs = append(errs, fmt.Errorf("rating limits: max message size %d is negative", l.MaxMessageBytes))
	}
	return errors.Join(errs...)
}

// DecodeRating decodes one message value from the dominate topic. On
// failure the error is a *DecodeError whose Reason says which check failed
// (see the Reason constants for the order they are checked in).
//
// The input must be exactly one JSON object (RFC 8259, UTF-8), optionally
// surrounded by whitespace. Keys may come in any order. Keys other than
// "rating" and "unique_id" are skipped, but their values must still be
// valid JSON, nested at most 32 deep. Keys are compared exactly after
// unescaping, so "r\u0061ting" is "rating" but "Rating" is unknown.
// "rating" and "unique_id" may each appear only once: a repeat is
// malformed_json, so that no reader of the same record can see a
// different value.
//
// The rating must be a plain JSON integer: 15 is accepted, while 15.0,
// 1.5e1 and "15" are wrong_type. An integer too large for an int64 is
// out_of_range.
//
// When the unique_id string has no escapes, Rating.UniqueID aliases value
// and decoding allocates nothing; otherwise it is unescaped into a new
// slice.
func DecodeRating(value []byte, lim RatingLimits) (Rating, error) {
	lim = lim.WithDefaults()
	if r, ok := laidOutRating(value, lim); ok {
		return r, nil
	}
	return scanRating(value, lim)
}

// scanRating is DecodeRating on the scanner, for any layout; lim has its
// defaults.
func scanRating(value []byte, lim RatingLimits) (Rating, error) {
	f := fields{names: ratingKeys}
	if err := f.scan(value, lim.MaxMessageBytes); err != nil {
		return Rating{}, err
	}
	r, err := f.rating(value, lim)
	if err != nil {
		return Rating{}, err
	}
	return r, nil
}

// laidOutRating is DecodeRating's fast path: one pass over a rating laid
// out byte for byte as AppendRating writes it, for an id without escapes.
// It reports true only for a rating the scanner accepts, with the same
// fields, and leaves every other, good or bad, to the scanner, so verdicts
// and their wording are the scanner's.
func laidOutRating(value []byte, lim RatingLimits) (Rating, bool) {
	if len(value) > lim.MaxMessageBytes {
		return Rating{}, false
	}
	b, ok := cutPrefix(value, `{"rating":`)
	if !ok {
		return Rating{}, false
	}
	rating, n := leadingInt(b)
	if n == 0 || rating < lim.MinRating || rating > lim.MaxRating {
		return Rating{}, false
	}
	if b, ok = cutPrefix(b[n:], `,"unique_id":"`); !ok {
		return Rating{}, false
	}
	id, rest, ok := plainString(b, lim.MaxIDLen)
	if !ok || string(rest) != "}" || checkID(id, lim.MaxIDLen, true) != nil {
		return Rating{}, false
	}
	return Rating{Rating: rating, UniqueID: id}, true
}

// AppendRating appends to dst the dominate topic's JSON for r and returns
// the extended buffer:
//
//	{"rating":42,"unique_id":"<id>"}
//
// The id is escaped as AppendShadow escapes it. With a dst of enough
// capacity AppendRating does not allocate.
func AppendRating(dst []byte, r Rating) []byte {
	dst = append(dst, `{"rating":`...)
	dst = strconv.AppendInt(dst, r.Rating, 10)
	dst = append(dst, `,"unique_id":`...)
	dst = AppendJSONString(dst, r.UniqueID)
	return append(dst, '}')
}

// ratingKeys are the keys DecodeRating looks for, indexed by ratingField
// and idField.
var ratingKeys = []string{"rating", "unique_id"}

const (
	ratingField = iota
	idField
)

// rating checks the scanned fields against lim and builds the Rating.
func (f *fields) rating(buf []byte, lim RatingLimits) (Rating, *DecodeError) {
	ratingVal, idVal := f.vals[ratingField], f.vals[idField]
	switch ratingVal.kind {
	case kindAbsent:
		return Rating{}, decodeErr(ReasonMissingField, `missing field "rating"`)
	case kindNull:
		return Rating{}, decodeErr(ReasonMissingField, `field "rating" is null`)
	}
	switch idVal.kind {
	case kindAbsent:
		return Rating{}, decodeErr(ReasonMissingField, `missing field "unique_id"`)
	case kindNull:
		return Rating{}, decodeErr(ReasonMissingField, `field "unique_id" is null`)
	}
	tok := buf[ratingVal.start:ratingVal.end]
	if ratingVal.kind != kindNumber {
		return Rating{}, decodeErr(ReasonWrongType, "rating is %s, want an integer", ratingVal.kind)
	}
	if !ratingVal.plain {
		return Rating{}, decodeErr(ReasonWrongType, "rating %s is not a plain integer", clip(tok))
	}
	if idVal.kind != kindString {
		return Rating{}, decodeErr(ReasonWrongType, "unique_id is %s, want a string", idVal.kind)
	}
	n, ok := parseInt(tok)
	if !ok || n < lim.MinRating || n > lim.MaxRating {
		return Rating{}, decodeErr(ReasonOutOfRange, "rating %s outside %d..%d", clip(tok), lim.MinRating, lim.MaxRating)
	}
	id := buf[idVal.start:idVal.end]
	if idVal.escaped {
		var p unescapeProblem
		id, p = appendUnescaped(make([]byte, 0, min(len(id), max(lim.MaxIDLen, 0))), id, lim.MaxIDLen)
		switch p {
		case tooLong:
			return Rating{}, decodeErr(ReasonBadID, "unique_id is over %d bytes", lim.MaxIDLen)
		case unpairedSurrogate:
			return Rating{}, decodeErr(ReasonBadID, "unique_id has an unpaired UTF-16 surrogate escape")
		}
	}
	if err := checkID(id, lim.MaxIDLen, idVal.escaped || idVal.unusual); err != nil {
		return Rating{}, err
	}
	return Rating{Rating: n, UniqueID: id}, nil
}

// checkID applies the unique_id rules to a decoded, valid UTF-8 id. Only
// when scan is set can id hold a control character; otherwise the scanner
// has already seen that every byte is printable ASCII.
func checkID(id []byte, maxLen int, scan bool) *DecodeError {
	if len(id) == 0 {
		return decodeErr(ReasonBadID, "unique_id is empty")
	}
	if len(id) > maxLen {
		return decodeErr(ReasonBadID, "unique_id is %d bytes, limit %d", len(id), maxLen)
	}
	if !scan {
		return nil
	}
	for i, c := range id {
		// C1 controls U+0080–U+009F are 0xC2 0x80–0xC2 0x9F in UTF-8; the
		// input is valid UTF-8, so the byte after 0xC2 is at least 0x80.
		if c < 0x20 || c == 0x7f || (c == 0xc2 && i+1 < len(id) && id[i+1] <= 0x9f) {
			r, _ := utf8.DecodeRune(id[i:])
			return decodeErr(ReasonBadID, "unique_id has control character %U at byte %d", r, i)
		}
	}
	return nil
}
