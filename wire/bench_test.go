package wire

import (
	"encoding/json"
	"testing"
)

var (
	ratingBenchMessage        = []byte(`{"rating": 42, "unique_id": "` + exampleUUID + `"}`)
	ratingBenchEscapedMessage = []byte(`{"rating": 42, "unique_id": "0b8c9f0e\/3a6f\u002d4c55-9b1e-8d7c2f1a0e11"}`)
	ratingBenchSink           Rating
	typeBenchSink             Type
)

// BenchmarkDecodeClassifyEncode is the shadow agent's whole hot path for
// one typical record, writing into a reused buffer.
func BenchmarkDecodeClassifyEncode(b *testing.B) {
	dst := make([]byte, 0, 256)
	b.ReportAllocs()
	b.SetBytes(int64(len(ratingBenchMessage)))
	for b.Loop() {
		r, err := DecodeRating(ratingBenchMessage, RatingLimits{})
		if err != nil {
			b.Fatal(err)
		}
		dst = AppendShadow(dst[:0], Classify(r.Rating), r.UniqueID, 1700000000, r.Rating)
	}
}

func BenchmarkDecodeRating(b *testing.B) {
	for _, bm := range []struct {
		name string
		in   []byte
	}{
		{"plain", ratingBenchMessage},
		{"escaped", ratingBenchEscapedMessage},
		{"canonical", AppendRating(nil, Rating{Rating: 42, UniqueID: []byte(exampleUUID)})},
	} {
		b.Run(bm.name, func(b *testing.B) {
			b.ReportAllocs()
			b.SetBytes(int64(len(bm.in)))
			for b.Loop() {
				r, err := DecodeRating(bm.in, RatingLimits{})
				if err != nil {
					b.Fatal(err)
				}
				ratingBenchSink = r
			}
		})
	}
}

// BenchmarkDecodeRatingEncodingJSON is the baseline the hand-written
// scanner replaces: encoding/json into a struct, without any of the checks.
func BenchmarkDecodeRatingEncodingJSON(b *testing.B) {
	b.ReportAllocs()
	b.SetBytes(int64(len(ratingBenchMessage)))
	for b.Loop() {
		var v struct {
			Rating   int64  `json:"rating"`
			UniqueID string `json:"unique_id"`
		}
		if err := json.Unmarshal(ratingBenchMessage, &v); err != nil {
			b.Fatal(err)
		}
		ratingBenchSink.Rating = v.Rating
	}
}

func BenchmarkDecodeRatingRejectsMalformed(b *testing.B) {
	in := []byte(`{"rating": 42, "unique_id": "` + exampleUUID + `"}x`)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := DecodeRating(in, RatingLimits{}); err == nil {
			b.Fatal("accepted trailing garbage")
		}
	}
}

func BenchmarkClassify(b *testing.B) {
	var r int64
	for b.Loop() {
		r++
		typeBenchSink = Classify(r%100 + 1)
	}
}

func BenchmarkAppendShadow(b *testing.B) {
	for _, bm := range []struct {
		name string
		id   []byte
	}{
		{"plain", []byte(exampleUUID)},
		{"escaped", []byte("0b8c9f0e\"3a6f\\4c55\n9b1e-8d7c2f1a0e11")},
	} {
		b.Run(bm.name, func(b *testing.B) {
			dst := make([]byte, 0, 256)
			b.ReportAllocs()
			for b.Loop() {
				dst = AppendShadow(dst[:0], Sha, bm.id, 1700000000, 42)
			}
		})
	}
}

var (
	benchVisit        = []byte(`{"id":"` + exampleUUID + `","account_id":42,"store_id":"s3","timestamp":1700000000.123456}`)
	benchVisitFaust   = []byte(faustVisit)
	benchVisitEscaped = []byte(`{"id": "0b8c9f0e\/3a6f\u002d4c55-9b1e-8d7c2f1a0e11", "account_id": 42, "store_id": "m\u00fcnchen", "timestamp": 1700000000.123456}`)
	visitBenchSink    Repartitioned
)

func BenchmarkDecodeVisit(b *testing.B) {
	lim := VisitLimits{}
	for _, bm := range []struct {
		name string
		in   []byte
	}{
		{"plain", benchVisit},
		{"faust", benchVisitFaust},
		{"escaped", benchVisitEscaped},
	} {
		b.Run(bm.name, func(b *testing.B) {
			b.ReportAllocs()
			b.SetBytes(int64(len(bm.in)))
			for b.Loop() {
				v, err := ScanVisit(bm.in, visitRecorded, lim)
				if err != nil {
					b.Fatal(err)
				}
				visitBenchSink = v
			}
		})
	}
	// The canonical visit on the scanner alone, without the layout path.
	b.Run("plain-scanner", func(b *testing.B) {
		b.ReportAllocs()
		b.SetBytes(int64(len(benchVisit)))
		for b.Loop() {
			v, err := scanVisit(benchVisit, visitRecorded, lim.WithDefaults())
			if err != nil {
				b.Fatal(err)
			}
			visitBenchSink = v
		}
	})
}

// BenchmarkDecodeVisitEncodingJSON is the reference: encoding/json into a
// Visit, which is neither strict nor checked.
func BenchmarkDecodeVisitEncodingJSON(b *testing.B) {
	b.ReportAllocs()
	b.SetBytes(int64(len(benchVisit)))
	for b.Loop() {
		var v Visit
		if err := json.Unmarshal(benchVisit, &v); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkCheckShadow is the guard's audit of one record the agent wrote,
// on each path: the layout match CheckShadow tries first, the scanner, and
// the encoding/json check behind both.
func BenchmarkCheckShadow(b *testing.B) {
	rec := AppendShadow(nil, Classify(15), []byte(exampleUUID), 1700000000, 15)
	for _, bm := range []struct {
		name  string
		check func([]byte) bool
	}{
		{"layout", func(v []byte) bool { _, ok := laidOutShadow(v); return ok }},
		{"scanner", func(v []byte) bool { _, ok := plainShadow(v); return ok }},
		{"encoding-json", func(v []byte) bool { _, err := checkShadowJSON(v); return err == nil }},
	} {
		b.Run(bm.name, func(b *testing.B) {
			b.ReportAllocs()
			b.SetBytes(int64(len(rec)))
			for b.Loop() {
				if !bm.check(rec) {
					b.Fatal("refused")
				}
			}
		})
	}
}
