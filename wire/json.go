package wire

import (
	"bytes"
	"fmt"
	"strconv"
	"unicode/utf16"
	"unicode/utf8"
)

// maxDepth is how deeply arrays and objects may nest, counting the
// message's own object as 1.
const maxDepth = 32

// kind is the JSON type of a scanned value.
type kind uint8

const (
	kindAbsent kind = iota
	kindNull
	kindBool
	kindNumber
	kindString
	kindArray
	kindObject
)

func (k kind) String() string {
	switch k {
	case kindNull:
		return "null"
	case kindBool:
		return "a boolean"
	case kindNumber:
		return "a number"
	case kindString:
		return "a string"
	case kindArray:
		return "an array"
	case kindObject:
		return "an object"
	default:
		return "absent"
	}
}

// span locates one scanned JSON value in the input.
type span struct {
	kind kind
	// start and end delimit the value; for a string, its contents between
	// the quotes.
	start, end int
	// escaped: a string containing backslash escapes.
	escaped bool
	// unusual: a string containing a byte outside printable ASCII (DEL or
	// non-ASCII), which the unique_id checks must look at.
	unusual bool
	// plain: a number with neither fraction nor exponent.
	plain bool
}

// maxFields is how many keys of the message's own object one decoder can
// look for.
const maxFields = 4

// fields holds the values of the keys of the message's own object that a
// decoder looks for: vals[i] is the value of the key names[i], kindAbsent
// when the key did not appear. Names are at most 16 bytes.
type fields struct {
	names []string
	vals  [maxFields]span
	// others counts the keys that are not names.
	others int
}

// scan scans value, one JSON object of at most maxBytes, recording the
// values of f's keys.
func (f *fields) scan(value []byte, maxBytes int) *DecodeError {
	if len(value) > maxBytes {
		return decodeErr(ReasonTooLarge, "message is %d bytes, limit %d", len(value), maxBytes)
	}
	s := scanner{buf: value}
	return s.document(f)
}

// clip shortens a token quoted in an error detail.
func clip(tok []byte) string {
	const most = 32
	if len(tok) > most {
		return string(tok[:most]) + "…"
	}
	return string(tok)
}

// parseInt converts a syntax-checked JSON integer, reporting false when it
// does not fit an int64.
func parseInt(tok []byte) (int64, bool) {
	neg := tok[0] == '-'
	if neg {
		tok = tok[1:]
	}
	limit := uint64(1<<63 - 1)
	if neg {
		limit = 1 << 63
	}
	var u uint64
	for _, c := range tok {
		d := uint64(c - '0')
		if u > (limit-d)/10 {
			return 0, false
		}
		u = u*10 + d
	}
	if neg {
		return -int64(u), true
	}
	return int64(u), true
}

// checkID applies the unique_id rules to a decoded, valid UTF-8 id. Only

// scanner is a strict JSON scanner over one message. It validates syntax
// and records where the values of interest are, without copying anything.
type scanner struct {
	buf []byte
	pos int
}

// plainStringByte marks the bytes a JSON string may hold without a closer
// look: printable ASCII other than '"' and '\\'.
var plainStringByte = func() (t [256]bool) {
	for c := 0x20; c < 0x7f; c++ {
		t[c] = c != '"' && c != '\\'
	}
	return t
}()

// document scans the whole message: one object between optional
// whitespace.
func (s *scanner) document(f *fields) *DecodeError {
	s.skipSpace()
	if s.pos >= len(s.buf) || s.buf[s.pos] != '{' {
		return s.unexpected("an object")
	}
	if err := s.object(1, f); err != nil {
		return err
	}
	s.skipSpace()
	if s.pos < len(s.buf) {
		return decodeErr(ReasonMalformedJSON, "unexpected %s at offset %d after the object", describeByte(s.buf[s.pos]), s.pos)
	}
	return nil
}

func (s *scanner) skipSpace() {
	buf, pos := s.buf, s.pos
	for pos < len(buf) {
		switch buf[pos] {
		case ' ', '\t', '\n', '\r':
			pos++
		default:
			s.pos = pos
			return
		}
	}
	s.pos = pos
}

// unexpected reports the byte at the scanner's position, or the end of the
// input, as a syntax error.
func (s *scanner) unexpected(want string) *DecodeError {
	if s.pos >= len(s.buf) {
		return decodeErr(ReasonMalformedJSON, "unexpected end of input at offset %d, want %s", s.pos, want)
	}
	return decodeErr(ReasonMalformedJSON, "unexpected %s at offset %d, want %s", describeByte(s.buf[s.pos]), s.pos, want)
}

func describeByte(c byte) string {
	if c >= 0x20 && c < 0x7f {
		return "character " + strconv.QuoteRune(rune(c))
	}
	return fmt.Sprintf("byte 0x%02x", c)
}

// object scans an object starting at '{', at nesting depth depth. When f is
// not nil this is the message's own object and the values of f's keys are
// recorded in f; a second occurrence of one of them is malformed_json.
func (s *scanner) object(depth int, f *fields) *DecodeError {
	s.pos++ // '{'
	s.skipSpace()
	if s.pos < len(s.buf) && s.buf[s.pos] == '}' {
		s.pos++
		return nil
	}
	for {
		if s.pos >= len(s.buf) || s.buf[s.pos] != '"' {
			return s.unexpected(`'"' to start a key`)
		}
		keyAt := s.pos
		key, err := s.str()
		if err != nil {
			return err
		}
		s.skipSpace()
		if s.pos >= len(s.buf) || s.buf[s.pos] != ':' {
			return s.unexpected("':'")
		}
		s.pos++
		s.skipSpace()
		v, err := s.value(depth)
		if err != nil {
			return err
		}
		if f != nil {
			if i := s.field(key, f.names); i >= 0 {
				if f.vals[i].kind != kindAbsent {
					return decodeErr(ReasonMalformedJSON, "duplicate key %q at offset %d", f.names[i], keyAt)
				}
				f.vals[i] = v
			} else {
				f.others++
			}
		}
		s.skipSpace()
		if s.pos >= len(s.buf) {
			return s.unexpected("',' or '}'")
		}
		switch s.buf[s.pos] {
		case ',':
			s.pos++
			s.skipSpace()
		case '}':
			s.pos++
			return nil
		default:
			return s.unexpected("',' or '}'")
		}
	}
}

// field returns the index in names of the key k, or -1. Keys are compared
// exactly after unescaping.
func (s *scanner) field(k span, names []string) int {
	raw := s.buf[k.start:k.end]
	if k.escaped {
		var tmp [16]byte
		var p unescapeProblem
		raw, p = appendUnescaped(tmp[:0], raw, len(tmp))
		if p != 0 {
			return -1
		}
	}
	for i, name := range names {
		if string(raw) == name {
			return i
		}
	}
	return -1
}

// array scans an array starting at '[', at nesting depth depth.
func (s *scanner) array(depth int) *DecodeError {
	s.pos++ // '['
	s.skipSpace()
	if s.pos < len(s.buf) && s.buf[s.pos] == ']' {
		s.pos++
		return nil
	}
	for {
		if _, err := s.value(depth); err != nil {
			return err
		}
		s.skipSpace()
		if s.pos >= len(s.buf) {
			return s.unexpected("',' or ']'")
		}
		switch s.buf[s.pos] {
		case ',':
			s.pos++
			s.skipSpace()
		case ']':
			s.pos++
			return nil
		default:
			return s.unexpected("',' or ']'")
		}
	}
}

// value scans any JSON value inside a container at nesting depth depth.
func (s *scanner) value(depth int) (span, *DecodeError) {
	if s.pos >= len(s.buf) {
		return span{}, s.unexpected("a value")
	}
	start := s.pos
	switch c := s.buf[s.pos]; c {
	case '"':
		return s.str()
	case '-', '0', '1', '2', '3', '4', '5', '6', '7', '8', '9':
		plain, err := s.number()
		return span{kind: kindNumber, start: start, end: s.pos, plain: plain}, err
	case '{', '[':
		if depth >= maxDepth {
			return span{}, decodeErr(ReasonMalformedJSON, "nesting deeper than %d at offset %d", maxDepth, s.pos)
		}
		if c == '{' {
			err := s.object(depth+1, nil)
			return span{kind: kindObject, start: start, end: s.pos}, err
		}
		err := s.array(depth + 1)
		return span{kind: kindArray, start: start, end: s.pos}, err
	case 't':
		return s.literal("true", kindBool)
	case 'f':
		return s.literal("false", kindBool)
	case 'n':
		return s.literal("null", kindNull)
	}
	return span{}, s.unexpected("a value")
}

func (s *scanner) literal(word string, k kind) (span, *DecodeError) {
	start := s.pos
	for i := 0; i < len(word); i++ {
		if s.pos >= len(s.buf) || s.buf[s.pos] != word[i] {
			return span{}, s.unexpected(strconv.Quote(word))
		}
		s.pos++
	}
	return span{kind: k, start: start, end: s.pos}, nil
}

// number scans a number and reports whether it is a plain integer, with
// neither fraction nor exponent. It leaves the scanner on the first byte
// after the number; what may follow is for the caller to check, so "01"
// fails there.
func (s *scanner) number() (plain bool, err *DecodeError) {
	if s.buf[s.pos] == '-' {
		s.pos++
	}
	if s.pos >= len(s.buf) {
		return false, s.unexpected("a digit")
	}
	switch c := s.buf[s.pos]; {
	case c == '0':
		s.pos++
	case c >= '1' && c <= '9':
		s.skipDigits()
	default:
		return false, s.unexpected("a digit")
	}
	plain = true
	if s.pos < len(s.buf) && s.buf[s.pos] == '.' {
		plain = false
		s.pos++
		if !s.skipDigits() {
			return false, s.unexpected("a digit")
		}
	}
	if s.pos < len(s.buf) && (s.buf[s.pos] == 'e' || s.buf[s.pos] == 'E') {
		plain = false
		s.pos++
		if s.pos < len(s.buf) && (s.buf[s.pos] == '+' || s.buf[s.pos] == '-') {
			s.pos++
		}
		if !s.skipDigits() {
			return false, s.unexpected("a digit")
		}
	}
	return plain, nil
}

// skipDigits skips ASCII digits and reports whether there was at least one.
func (s *scanner) skipDigits() bool {
	start := s.pos
	for s.pos < len(s.buf) && s.buf[s.pos] >= '0' && s.buf[s.pos] <= '9' {
		s.pos++
	}
	return s.pos > start
}

// str scans a string starting at '"', checking escapes and UTF-8.
func (s *scanner) str() (span, *DecodeError) {
	buf := s.buf
	pos := s.pos + 1
	start := pos
	escaped, unusual := false, false
	for pos < len(buf) {
		c := buf[pos]
		if plainStringByte[c] {
			pos++
			continue
		}
		switch {
		case c == '"':
			s.pos = pos + 1
			return span{kind: kindString, start: start, end: pos, escaped: escaped, unusual: unusual}, nil
		case c == '\\':
			escaped = true
			n, err := escapeLen(buf, pos)
			if err != nil {
				return span{}, err
			}
			pos += n
		case c < 0x20:
			return span{}, decodeErr(ReasonMalformedJSON, "unescaped control character 0x%02x in string at offset %d", c, pos)
		default: // DEL or non-ASCII
			unusual = true
			r, size := utf8.DecodeRune(buf[pos:])
			if r == utf8.RuneError && size == 1 {
				return span{}, decodeErr(ReasonMalformedJSON, "invalid UTF-8 in string at offset %d", pos)
			}
			pos += size
		}
	}
	return span{}, decodeErr(ReasonMalformedJSON, "unterminated string starting at offset %d", start-1)
}

// escapeLen checks the escape sequence at buf[pos], a backslash, and
// returns its length.
func escapeLen(buf []byte, pos int) (int, *DecodeError) {
	if pos+1 >= len(buf) {
		return 0, decodeErr(ReasonMalformedJSON, "unexpected end of input in escape at offset %d", pos)
	}
	switch c := buf[pos+1]; c {
	case '"', '\\', '/', 'b', 'f', 'n', 'r', 't':
		return 2, nil
	case 'u':
		if pos+6 > len(buf) {
			return 0, decodeErr(ReasonMalformedJSON, "unexpected end of input in escape at offset %d", pos)
		}
		if _, ok := hex4(buf[pos+2 : pos+6]); !ok {
			return 0, decodeErr(ReasonMalformedJSON, "invalid \\u escape at offset %d", pos)
		}
		return 6, nil
	default:
		return 0, decodeErr(ReasonMalformedJSON, "invalid escape \\%s at offset %d", describeByte(c), pos)
	}
}

// hex4 decodes four hex digits.
func hex4(b []byte) (rune, bool) {
	var r rune
	for _, c := range b[:4] {
		switch {
		case c >= '0' && c <= '9':
			c -= '0'
		case c >= 'a' && c <= 'f':
			c -= 'a' - 10
		case c >= 'A' && c <= 'F':
			c -= 'A' - 10
		default:
			return 0, false
		}
		r = r<<4 | rune(c)
	}
	return r, true
}

// unescapeProblem says why appendUnescaped stopped.
type unescapeProblem uint8

const (
	tooLong unescapeProblem = iota + 1
	unpairedSurrogate
)

// appendUnescaped appends to dst the contents of a JSON string that the
// scanner has already checked, with escapes decoded. It stops when the
// result would grow over maxLen bytes, or at a \u escape of a UTF-16
// surrogate that is not part of a pair.
func appendUnescaped(dst, raw []byte, maxLen int) ([]byte, unescapeProblem) {
	limit := len(dst) + maxLen
	for i := 0; i < len(raw); {
		if raw[i] != '\\' {
			j := bytes.IndexByte(raw[i:], '\\')
			if j < 0 {
				j = len(raw) - i
			}
			if len(dst)+j > limit {
				return dst, tooLong
			}
			dst = append(dst, raw[i:i+j]...)
			i += j
			continue
		}
		var r rune
		switch c := raw[i+1]; c {
		case 'b':
			r = '\b'
		case 'f':
			r = '\f'
		case 'n':
			r = '\n'
		case 'r':
			r = '\r'
		case 't':
			r = '\t'
		case 'u':
			r, _ = hex4(raw[i+2:])
			i += 4
			if utf16.IsSurrogate(r) {
				if r >= 0xdc00 || i+8 > len(raw) || raw[i+2] != '\\' || raw[i+3] != 'u' {
					return dst, unpairedSurrogate
				}
				lo, _ := hex4(raw[i+4:])
				if lo < 0xdc00 || lo > 0xdfff {
					return dst, unpairedSurrogate
				}
				r = utf16.DecodeRune(r, lo)
				i += 6
			}
		default: // '"', '\\', '/'
			r = rune(c)
		}
		i += 2
		if len(dst)+utf8.RuneLen(r) > limit {
			return dst, tooLong
		}
		dst = utf8.AppendRune(dst, r)
	}
	return dst, 0
}

// AppendShadow appends to dst the shadow topic's JSON for one rating and
// returns the extended buffer:
//
//	{"type":"Sha","unique_id":"<id>","emit_timestamp":1700000000,"rating":3}
//
// The id is escaped as encoding/json would: '"', '\\' and control
// characters are escaped, as are U+2028 and U+2029, and each byte of

const hexDigits = "0123456789abcdef"

// appendEscaped appends s as the contents of a JSON string, copying runs
// that need no escaping in one go.
func appendEscaped(dst, s []byte) []byte {
	start := 0
	for i := 0; i < len(s); {
		c := s[i]
		if plainStringByte[c] {
			i++
			continue
		}
		if c < utf8.RuneSelf {
			dst = append(dst, s[start:i]...)
			switch c {
			case '"', '\\':
				dst = append(dst, '\\', c)
			case '\b':
				dst = append(dst, '\\', 'b')
			case '\f':
				dst = append(dst, '\\', 'f')
			case '\n':
				dst = append(dst, '\\', 'n')
			case '\r':
				dst = append(dst, '\\', 'r')
			case '\t':
				dst = append(dst, '\\', 't')
			default:
				dst = append(dst, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xf])
			}
			i++
			start = i
			continue
		}
		r, size := utf8.DecodeRune(s[i:])
		switch {
		case r == utf8.RuneError && size == 1:
			dst = append(dst, s[start:i]...)
			dst = append(dst, `\ufffd`...)
		case r == '\u2028' || r == '\u2029':
			dst = append(dst, s[start:i]...)
			dst = append(dst, '\\', 'u', '2', '0', '2', hexDigits[r&0xf])
		default:
			i += size
			continue
		}
		i += size
		start = i
	}
	return append(dst, s[start:]...)
}

// AppendJSONString appends s as a JSON string, escaped as encoding/json
// would (invalid UTF-8 becomes U+FFFD), the way every record's strings are
// written.
func AppendJSONString(dst, s []byte) []byte {
	dst = append(dst, '"')
	dst = appendEscaped(dst, s)
	return append(dst, '"')
}
