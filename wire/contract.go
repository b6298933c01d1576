package wire

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"unicode/utf8"
)

// The output topics' contracts: what a record of the shadow and the
// active-visitors topics must be for ClickHouse's Kafka engine tables to
// parse it and for the stores to keep it. AppendShadow and
// AppendActiveVisitors write only such records; anything else on those
// topics was written by someone else, and the worker's guard dead-letters
// it. The stores' views apply the same rules in SQL
// (clickhouse/migrations/000003).
//
// Both are one JSON object per record and nothing after it, with exactly the
// documented keys, spelt exactly so (the engine matches names exactly and
// refuses unknown ones), each once.

// ErrContract is wrapped by the errors of CheckShadow and
// CheckActiveVisitors.
var ErrContract = errors.New("breaks the topic's contract")

func contractErr(format string, args ...any) error {
	return fmt.Errorf("%w: %s", ErrContract, fmt.Sprintf(format, args...))
}

// field is one key of a contract's object and how to read its value.
type field struct {
	name string
	read func(*json.Decoder) error
}

// checkObject reads value as exactly one JSON object holding each of fields
// once and nothing else, in any order.
func checkObject(value []byte, fields []field) error {
	if !utf8.Valid(value) {
		return contractErr("not UTF-8")
	}
	d := json.NewDecoder(bytes.NewReader(value))
	d.UseNumber()
	if tok, err := d.Token(); err != nil || tok != json.Delim('{') {
		return contractErr("not a JSON object")
	}
	seen := make([]bool, len(fields))
	for d.More() {
		tok, err := d.Token()
		if err != nil {
			return contractErr("not valid JSON: %v", err)
		}
		key, _ := tok.(string)
		i := fieldIndex(fields, key)
		switch {
		case i < 0:
			return contractErr("unknown key %q", key)
		case seen[i]:
			return contractErr("key %q appears twice", key)
		}
		seen[i] = true
		if err := fields[i].read(d); err != nil {
			if errors.Is(err, ErrContract) {
				return err
			}
			return contractErr("%s: %v", key, err)
		}
	}
	if _, err := d.Token(); err != nil {
		return contractErr("not valid JSON: %v", err)
	}
	if _, err := d.Token(); err != io.EOF {
		return contractErr("more than one JSON value")
	}
	for i, ok := range seen {
		if !ok {
			return contractErr("key %q is missing", fields[i].name)
		}
	}
	return nil
}

func fieldIndex(fields []field, key string) int {
	for i, f := range fields {
		if f.name == key {
			return i
		}
	}
	return -1
}

func stringValue(d *json.Decoder) (string, error) {
	tok, err := d.Token()
	if err != nil {
		return "", err
	}
	s, ok := tok.(string)
	if !ok {
		return "", errors.New("not a string")
	}
	return s, nil
}

// intValue reads an integer written without fraction or exponent, within
// lo..hi.
func intValue(d *json.Decoder, lo, hi int64) (int64, error) {
	tok, err := d.Token()
	if err != nil {
		return 0, err
	}
	n, ok := tok.(json.Number)
	if !ok {
		return 0, errors.New("not a number")
	}
	v, err := n.Int64()
	if err != nil || bytes.ContainsAny([]byte(n), ".eE") {
		return 0, fmt.Errorf("%s is not an integer in range", n)
	}
	if v < lo || v > hi {
		return 0, fmt.Errorf("%d is outside %d..%d", v, lo, hi)
	}
	return v, nil
}

// pairValue reads [a, b] of two integers that fit a UInt32.
func pairValue(d *json.Decoder) ([]int64, error) {
	if tok, err := d.Token(); err != nil || tok != json.Delim('[') {
		return nil, errors.New("not an array")
	}
	var out []int64
	for d.More() {
		v, err := intValue(d, 0, math.MaxUint32)
		if err != nil {
			return nil, err
		}
		out = append(out, v)
	}
	if _, err := d.Token(); err != nil {
		return nil, err
	}
	if len(out) != 2 {
		return nil, fmt.Errorf("has %d elements, want 2", len(out))
	}
	return out, nil
}
