package wire

import "strconv"

// Repartitioned is one record of the repartition topic, which carries each
// accepted visit from the visits agent's first stage (re-keying) to its
// second (windowed counting): the key is AppendGroupKey's, the value
// AppendRepartitioned's, the visit's canonical JSON.
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

// AppendRepartitioned appends the canonical JSON of a visit, the
// repartition topic's value, as AppendVisit writes it: keys in the order
// id, account_id, store_id, timestamp, strings escaped as encoding/json
// would, the timestamp in the shortest decimal form that reads back as the
// same float64. With a dst of enough capacity it does not allocate.
func AppendRepartitioned(dst []byte, v Repartitioned) []byte {
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
