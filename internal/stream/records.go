package stream

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/segmentio/kafka-go"
	"github.com/segmentio/kafka-go/compress"
)

// The fetch protocol, spoken by the fetcher itself so that a response is
// read with one read into one buffer and parsed in place: the records'
// keys, values and header values are slices of that buffer (or of the
// buffer a compressed batch was decompressed into), which is never reused,
// so a record stays valid for as long as anything holds it.
//
// Only the non-flexible versions are spoken, v4 (the oldest Kafka 4 still
// answers) to v10, the same one-topic, one-partition request kafka-go
// sends, read uncommitted.
const (
	fetchAPIKey     = 1
	fetchMinVersion = 4
	fetchMaxVersion = 10
)

// maxFetchFrame bounds the size a response may announce before a buffer
// is allocated for it: a response is about a fetch's max bytes, or one
// record batch larger than that.
const maxFetchFrame = 1 << 30

// errMalformed is wrapped by every error about a response that does not
// parse.
var errMalformed = errors.New("malformed fetch response")

// fetchVersion chooses the fetch version to speak with a broker that
// supports versions lo to hi: the highest both know.
func fetchVersion(lo, hi int16) (int16, error) {
	v := min(hi, fetchMaxVersion)
	if v < fetchMinVersion || v < lo {
		return 0, fmt.Errorf("the broker supports fetch v%d to v%d, none of v%d to v%d", lo, hi, fetchMinVersion, fetchMaxVersion)
	}
	return v, nil
}

// fetchRequest describes one fetch of one partition.
type fetchRequest struct {
	version   int16
	id        int32 // correlation id
	clientID  string
	topic     string
	partition int32
	offset    int64
	maxBytes  int32
	maxWait   time.Duration
}

// appendTo appends the request, framed, to dst.
func (r fetchRequest) appendTo(dst []byte) []byte {
	start := len(dst)
	b := binary.BigEndian.AppendUint32(dst, 0) // the size, set below
	b = binary.BigEndian.AppendUint16(b, fetchAPIKey)
	b = binary.BigEndian.AppendUint16(b, uint16(r.version))
	b = binary.BigEndian.AppendUint32(b, uint32(r.id))
	b = appendString(b, r.clientID)
	b = binary.BigEndian.AppendUint32(b, 0xffffffff) // replica id -1: a consumer
	b = binary.BigEndian.AppendUint32(b, uint32(r.maxWait.Milliseconds()))
	b = binary.BigEndian.AppendUint32(b, 1) // min bytes
	b = binary.BigEndian.AppendUint32(b, uint32(r.maxBytes))
	b = append(b, 0) // isolation level: read uncommitted
	if r.version >= 7 {
		b = binary.BigEndian.AppendUint32(b, 0)          // session id: none
		b = binary.BigEndian.AppendUint32(b, 0xffffffff) // session epoch -1: no session
	}
	b = binary.BigEndian.AppendUint32(b, 1) // one topic
	b = appendString(b, r.topic)
	b = binary.BigEndian.AppendUint32(b, 1) // one partition
	b = binary.BigEndian.AppendUint32(b, uint32(r.partition))
	if r.version >= 9 {
		b = binary.BigEndian.AppendUint32(b, 0xffffffff) // current leader epoch: unknown
	}
	b = binary.BigEndian.AppendUint64(b, uint64(r.offset))
	if r.version >= 5 {
		b = binary.BigEndian.AppendUint64(b, 0xffffffffffffffff) // log start offset: a consumer's -1
	}
	b = binary.BigEndian.AppendUint32(b, uint32(r.maxBytes))
	if r.version >= 7 {
		b = binary.BigEndian.AppendUint32(b, 0) // no forgotten topics
	}
	binary.BigEndian.PutUint32(b[start:], uint32(len(b)-start-4))
	return b
}

func appendString(b []byte, s string) []byte {
	b = binary.BigEndian.AppendUint16(b, uint16(len(s)))
	return append(b, s...)
}

// readFrame reads one response frame from r, into buf when it is large
// enough (a buffer recycled once nothing refers to it), else into a fresh
// one: its correlation id, its body, and the buffer, for reuse. A fresh
// buffer for a frame of at least half of full is made full, so that it
// holds the next ones too; a smaller frame gets a buffer of its size.
func readFrame(r io.Reader, buf []byte, full int) (id int32, body, frame []byte, err error) {
	var size [4]byte
	if _, err := io.ReadFull(r, size[:]); err != nil {
		return 0, nil, nil, err
	}
	n := int32(binary.BigEndian.Uint32(size[:]))
	if n < 4 || n > maxFetchFrame {
		return 0, nil, nil, fmt.Errorf("%w: a frame of %d bytes", errMalformed, n)
	}
	frame = buf[:0]
	if int64(cap(buf)) < int64(n) {
		size := int(n)
		if size >= full/2 {
			size = max(size, full)
		}
		frame = make([]byte, n, size)
	}
	frame = frame[:n]
	if _, err := io.ReadFull(r, frame); err != nil {
		return 0, nil, nil, err
	}
	return int32(binary.BigEndian.Uint32(frame)), frame[4:], frame[:0], nil
}

// fetchedPartition is what a fetch response says of the partition asked
// for.
type fetchedPartition struct {
	fetched
	// next is the offset to fetch next: past the last whole record batch
	// (control batches and records removed by compaction included), or
	// the offset asked for when there was none.
	next int64
}

// parseFetch parses the body of a fetch response of the given version to
// the request for topic's partition at offset, appending its records to
// msgs[:0] (a recycled slice, or nil).
// A partition error is returned as its kafka.Error, with the high
// watermark.
func parseFetch(body []byte, version int16, topic string, partition int32, offset int64, msgs []kafka.Message) (fetchedPartition, error) {
	d := decoder{b: body}
	d.skip(4) // throttle time
	if version >= 7 {
		code := d.int16()
		d.skip(4) // session id
		if d.err == nil && code != 0 {
			return fetchedPartition{}, kafka.Error(code)
		}
	}
	var (
		found   bool
		code    int16
		hwm     int64
		records []byte
	)
	for range d.count(2 + 4) {
		name := d.bytes(int(d.int16()))
		for range d.count(4 + 2 + 8) {
			id := d.int32()
			c := d.int16()
			h := d.int64()
			d.skip(8) // last stable offset
			if version >= 5 {
				d.skip(8) // log start offset
			}
			if n := d.int32(); n > 0 { // aborted transactions, or -1
				d.skip(int(n) * 16)
			}
			rs := d.bytes(int(d.int32())) // -1 for none
			if d.err == nil && id == partition && string(name) == topic {
				found, code, hwm, records = true, c, h, rs
			}
		}
	}
	if d.err != nil {
		return fetchedPartition{}, d.err
	}
	if !found {
		return fetchedPartition{}, fmt.Errorf("%w: no answer for %s/%d", errMalformed, topic, partition)
	}
	res := fetchedPartition{fetched: fetched{highWatermark: hwm}, next: offset}
	if code != 0 {
		return res, kafka.Error(code)
	}
	p := recordParser{topic: topic, partition: int(partition), offset: offset, hwm: hwm}
	if msgs == nil {
		msgs = make([]kafka.Message, 0, 16)
	}
	p.msgs = msgs[:0]
	if err := p.parseBatches(records); err != nil {
		return res, err
	}
	res.msgs, res.next = p.msgs, max(p.next, offset)
	return res, nil
}

// Record batch attributes.
const (
	attrCompression   = 0x07
	attrLogAppendTime = 0x08
	attrControl       = 0x20
)

// batchHeaderSize is the size of a record batch's header, from its base
// offset to its record count.
const batchHeaderSize = 61

// recordParser turns record batches into kafka.Messages as kafka-go's
// Batch.ReadMessage does.
type recordParser struct {
	topic     string
	partition int
	offset    int64 // the offset asked for: records before it are skipped
	hwm       int64
	msgs      []kafka.Message
	next      int64
	// headers backs the records' headers, a slice each.
	headers []kafka.Header
	// keys are the header keys seen, so that each is allocated once.
	keys []string
}

// parseBatches parses the record batches of one partition's records. The
// last batch may be cut short by the fetch's max bytes: it ends them.
func (p *recordParser) parseBatches(b []byte) error {
	for len(b) >= 17 { // base offset, length, leader epoch, magic
		base := int64(binary.BigEndian.Uint64(b))
		size := int32(binary.BigEndian.Uint32(b[8:]))
		if magic := b[16]; magic != 2 {
			return fmt.Errorf("%w: a message set of magic %d at offset %d; only record batches (magic 2) are read", errMalformed, magic, base)
		}
		if size < batchHeaderSize-12 {
			return fmt.Errorf("%w: a record batch of %d bytes at offset %d", errMalformed, size, base)
		}
		if int64(size) > int64(len(b)-12) {
			return nil // cut short
		}
		batch := b[:12+size]
		b = b[12+size:]
		if err := p.parseBatch(base, batch); err != nil {
			return fmt.Errorf("record batch at offset %d: %w", base, err)
		}
	}
	return nil
}

func (p *recordParser) parseBatch(base int64, batch []byte) error {
	attrs := binary.BigEndian.Uint16(batch[21:])
	lastDelta := int32(binary.BigEndian.Uint32(batch[23:]))
	firstTime := int64(binary.BigEndian.Uint64(batch[27:]))
	maxTime := int64(binary.BigEndian.Uint64(batch[35:]))
	count := int32(binary.BigEndian.Uint32(batch[57:]))
	p.next = max(p.next, base+int64(lastDelta)+1)
	if attrs&attrControl != 0 {
		return nil
	}
	data := batch[batchHeaderSize:]
	if c := compress.Compression(attrs & attrCompression); c != compress.None {
		codec := c.Codec()
		if codec == nil {
			return fmt.Errorf("%w: unknown compression %d", errMalformed, c)
		}
		var out bytes.Buffer
		out.Grow(4 * len(data))
		r := codec.NewReader(bytes.NewReader(data))
		_, err := out.ReadFrom(r)
		_ = r.Close()
		if err != nil {
			return fmt.Errorf("%w: decompress %s: %w", errMalformed, codec.Name(), err)
		}
		data = out.Bytes()
	}
	d := decoder{b: data}
	for range count {
		size := d.varint()
		rec := decoder{b: d.bytes(int(size))}
		if d.err != nil {
			return d.err
		}
		if size < 0 {
			return fmt.Errorf("%w: a record of %d bytes", errMalformed, size)
		}
		rec.skip(1) // attributes
		timeDelta := rec.varint()
		offset := base + rec.varint()
		key := rec.bytesOrNil(rec.varint())
		value := rec.bytesOrNil(rec.varint())
		headers := p.parseHeaders(&rec)
		if rec.err != nil {
			return rec.err
		}
		// A batch's last offset bounds its records' (a corrupt one might
		// not), so that none is read again after it.
		p.next = max(p.next, offset+1)
		if offset < p.offset {
			continue
		}
		t := firstTime + timeDelta
		if attrs&attrLogAppendTime != 0 {
			t = maxTime
		}
		p.msgs = append(p.msgs, kafka.Message{
			Topic: p.topic, Partition: p.partition, Offset: offset, HighWaterMark: p.hwm,
			Key: key, Value: value, Headers: headers, Time: makeTime(t),
		})
	}
	return nil
}

// parseHeaders parses a record's headers, nil when it has none.
func (p *recordParser) parseHeaders(d *decoder) []kafka.Header {
	n := d.varint()
	if n <= 0 || d.err != nil {
		return nil
	}
	start := len(p.headers)
	for range d.count64(n, 2) {
		key := p.key(d.bytesOrNil(d.varint()))
		p.headers = append(p.headers, kafka.Header{Key: key, Value: d.bytesOrNil(d.varint())})
	}
	return p.headers[start:len(p.headers):len(p.headers)]
}

// key returns b as a string, allocating only the first time it is seen.
func (p *recordParser) key(b []byte) string {
	for _, k := range p.keys {
		if k == string(b) {
			return k
		}
	}
	k := string(b)
	if len(p.keys) < 16 {
		p.keys = append(p.keys, k)
	}
	return k
}

// makeTime is a record's time from its timestamp in milliseconds, as
// kafka-go makes it: UTC, and zero for none.
func makeTime(ms int64) time.Time {
	if ms <= 0 {
		return time.Time{}
	}
	return time.UnixMilli(ms).UTC()
}

// decoder reads big-endian integers, varints and byte strings from b. Its
// first error sticks: every read after it returns zero values.
type decoder struct {
	b   []byte
	err error
}

func (d *decoder) fail(what string) {
	if d.err == nil {
		d.err = fmt.Errorf("%w: %s", errMalformed, what)
	}
	d.b = nil
}

func (d *decoder) take(n int) []byte {
	if d.err != nil {
		return nil
	}
	if n < 0 || n > len(d.b) {
		d.fail(fmt.Sprintf("%d bytes wanted, %d left", n, len(d.b)))
		return nil
	}
	b := d.b[:n:n]
	d.b = d.b[n:]
	return b
}

func (d *decoder) skip(n int) { d.take(n) }

func (d *decoder) int16() int16 {
	if b := d.take(2); b != nil {
		return int16(binary.BigEndian.Uint16(b))
	}
	return 0
}

func (d *decoder) int32() int32 {
	if b := d.take(4); b != nil {
		return int32(binary.BigEndian.Uint32(b))
	}
	return 0
}

func (d *decoder) int64() int64 {
	if b := d.take(8); b != nil {
		return int64(binary.BigEndian.Uint64(b))
	}
	return 0
}

// bytes reads n bytes; a negative n (a null) reads none.
func (d *decoder) bytes(n int) []byte {
	if n < 0 {
		return nil
	}
	return d.take(n)
}

// bytesOrNil reads n bytes, nil for none, as kafka-go reads a record's key,
// value and header value: an empty one is nil too.
func (d *decoder) bytesOrNil(n int64) []byte {
	if n <= 0 {
		return nil
	}
	if n > int64(len(d.b)) {
		d.fail(fmt.Sprintf("%d bytes wanted, %d left", n, len(d.b)))
		return nil
	}
	return d.take(int(n))
}

// count reads an array's length, checked against what is left when each
// element takes at least minSize bytes, so that a corrupt length ends the
// parse instead of looping.
func (d *decoder) count(minSize int) int {
	return d.count64(int64(d.int32()), minSize)
}

func (d *decoder) count64(n int64, minSize int) int {
	if d.err != nil || n <= 0 {
		return 0
	}
	if n > int64(len(d.b)/minSize) {
		d.fail(fmt.Sprintf("%d elements in %d bytes", n, len(d.b)))
		return 0
	}
	return int(n)
}

// varint reads a zig-zag encoded variable-length integer.
func (d *decoder) varint() int64 {
	var u uint64
	for i, c := range d.b {
		if i == binary.MaxVarintLen64 {
			break
		}
		u |= uint64(c&0x7f) << (7 * i)
		if c < 0x80 {
			d.b = d.b[i+1:]
			return int64(u>>1) ^ -int64(u&1)
		}
	}
	d.fail("a bad varint")
	return 0
}
