package stream

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/big"
	"net"
	"reflect"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/domination/domination/internal/testenv"
)

// testBatch encodes a record batch at base as a producer writes one, the
// records' lengths computed.
func testBatch(base int64, attrs int16, firstTime, maxTime int64, recs ...kmsg.Record) []byte {
	var data []byte
	last := int32(0)
	for _, r := range recs {
		r.Length = 0
		body := r.AppendTo(nil)[1:] // without the length's one byte
		data = binary.AppendVarint(data, int64(len(body)))
		data = append(data, body...)
		last = max(last, r.OffsetDelta)
	}
	b := kmsg.RecordBatch{
		FirstOffset: base, Length: int32(batchHeaderSize - 12 + len(data)), Magic: 2, Attributes: attrs,
		LastOffsetDelta: last, FirstTimestamp: firstTime, MaxTimestamp: maxTime,
		ProducerID: -1, ProducerEpoch: -1, FirstSequence: -1, NumRecords: int32(len(recs)), Records: data,
	}
	return b.AppendTo(nil)
}

// testResponse encodes the body of a fetch response of version v for topic
// "in", partition 0.
func testResponse(v int16, hwm int64, code int16, batches ...[]byte) []byte {
	res := kmsg.FetchResponse{Version: v, Topics: []kmsg.FetchResponseTopic{{
		Topic: "in",
		Partitions: []kmsg.FetchResponseTopicPartition{{
			Partition: 0, ErrorCode: code, HighWatermark: hwm, LastStableOffset: hwm,
			AbortedTransactions: []kmsg.FetchResponseTopicPartitionAbortedTransaction{{ProducerID: 7, FirstOffset: 1}},
			RecordBatches:       bytes.Join(batches, nil),
		}},
	}}}
	return res.AppendTo(nil)
}

func testMessage(offset int64, key, value []byte, ms int64, headers ...kafka.Header) kafka.Message {
	return kafka.Message{
		Topic: "in", Partition: 0, Offset: offset, HighWaterMark: 100,
		Key: key, Value: value, Headers: headers, Time: time.UnixMilli(ms).UTC(),
	}
}

const t0 = int64(1_700_000_000_000) // a record time, in milliseconds

func TestParseFetchHandsOverRecordsAsKafkaGoDoes(t *testing.T) {
	plain := func(delta int32, key, value string) kmsg.Record {
		r := kmsg.Record{OffsetDelta: delta, TimestampDelta64: int64(delta)}
		if key != "-" {
			r.Key = []byte(key)
		}
		if value != "-" {
			r.Value = []byte(value)
		}
		return r
	}
	withHeaders := plain(1, "k", "v")
	withHeaders.Headers = []kmsg.Header{{Key: "trace", Value: []byte("t-1")}, {Key: "empty"}}
	full := testBatch(10, 0, t0, t0+2, plain(0, "a", "1"), plain(1, "b", "2"), plain(2, "c", "3"))
	fullWant := []kafka.Message{
		testMessage(10, []byte("a"), []byte("1"), t0), testMessage(11, []byte("b"), []byte("2"), t0+1),
		testMessage(12, []byte("c"), []byte("3"), t0+2),
	}
	cases := []struct {
		name    string
		offset  int64
		batches [][]byte
		want    []kafka.Message
		next    int64
	}{{
		name:   "keys, values and headers; a null or empty key or value is nil",
		offset: 10,
		batches: [][]byte{testBatch(10, 0, t0, t0+2,
			plain(0, "-", "-"), withHeaders, plain(2, "", "")),
		},
		want: []kafka.Message{
			testMessage(10, nil, nil, t0),
			testMessage(11, []byte("k"), []byte("v"), t0+1, kafka.Header{Key: "trace", Value: []byte("t-1")}, kafka.Header{Key: "empty"}),
			testMessage(12, nil, nil, t0+2),
		},
		next: 13,
	}, {
		name:    "a batch that starts before the offset asked for",
		offset:  11,
		batches: [][]byte{full},
		want:    fullWant[1:],
		next:    13,
	}, {
		name:    "a last batch cut short ends the records",
		offset:  10,
		batches: [][]byte{full, testBatch(13, 0, t0, t0, plain(0, "d", "4"))[:40]},
		want:    fullWant,
		next:    13,
	}, {
		name:    "a batch cut inside its header ends the records too",
		offset:  10,
		batches: [][]byte{full, testBatch(13, 0, t0, t0, plain(0, "d", "4"))[:14]},
		want:    fullWant,
		next:    13,
	}, {
		name:    "a control batch is stepped over",
		offset:  10,
		batches: [][]byte{testBatch(10, attrControl|0x10, t0, t0, plain(0, "\x00\x00\x00\x01", "-")), testBatch(11, 0, t0, t0, plain(0, "b", "2"))},
		want:    []kafka.Message{testMessage(11, []byte("b"), []byte("2"), t0)},
		next:    12,
	}, {
		name:    "a log append time batch stamps its records with its max timestamp",
		offset:  10,
		batches: [][]byte{testBatch(10, attrLogAppendTime, t0, t0+500, plain(0, "a", "1"), plain(1, "b", "2"))},
		want:    []kafka.Message{testMessage(10, []byte("a"), []byte("1"), t0+500), testMessage(11, []byte("b"), []byte("2"), t0+500)},
		next:    12,
	}, {
		name:   "offsets removed by compaction are stepped over",
		offset: 10,
		batches: [][]byte{testBatch(10, 0, t0, t0, plain(0, "a", "1"), plain(4, "e", "5"),
			kmsg.Record{OffsetDelta: 6, Value: []byte("x")})},
		want: []kafka.Message{testMessage(10, []byte("a"), []byte("1"), t0), testMessage(14, []byte("e"), []byte("5"), t0+4),
			testMessage(16, nil, []byte("x"), t0)},
		next: 17,
	}, {
		name:    "a record without a timestamp has the zero time",
		offset:  10,
		batches: [][]byte{testBatch(10, 0, 0, 0, kmsg.Record{Value: []byte("1")})},
		want:    []kafka.Message{{Topic: "in", Offset: 10, HighWaterMark: 100, Value: []byte("1")}},
		next:    11,
	}, {
		name:   "no records",
		offset: 10,
		want:   []kafka.Message{},
		next:   10,
	}}
	for _, c := range cases {
		for v := int16(fetchMinVersion); v <= fetchMaxVersion; v++ {
			t.Run(fmt.Sprintf("%s/v%d", c.name, v), func(t *testing.T) {
				got, err := parseFetch(testResponse(v, 100, 0, c.batches...), v, "in", 0, c.offset, nil)
				if err != nil {
					t.Fatalf("parseFetch = %v", err)
				}
				if !reflect.DeepEqual(got.msgs, c.want) || got.next != c.next || got.highWatermark != 100 {
					t.Fatalf("parseFetch =\n%+v next %d hwm %d\nwant\n%+v next %d hwm 100", got.msgs, got.next, got.highWatermark, c.want, c.next)
				}
			})
		}
	}
}

func TestParseFetchValuesAliasTheResponseAndCannotOverwriteEachOther(t *testing.T) {
	body := testResponse(10, 100, 0, testBatch(10, 0, t0, t0, kmsg.Record{Value: []byte("ab")}, kmsg.Record{OffsetDelta: 1, Value: []byte("cd")}))
	got, err := parseFetch(body, 10, "in", 0, 10, nil)
	if err != nil {
		t.Fatal(err)
	}
	if i := bytes.Index(body, []byte("ab")); i < 0 || &body[i] != &got.msgs[0].Value[0] {
		t.Errorf("the value is a copy, not a slice of the response")
	}
	_ = append(got.msgs[0].Value, "XX"...)
	if string(got.msgs[1].Value) != "cd" {
		t.Errorf("appending to a value overwrote the next record's: %q", got.msgs[1].Value)
	}
}

func TestParseFetchReturnsErrorsKafkaGoReturns(t *testing.T) {
	res, err := parseFetch(testResponse(10, 42, int16(kafka.OffsetOutOfRange)), 10, "in", 0, 50, nil)
	if !errors.Is(err, kafka.OffsetOutOfRange) || res.highWatermark != 42 {
		t.Errorf("a partition error: %v, high watermark %d; want OffsetOutOfRange and 42", err, res.highWatermark)
	}
	top := kmsg.FetchResponse{Version: 10, ErrorCode: int16(kafka.InvalidFetchSessionEpoch)}
	if _, err := parseFetch(top.AppendTo(nil), 10, "in", 0, 0, nil); !errors.Is(err, kafka.InvalidFetchSessionEpoch) {
		t.Errorf("a response error: %v, want InvalidFetchSessionEpoch", err)
	}
}

func TestParseFetchRefusesMalformedResponses(t *testing.T) {
	good := testBatch(10, 0, t0, t0, kmsg.Record{Value: []byte("1")}, kmsg.Record{OffsetDelta: 1, Value: []byte("2")})
	longRecord := bytes.Clone(good)
	longRecord[batchHeaderSize] = 0x7e // the first record's length: 63 bytes
	v1 := binary.BigEndian.AppendUint64(nil, 10)
	v1 = binary.BigEndian.AppendUint32(v1, 20)
	v1 = append(v1, 0, 0, 0, 0, 1) // crc, magic 1
	v1 = append(v1, make([]byte, 15)...)
	shortHeader := bytes.Clone(good)
	binary.BigEndian.PutUint32(shortHeader[8:], 20)
	lz := bytes.Clone(good)
	binary.BigEndian.PutUint16(lz[21:], 6) // no such compression
	other := kmsg.FetchResponse{Version: 10, Topics: []kmsg.FetchResponseTopic{{Topic: "in", Partitions: []kmsg.FetchResponseTopicPartition{{Partition: 1}}}}}
	cases := []struct {
		name, want string
		body       []byte
	}{
		{"a message set of magic 1", "only record batches (magic 2)", testResponse(10, 100, 0, v1)},
		{"a record longer than its batch", "bytes wanted", testResponse(10, 100, 0, longRecord)},
		{"a batch shorter than its header", "a record batch of 20 bytes", testResponse(10, 100, 0, shortHeader)},
		{"an unknown compression", "unknown compression 6", testResponse(10, 100, 0, lz)},
		{"no answer for the partition", "no answer for in/0", other.AppendTo(nil)},
		{"a body cut short", "bytes wanted", testResponse(10, 100, 0, good)[:20]},
		{"a corrupt partition count", "elements in", append(binary.BigEndian.AppendUint32(make([]byte, 10), 1), 0, 2, 'i', 'n', 0x7f, 0, 0, 0)},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := parseFetch(c.body, 10, "in", 0, 10, nil)
			if !errors.Is(err, errMalformed) || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("parseFetch = %v, want a malformed response: %q", err, c.want)
			}
		})
	}
}

func FuzzParseFetch(f *testing.F) {
	for _, body := range recordedResponses(f) {
		f.Add(body, int16(10), int64(0))
	}
	f.Add(testResponse(4, 100, 0, testBatch(10, 0, t0, t0, kmsg.Record{Value: []byte("1"), Headers: []kmsg.Header{{Key: "k"}}})), int16(4), int64(10))
	f.Add(testResponse(7, 100, 0, testBatch(10, attrControl, t0, t0, kmsg.Record{})), int16(7), int64(10))
	f.Fuzz(func(t *testing.T, body []byte, version int16, offset int64) {
		version = fetchMinVersion + (version&0x7fff)%(fetchMaxVersion-fetchMinVersion+1)
		res, err := parseFetch(body, version, "in", 0, offset, nil)
		if err != nil {
			return
		}
		if res.next < offset {
			t.Fatalf("next %d before the offset asked for, %d", res.next, offset)
		}
		for i, m := range res.msgs {
			if m.Offset < offset || m.Offset >= res.next {
				t.Fatalf("record %d at offset %d: outside [%d, %d)", i, m.Offset, offset, res.next)
			}
		}
	})
}

// recordedResponses writes records of every kind to a new topic "in"-like
// partition of the shared Kafka, each compression in its own batch, and
// returns the bodies of the fetch responses that read them back, from the
// first offset, renamed to topic "in".
func recordedResponses(tb testing.TB) [][]byte {
	tb.Helper()
	brokers, topic := kafkaTopicOfEveryKind(tb)
	f, conn, offset := dialTestFetcher(tb, brokers, topic, kafka.FirstOffset, 1<<20)
	var bodies [][]byte
	for _, maxBytes := range []int{1 << 20, 2000} {
		f.maxBytes = maxBytes
		body, _, err := f.roundTrip(conn, offset)
		if err != nil {
			tb.Fatal(err)
		}
		if conn.version != 10 {
			tb.Fatalf("fetch v%d spoken, want v10", conn.version)
		}
		// The topic's name is the response's only part that changes.
		bodies = append(bodies, bytes.Replace(body, appendString(nil, topic), appendString(nil, "in"), 1))
	}
	return bodies
}

// kafkaTopicOfEveryKind creates a one-partition topic on the shared Kafka
// and writes to it: records with and without keys, values and headers,
// uncompressed and in each compression, a batch each.
func kafkaTopicOfEveryKind(tb testing.TB) (brokers []string, topic string) {
	tb.Helper()
	brokers, topic = newTopic(tb)
	for _, codec := range []kafka.Compression{0, kafka.Gzip, kafka.Snappy, kafka.Lz4, kafka.Zstd} {
		tr := &kafka.Transport{}
		w := &kafka.Writer{
			Addr: kafka.TCP(brokers...), Transport: tr, Topic: topic, Compression: codec,
			RequiredAcks: kafka.RequireAll, BatchTimeout: time.Millisecond, BatchSize: 1000,
		}
		msgs := make([]kafka.Message, 40)
		for i := range msgs {
			m := &msgs[i]
			m.Time = time.UnixMilli(t0 + int64(i))
			switch i % 4 {
			case 0:
				m.Key, m.Value = []byte("key-"+strconv.Itoa(i)), bytes.Repeat([]byte{byte(i)}, 90)
			case 1:
				m.Value = []byte("no key " + codec.String())
				m.Headers = []kafka.Header{{Key: "trace", Value: []byte(strconv.Itoa(i))}, {Key: "empty"}}
			case 2:
				m.Key = []byte("tombstone") // a null value
			case 3:
				m.Key, m.Value = []byte{}, []byte{}
			}
		}
		err := w.WriteMessages(context.Background(), msgs...)
		_ = w.Close()
		tr.CloseIdleConnections()
		if err != nil {
			tb.Fatalf("write %s records to %s: %v", codec, topic, err)
		}
	}
	return brokers, topic
}

// newTopic creates a topic of one partition on the shared Kafka, deleted
// when tb ends.
func newTopic(tb testing.TB) (brokers []string, topic string) {
	tb.Helper()
	brokers = testenv.KafkaBrokers(tb)
	topic = testenv.Name(tb, "fetch")
	c := &kafka.Client{Addr: kafka.TCP(brokers...)}
	testenv.DeleteTopicsAtCleanup(tb, c, topic)
	res, err := c.CreateTopics(context.Background(), &kafka.CreateTopicsRequest{Topics: []kafka.TopicConfig{{
		Topic: topic, NumPartitions: 1, ReplicationFactor: 1,
	}}})
	if err != nil || res.Errors[topic] != nil {
		tb.Fatalf("create %s: %v %v", topic, err, res.Errors[topic])
	}
	return brokers, topic
}

// dialTestFetcher makes a fetcher of topic's partition 0 and connects it
// to the leader, at offset resolved, until tb ends.
func dialTestFetcher(tb testing.TB, brokers []string, topic string, offset int64, maxBytes int) (*fetcher, *leader, int64) {
	tb.Helper()
	f := &fetcher{
		dialer: &kafka.Dialer{Timeout: 10 * time.Second}, brokers: brokers, topic: topic,
		maxBytes: maxBytes, maxWait: 100 * time.Millisecond, log: slog.New(slog.DiscardHandler),
	}
	conn, offset, err := f.dial(context.Background(), offset)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { _ = conn.Close() })
	return f, conn, offset
}

// readWithKafkaGo reads topic's partition 0 from offset to end as the
// fetcher did before it spoke the fetch itself, and hands got each
// response's records.
func readWithKafkaGo(t testing.TB, brokers []string, topic string, offset, end int64, maxBytes int, got func([]kafka.Message)) {
	t.Helper()
	conn, err := kafka.DialLeader(context.Background(), "tcp", brokers[0], topic, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if _, err := conn.Seek(offset, kafka.SeekAbsolute|kafka.SeekDontCheck); err != nil {
		t.Fatal(err)
	}
	hint := 0
	for offset < end {
		msgs := make([]kafka.Message, 0, max(hint, 16))
		_ = conn.SetReadDeadline(time.Now().Add(10 * time.Second))
		batch := conn.ReadBatchWith(kafka.ReadBatchConfig{MinBytes: 1, MaxBytes: maxBytes, MaxWait: 100 * time.Millisecond})
		for {
			m, err := batch.ReadMessage()
			if err != nil {
				break
			}
			msgs = append(msgs, m)
			offset = m.Offset + 1
		}
		if err := batch.Close(); err != nil {
			t.Fatalf("kafka-go at offset %d: %v", offset, err)
		}
		hint = len(msgs) + len(msgs)/4
		got(msgs)
	}
}

// readWithFetcher reads topic's partition 0 from offset to end with the
// fetcher's own fetches, and hands got each response's records.
func readWithFetcher(t testing.TB, brokers []string, topic string, offset, end int64, maxBytes int, got func([]kafka.Message)) {
	t.Helper()
	f, conn, offset := dialTestFetcher(t, brokers, topic, offset, maxBytes)
	for offset < end {
		res, next, err := f.fetch(conn, offset)
		if err != nil {
			t.Fatalf("fetch at offset %d: %v", offset, err)
		}
		got(res.msgs)
		offset = next
	}
}

func TestFetcherReadsWhatKafkaGoReadsOfEveryKindOfRecord(t *testing.T) {
	brokers, topic := kafkaTopicOfEveryKind(t)
	const end = 200 // 5 batches of 40
	for _, c := range []struct {
		from     int64
		maxBytes int
	}{{0, 1 << 20}, {0, 1000}, {13, 1 << 20}, {57, 1000}, {199, 1 << 20}} {
		t.Run(fmt.Sprintf("from %d by %d bytes", c.from, c.maxBytes), func(t *testing.T) {
			var got, want []kafka.Message
			readWithKafkaGo(t, brokers, topic, c.from, end, c.maxBytes, func(ms []kafka.Message) { want = append(want, ms...) })
			readWithFetcher(t, brokers, topic, c.from, end, c.maxBytes, func(ms []kafka.Message) { got = append(got, ms...) })
			if len(got) != len(want) || len(got) != int(end-c.from) {
				t.Fatalf("read %d records, kafka-go %d, want %d", len(got), len(want), end-c.from)
			}
			for i := range want {
				if !reflect.DeepEqual(got[i], want[i]) {
					t.Fatalf("record %d:\n%+v\nkafka-go:\n%+v", i, got[i], want[i])
				}
			}
		})
	}
}

func TestFetcherAnswersTheEndAndPastItAsKafkaGoDoes(t *testing.T) {
	brokers, topic := kafkaTopicOfEveryKind(t)
	f, conn, offset := dialTestFetcher(t, brokers, topic, kafka.LastOffset, 1<<20)
	if offset != 200 {
		t.Fatalf("the last offset is %d, want 200", offset)
	}
	res, next, err := f.fetch(conn, offset)
	if !errors.Is(err, kafka.RequestTimedOut) || res.highWatermark != 200 || next != 200 {
		t.Errorf("a fetch at the end: %v, high watermark %d, next %d; want RequestTimedOut, 200, 200", err, res.highWatermark, next)
	}
	if _, _, err := f.fetch(conn, offset+5); !errors.Is(err, kafka.OffsetOutOfRange) {
		t.Errorf("a fetch past the end: %v, want OffsetOutOfRange", err)
	}
	// The connection still serves kafka-go's requests after the fetcher's.
	if first, last, err := readOffsets(conn.Conn); err != nil || first != 0 || last != 200 {
		t.Errorf("readOffsets after the fetches = %d, %d, %v; want 0, 200", first, last, err)
	}
}

// benchResponse is the body of a fetch response v10 of about 512 KiB of
// records of about 100 bytes, 100 to a batch, and how many it holds.
func benchResponse() ([]byte, int) {
	var batches [][]byte
	n, size := 0, 0
	for size < 512<<10 {
		recs := make([]kmsg.Record, 100)
		for i := range recs {
			recs[i] = kmsg.Record{OffsetDelta: int32(i), TimestampDelta64: int64(i), Key: []byte("visitor-" + strconv.Itoa(n+i)), Value: bytes.Repeat([]byte{'v'}, 80)}
		}
		b := testBatch(int64(n), 0, t0, t0+99, recs...)
		batches, n, size = append(batches, b), n+len(recs), size+len(b)
	}
	return testResponse(10, int64(n), 0, batches...), n
}

func BenchmarkParseFetch(b *testing.B) {
	body, n := benchResponse()
	b.SetBytes(int64(len(body)))
	b.ReportAllocs()
	for b.Loop() {
		res, err := parseFetch(bytes.Clone(body), 10, "in", 0, 0, make([]kafka.Message, 0, n))
		if err != nil || len(res.msgs) != n {
			b.Fatalf("parseFetch: %d records, %v", len(res.msgs), err)
		}
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*n), "ns/record")
}

// BenchmarkKafkaGoReadBatch reads benchResponse as the fetcher did before:
// kafka-go's Conn.ReadBatch and Batch.ReadMessage, from a canned broker.
func BenchmarkKafkaGoReadBatch(b *testing.B) {
	body, n := benchResponse()
	client, server := net.Pipe()
	defer client.Close()
	go serveCanned(server, body)
	conn := kafka.NewConn(client, "in", 0)
	b.SetBytes(int64(len(body)))
	b.ReportAllocs()
	for b.Loop() {
		_, _ = conn.Seek(0, kafka.SeekAbsolute|kafka.SeekDontCheck)
		batch := conn.ReadBatchWith(kafka.ReadBatchConfig{MinBytes: 1, MaxBytes: 1 << 20, MaxWait: time.Second})
		msgs := make([]kafka.Message, 0, n) // as the fetcher sized them
		for {
			m, err := batch.ReadMessage()
			if err != nil {
				break
			}
			msgs = append(msgs, m)
		}
		if err := batch.Close(); err != nil || len(msgs) != n {
			b.Fatalf("kafka-go: %d records, %v", len(msgs), err)
		}
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*n), "ns/record")
}

// serveCanned answers ApiVersions with fetch v4 to v10, and every fetch
// with body, until conn is closed.
func serveCanned(conn net.Conn, body []byte) {
	defer conn.Close()
	versions := kmsg.ApiVersionsResponse{ApiKeys: []kmsg.ApiVersionsResponseApiKey{{ApiKey: fetchAPIKey, MinVersion: 4, MaxVersion: 10}}}
	for {
		var size [4]byte
		if _, err := io.ReadFull(conn, size[:]); err != nil {
			return
		}
		req := make([]byte, binary.BigEndian.Uint32(size[:]))
		if _, err := io.ReadFull(conn, req); err != nil {
			return
		}
		res := body
		if binary.BigEndian.Uint16(req) == uint16(kmsg.ApiVersions) {
			res = versions.AppendTo(nil)
		}
		frame := binary.BigEndian.AppendUint32(nil, uint32(4+len(res)))
		frame = append(frame, req[4:8]...) // the correlation id
		if _, err := conn.Write(append(frame, res...)); err != nil {
			return
		}
	}
}

func TestLeaderConnectionsHandshakeTLSAsKafkaGoDoes(t *testing.T) {
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "broker"},
		IPAddresses: []net.IP{net.ParseIP("127.0.0.1")},
		NotBefore:   time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
	}
	certFile, keyFile, cert := testenv.SelfSigned(t, t.TempDir(), "cert.pem", "key.pem", tmpl)
	pair, err := tls.LoadX509KeyPair(certFile, keyFile)
	if err != nil {
		t.Fatal(err)
	}
	ln := tls.NewListener(testenv.Listen(t), &tls.Config{Certificates: []tls.Certificate{pair}})
	addr := testenv.Serve(t, ln, func(ctx context.Context, ln net.Listener) error {
		context.AfterFunc(ctx, func() { _ = ln.Close() })
		for {
			c, err := ln.Accept()
			if err != nil {
				return nil
			}
			_ = c.(*tls.Conn).Handshake()
			_ = c.Close()
		}
	})
	roots := x509.NewCertPool()
	roots.AddCert(cert)
	orig := &kafka.Dialer{TLS: &tls.Config{RootCAs: roots}}
	var dialed net.Conn
	d := rawDialer(orig, func(c net.Conn) { dialed = c })
	if d.TLS != nil || orig.TLS == nil {
		t.Fatalf("TLS left to kafka-go on the copy (%v), or taken from the original (%v)", d.TLS, orig.TLS)
	}
	conn, err := d.DialFunc(context.Background(), "tcp", addr)
	if err != nil {
		t.Fatalf("dial %s: %v", addr, err)
	}
	defer conn.Close()
	tc, ok := conn.(*tls.Conn)
	if !ok || dialed != conn {
		t.Fatalf("dialled %T, told of %v; want the TLS connection, told of it", conn, dialed)
	}
	// The certificate was verified (for its IP address, which takes a
	// server name: the dialled host's), on a copy of the original's config.
	if st := tc.ConnectionState(); !st.HandshakeComplete || len(st.VerifiedChains) == 0 || orig.TLS.ServerName != "" {
		t.Errorf("handshake complete %v, verified chains %d, the original's server name %q; want a verified handshake, the original untouched",
			st.HandshakeComplete, len(st.VerifiedChains), orig.TLS.ServerName)
	}
}

// BenchmarkReadFromKafka reads 50,000 records of about 100 bytes from the
// shared Kafka, by fetches of 512 KiB: with the fetcher's own fetch, and
// with kafka-go's as before.
func BenchmarkReadFromKafka(b *testing.B) {
	brokers, topic := newTopic(b)
	const n = 50_000
	tr := &kafka.Transport{}
	defer tr.CloseIdleConnections()
	w := &kafka.Writer{Addr: kafka.TCP(brokers...), Transport: tr, Topic: topic, BatchSize: 1000, BatchTimeout: time.Millisecond}
	msgs := make([]kafka.Message, n)
	for i := range msgs {
		msgs[i] = kafka.Message{Key: []byte("visitor-" + strconv.Itoa(i)), Value: bytes.Repeat([]byte{'v'}, 80)}
	}
	if err := w.WriteMessages(context.Background(), msgs...); err != nil {
		b.Fatal(err)
	}
	_ = w.Close()
	for _, r := range []struct {
		name string
		read func(testing.TB, []string, string, int64, int64, int, func([]kafka.Message))
	}{{"fetcher", readWithFetcher}, {"kafka-go", readWithKafkaGo}} {
		b.Run(r.name, func(b *testing.B) {
			b.ReportAllocs()
			cpu := processCPU(b)
			for b.Loop() {
				got := 0
				r.read(b, brokers, topic, 0, n, 512<<10, func(ms []kafka.Message) { got += len(ms) })
				if got != n {
					b.Fatalf("read %d records, want %d", got, n)
				}
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*n), "ns/record")
			b.ReportMetric(float64(processCPU(b)-cpu)/float64(b.N*n), "cpu-ns/record")
		})
	}
}

// processCPU is the CPU time the process has used, user and system, in
// nanoseconds.
func processCPU(tb testing.TB) int64 {
	var u syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &u); err != nil {
		tb.Fatal(err)
	}
	return u.Utime.Nano() + u.Stime.Nano()
}
