package wire

import (
	"encoding/binary"
	"math"
	"strconv"
	"time"
	"unicode/utf8"
)

// Repartitioned is one record of the repartition topic, which carries each
// accepted visit from the visits agent's first stage (re-keying) to its
// second (windowed counting): the key is AppendGroupKey's, the value
// AppendRepartitioned's compact form (or, from a worker run with the JSON
// form, AppendRepartitionedJSON's canonical JSON). DecodeRepartitioned
// reads both.
//
// It is a Visit decoded in place: the slices alias the decoded message
// when their JSON strings had no escapes, so a Repartitioned is valid only
// as long as the message's bytes are.
type Repartitioned struct {
	// ID is the visit's id.
	ID []byte
	// AccountID is the visit's account.
	AccountID int64
	// StoreID is the visit's store, nil for store_id null or absent.
	StoreID []byte
	// Timestamp is unix seconds with a fraction.
	Timestamp float64
	// text, when not nil, is Timestamp written as strconv.AppendFloat(ts,
	// 'f', -1) would write it, taken from the message.
	text []byte
}

// Visit returns r with its strings copied.
func (r Repartitioned) Visit() Visit {
	v := Visit{ID: string(r.ID), AccountID: r.AccountID, Timestamp: r.Timestamp}
	if r.StoreID != nil {
		s := string(r.StoreID)
		v.StoreID = &s
	}
	return v
}

// compactMark is the first byte of a compact repartitioned visit. A JSON
// text never starts with it, so one byte tells the two forms apart.
const compactMark = 0x01

// compactHasStore is the flag byte's bit for a visit with a store.
const compactHasStore = 1

// compactFixed is the compact form's fixed part: the mark, the flags, the
// account and the timestamp.
const compactFixed = 1 + 1 + 8 + 8

// AppendRepartitioned appends the repartition topic's value of a visit in
// its compact form:
//
//	byte 0         0x01, the mark
//	byte 1         flags: 1 when the visit has a store
//	bytes 2..9     account_id, an int64, big-endian
//	bytes 10..17   timestamp, the float64's bits, big-endian
//	uvarint, id    the id's length in bytes, then the id
//	uvarint, store the store's length and the store, when flag 1 is set
//
// The record is the agents' own, written by the first stage and read by
// the second: unlike the visit's JSON it needs no escaping, no decimal
// conversion of the timestamp and no scan to read back, and it carries the
// timestamp's exact float64. With a dst of enough capacity it does not
// allocate.
func AppendRepartitioned(dst []byte, v Repartitioned) []byte {
	flags := byte(0)
	if v.StoreID != nil {
		flags |= compactHasStore
	}
	dst = append(dst, compactMark, flags)
	dst = binary.BigEndian.AppendUint64(dst, uint64(v.AccountID))
	dst = binary.BigEndian.AppendUint64(dst, math.Float64bits(v.Timestamp))
	dst = binary.AppendUvarint(dst, uint64(len(v.ID)))
	dst = append(dst, v.ID...)
	if v.StoreID != nil {
		dst = binary.AppendUvarint(dst, uint64(len(v.StoreID)))
		dst = append(dst, v.StoreID...)
	}
	return dst
}

// decodeCompact reads AppendRepartitioned's form, in place, with the
// JSON form's bounds on the id, the store and the timestamp (see
// DecodeVisit); a record that does not parse is malformed_json, the
// reason of a value that is not the topic's format.
func decodeCompact(value []byte, recorded time.Time, lim VisitLimits) (Repartitioned, *DecodeError) {
	bad := func(what string) (Repartitioned, *DecodeError) {
		return Repartitioned{}, decodeErr(ReasonMalformedJSON, "compact repartitioned visit: %s", what)
	}
	if len(value) < compactFixed+1 {
		return bad("shorter than its fixed part")
	}
	flags := value[1]
	if flags&^compactHasStore != 0 {
		return bad("unknown flags")
	}
	v := Repartitioned{
		AccountID: int64(binary.BigEndian.Uint64(value[2:10])),
		Timestamp: math.Float64frombits(binary.BigEndian.Uint64(value[10:18])),
	}
	rest := value[compactFixed:]
	var ok bool
	if v.ID, rest, ok = compactString(rest); !ok {
		return bad("id cut short")
	}
	if len(v.ID) == 0 || len(v.ID) > lim.MaxIDLen || !utf8.Valid(v.ID) {
		return Repartitioned{}, decodeErr(ReasonBadID, "id is empty, over %d bytes or not UTF-8", lim.MaxIDLen)
	}
	if flags&compactHasStore != 0 {
		if v.StoreID, rest, ok = compactString(rest); !ok {
			return bad("store_id cut short")
		}
		if len(v.StoreID) == 0 || len(v.StoreID) > lim.MaxIDLen || !utf8.Valid(v.StoreID) {
			return Repartitioned{}, decodeErr(ReasonBadStoreID, "store_id is empty, over %d bytes or not UTF-8", lim.MaxIDLen)
		}
	}
	if len(rest) != 0 {
		return bad("trailing bytes")
	}
	if math.IsNaN(v.Timestamp) || math.IsInf(v.Timestamp, 0) {
		return Repartitioned{}, decodeErr(ReasonWrongType, "timestamp is not a number of seconds")
	}
	if err := checkSeconds(v.Timestamp, recorded, lim); err != nil {
		return Repartitioned{}, err
	}
	return v, nil
}

// compactString reads a uvarint length and that many bytes.
func compactString(b []byte) (s, rest []byte, ok bool) {
	n, w := binary.Uvarint(b)
	if w <= 0 || n > uint64(len(b)-w) {
		return nil, nil, false
	}
	end := w + int(n)
	return b[w:end:end], b[end:], true
}

// AppendRepartitionedJSON appends the canonical JSON of a visit, as
// AppendVisit writes it: keys in the order id, account_id, store_id,
// timestamp, strings escaped as encoding/json would, the timestamp in the
// shortest decimal form that reads back as the same float64. It is the
// visits topic's record, and the repartition topic's for a worker run with
// the JSON form. With a dst of enough capacity it does not allocate.
func AppendRepartitionedJSON(dst []byte, v Repartitioned) []byte {
	dst = append(dst, `{"id":`...)
	dst = AppendJSONString(dst, v.ID)
	dst = append(dst, `,"account_id":`...)
	dst = strconv.AppendInt(dst, v.AccountID, 10)
	dst = append(dst, `,"store_id":`...)
	dst = appendStoreJSON(dst, v.StoreID)
	dst = append(dst, `,"timestamp":`...)
	if v.text != nil {
		dst = append(dst, v.text...)
	} else {
		dst = strconv.AppendFloat(dst, v.Timestamp, 'f', -1, 64)
	}
	return append(dst, '}')
}

// appendStoreJSON appends a store_id: the JSON string, or null for nil.
func appendStoreJSON(dst, store []byte) []byte {
	if store == nil {
		return append(dst, "null"...)
	}
	return AppendJSONString(dst, store)
}

// AppendGroupKey appends the key of (account, store) to dst: `352:"uk"`, or
// `352:null` for a nil store. It keys the repartition topic's records and
// the active-visitors topic's.
func AppendGroupKey(dst []byte, account int64, store []byte) []byte {
	dst = strconv.AppendInt(dst, account, 10)
	dst = append(dst, ':')
	if store == nil {
		return append(dst, "null"...)
	}
	return strconv.AppendQuote(dst, string(store))
}
