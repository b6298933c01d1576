package wire

import (
	"bytes"
	"unicode/utf8"
)

// The readers of the layout fast paths (laidOutRating, laidOutShadow,
// laidOutVisit): each matches a record byte for byte against the layout its
// own encoder writes, and reports false for anything else, which then goes
// to the scanner.

// cutPrefix returns b after prefix, and whether b started with it.
func cutPrefix(b []byte, prefix string) ([]byte, bool) {
	if len(b) < len(prefix) || string(b[:len(prefix)]) != prefix {
		return b, false
	}
	return b[len(prefix):], true
}

// leadingInt reads the JSON integer at the start of b: an optional minus,
// then 0 or a digit 1-9 and at most 17 more (so it fits an int64). It
// returns the value and its length, 0 when b does not start with one.
func leadingInt(b []byte) (int64, int) {
	n := 0
	neg := len(b) > 0 && b[0] == '-'
	if neg {
		n++
	}
	start := n
	var v int64
	for n < len(b) && b[n] >= '0' && b[n] <= '9' && n-start < 18 {
		v = v*10 + int64(b[n]-'0')
		n++
	}
	switch {
	case n == start, b[start] == '0' && n > start+1, n < len(b) && b[n] >= '0' && b[n] <= '9':
		return 0, 0
	case neg:
		return -v, n
	}
	return v, n
}

// plainString reads a JSON string's contents up to its closing quote, and
// the rest after it: 1 to maxLen bytes of valid UTF-8 without escapes or
// control characters, else false.
func plainString(b []byte, maxLen int) (s, rest []byte, ok bool) {
	i := bytes.IndexByte(b, '"')
	if i <= 0 || i > maxLen {
		return nil, nil, false
	}
	s = b[:i:i]
	for _, c := range s {
		if c < 0x20 || c == '\\' {
			return nil, nil, false
		}
	}
	if !utf8.Valid(s) {
		return nil, nil, false
	}
	return s, b[i+1:], true
}

// plainDecimalLen is the length of the JSON number without an exponent at
// the start of b, -?(0|[1-9][0-9]*)(.[0-9]+)?, or 0 when there is none.
func plainDecimalLen(b []byte) int {
	n := 0
	if n < len(b) && b[n] == '-' {
		n++
	}
	start := n
	for n < len(b) && b[n] >= '0' && b[n] <= '9' {
		n++
	}
	if n == start || (b[start] == '0' && n > start+1) {
		return 0
	}
	if n < len(b) && b[n] == '.' {
		n++
		frac := n
		for n < len(b) && b[n] >= '0' && b[n] <= '9' {
			n++
		}
		if n == frac {
			return 0
		}
	}
	if n < len(b) && (b[n] == 'e' || b[n] == 'E') {
		return 0
	}
	return n
}
