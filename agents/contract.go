package agents

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"unicode/utf8"

	"github.com/segmentio/kafka-go"
)

// The output topics' contracts: what a record of the shadow and the
// active-visitors topics must be for ClickHouse's Kafka engine tables to
// parse it and for the stores to keep it. AppendShadow and the windows agent
// write only such records; anything else on those topics was written by
// someone else, and the worker's guard (internal/guard) dead-letters it. The
// stores' views apply the same rules in SQL (clickhouse/migrations/000003).
//
// Both are one JSON object per record and nothing after it, with exactly the
// documented keys, spelt exactly so (the engine matches names exactly and
// refuses unknown ones), each once.
const (
	// MaxShadowIDBytes is the longest unique_id the shadow topic's contract
	// allows, in bytes.
	MaxShadowIDBytes = 1024
	// minShadowUnix is the earliest emit_timestamp the contract allows,
	// 2000-01-01T00:00:00Z: the shadow agent dead-letters earlier ratings.
	minShadowUnix = 946684800
)

// ReasonContract is the dead-letter reason of an output-topic record that
// breaks its topic's contract.
const ReasonContract Reason = "contract"

// ErrContract is wrapped by the errors of CheckShadow and
// CheckActiveVisitors.
var ErrContract = errors.New("breaks the topic's contract")

// CheckShadow reports why value is not a shadow event the stores keep, or
// nil if it is one:
//
//	{"type":"Sha","unique_id":"<1..1024 bytes>","emit_timestamp":<unix seconds, 2000..2106>,"rating":<Int32>}
//
// with type the classification of rating (see Classify).
func CheckShadow(value []byte) error {
	if plainShadow(value) {
		return nil
	}
	return checkShadowJSON(value)
}

// checkShadowJSON is CheckShadow's full check, with encoding/json.
func checkShadowJSON(value []byte) error {
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
		return err
	case id == "":
		return contractErr("unique_id is empty")
	case len(id) > MaxShadowIDBytes:
		return contractErr("unique_id is %d bytes, over %d", len(id), MaxShadowIDBytes)
	case ts < minShadowUnix:
		return contractErr("emit_timestamp %d is before 2000", ts)
	}
	want := Classify(rating)
	if typ != want.String() {
		return contractErr("type %q is not the type of rating %d (%s)", typ, rating, want)
	}
	return nil
}

// shadowKeys are the keys of a shadow event, in the contract's order.
var shadowKeys = []string{"type", "unique_id", "emit_timestamp", "rating"}

// plainShadow is CheckShadow's fast path, on the agents' scanner: it
// reports true only for a record the contract keeps whose strings have no
// escapes, which is every record AppendShadow writes for a plain id. Any
// other record, good or bad, is left to the full check, so verdicts and
// their wording are the full check's.
func plainShadow(value []byte) bool {
	f := fields{names: shadowKeys}
	if f.scan(value, len(value)) != nil || f.others != 0 {
		return false
	}
	typ, id, ts, rating := f.vals[0], f.vals[1], f.vals[2], f.vals[3]
	if typ.kind != kindString || typ.escaped || id.kind != kindString || id.escaped ||
		ts.kind != kindNumber || !ts.plain || rating.kind != kindNumber || !rating.plain {
		return false
	}
	t, ok1 := parseInt(value[ts.start:ts.end])
	r, ok2 := parseInt(value[rating.start:rating.end])
	n := id.end - id.start
	return ok1 && ok2 && n > 0 && n <= MaxShadowIDBytes &&
		t >= minShadowUnix && t <= math.MaxUint32 && r >= math.MinInt32 && r <= math.MaxInt32 &&
		string(value[typ.start:typ.end]) == Classify(r).String()
}

// CheckActiveVisitors reports why value is not a windowed count the stores
// keep, or nil if it is one:
//
//	{"account_id":<Int64>,"store_id":"<string>" or null,"window":[<start>,<end>],"count":<1..>}
//
// with start < end, both unix seconds that fit a UInt32.
func CheckActiveVisitors(value []byte) error {
	var (
		window []int64
		count  int64
	)
	err := checkObject(value, []field{
		{"account_id", func(d *json.Decoder) error { _, err := intValue(d, math.MinInt64, math.MaxInt64); return err }},
		{"store_id", func(d *json.Decoder) error {
			if d.More() {
				var raw json.RawMessage
				if err := d.Decode(&raw); err != nil {
					return contractErr("store_id: %v", err)
				}
				if string(raw) == "null" {
					return nil
				}
				var s string
				if err := json.Unmarshal(raw, &s); err != nil {
					return contractErr("store_id is neither a string nor null")
				}
				return nil
			}
			return contractErr("store_id has no value")
		}},
		{"window", func(d *json.Decoder) (err error) { window, err = pairValue(d); return }},
		{"count", func(d *json.Decoder) (err error) { count, err = intValue(d, 0, math.MaxInt64); return }},
	})
	switch {
	case err != nil:
		return err
	case window[0] >= window[1]:
		return contractErr("window [%d,%d] does not end after it starts", window[0], window[1])
	case count < 1:
		return contractErr("count %d is below 1", count)
	}
	return nil
}

// DeadLetter builds the dead-letter record for m, as the agents do: m's key,
// value and headers, plus the dlq.* headers naming reason, detail, agent and
// m's coordinates.
func DeadLetter(topic, agent string, m *kafka.Message, reason Reason, detail string) kafka.Message {
	return deadLetter(topic, agent, m, reason, detail, DefaultMaxDeadLetterBytes)
}

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
