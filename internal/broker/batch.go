package broker

import (
	"encoding/binary"
	"hash/crc32"
	"time"

	"github.com/segmentio/kafka-go"
)

// castagnoli is the CRC-32C table a record batch's checksum uses.
var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// Offsets in a record batch's header (magic 2), from its first byte.
const (
	batchLengthAt    = 8  // int32: the bytes after this field
	batchCRCAt       = 17 // uint32: CRC-32C of everything from attributes on
	batchAttrsAt     = 21 // int16: attributes, and the start of the CRC's range
	batchHeaderBytes = 61 // the header, up to and with the record count
)

// appendRecordBatch appends one uncompressed record batch (magic 2) of the
// records msgs[idx...] to dst, as a producer that is neither idempotent nor
// transactional writes it: offsets from 0, CreateTime timestamps, a record
// with the zero time stamped now (unix milliseconds). The broker assigns
// the offsets when it appends the batch.
//
// It is what kafka-go's encoder writes for a Produce request, written
// straight into one buffer: the encoder went through an interface per field
// and per record, a tenth of the shadow agent's CPU in a profile.
func appendRecordBatch(dst []byte, msgs []kafka.Message, idx []int, now int64) []byte {
	start := len(dst)
	first, maxTS := int64(0), int64(0)
	for j, i := range idx {
		t := millis(msgs[i].Time, now)
		if j == 0 {
			first = t
		}
		maxTS = max(maxTS, t)
	}
	dst = binary.BigEndian.AppendUint64(dst, 0)          // base offset
	dst = binary.BigEndian.AppendUint32(dst, 0)          // batch length, set below
	dst = binary.BigEndian.AppendUint32(dst, 0xffffffff) // partition leader epoch: -1
	dst = append(dst, 2)                                 // magic
	dst = binary.BigEndian.AppendUint32(dst, 0)          // CRC, set below
	dst = binary.BigEndian.AppendUint16(dst, 0)          // attributes: no compression, CreateTime
	dst = binary.BigEndian.AppendUint32(dst, uint32(len(idx)-1))
	dst = binary.BigEndian.AppendUint64(dst, uint64(first))
	dst = binary.BigEndian.AppendUint64(dst, uint64(maxTS))
	dst = binary.BigEndian.AppendUint64(dst, 0xffffffffffffffff) // producer id: -1
	dst = binary.BigEndian.AppendUint16(dst, 0xffff)             // producer epoch: -1
	dst = binary.BigEndian.AppendUint32(dst, 0xffffffff)         // base sequence: -1
	dst = binary.BigEndian.AppendUint32(dst, uint32(len(idx)))
	for j, i := range idx {
		m := &msgs[i]
		tsDelta := millis(m.Time, now) - first
		n := 1 + varintLen(tsDelta) + varintLen(int64(j)) + nullBytesLen(m.Key) + nullBytesLen(m.Value) + varintLen(int64(len(m.Headers)))
		for _, h := range m.Headers {
			n += varintLen(int64(len(h.Key))) + len(h.Key) + nullBytesLen(h.Value)
		}
		dst = binary.AppendVarint(dst, int64(n))
		dst = append(dst, 0) // record attributes, unused
		dst = binary.AppendVarint(dst, tsDelta)
		dst = binary.AppendVarint(dst, int64(j))
		dst = appendNullBytes(dst, m.Key)
		dst = appendNullBytes(dst, m.Value)
		dst = binary.AppendVarint(dst, int64(len(m.Headers)))
		for _, h := range m.Headers {
			dst = binary.AppendVarint(dst, int64(len(h.Key)))
			dst = append(dst, h.Key...)
			dst = appendNullBytes(dst, h.Value)
		}
	}
	batch := dst[start:]
	binary.BigEndian.PutUint32(batch[batchLengthAt:], uint32(len(batch)-batchLengthAt-4))
	binary.BigEndian.PutUint32(batch[batchCRCAt:], crc32.Checksum(batch[batchAttrsAt:], castagnoli))
	return dst
}

// millis is t in unix milliseconds, or now for the zero time, as kafka-go
// stamps a record without a time.
func millis(t time.Time, now int64) int64 {
	if t.IsZero() {
		return now
	}
	return t.UnixMilli()
}

// appendNullBytes appends b with its varint length, -1 for nil.
func appendNullBytes(dst, b []byte) []byte {
	if b == nil {
		return binary.AppendVarint(dst, -1)
	}
	dst = binary.AppendVarint(dst, int64(len(b)))
	return append(dst, b...)
}

func nullBytesLen(b []byte) int {
	if b == nil {
		return 1
	}
	return varintLen(int64(len(b))) + len(b)
}

// varintLen is the length of v as a zig-zag varint.
func varintLen(v int64) int {
	u := uint64(v<<1) ^ uint64(v>>63)
	n := 1
	for u >= 0x80 {
		u >>= 7
		n++
	}
	return n
}
