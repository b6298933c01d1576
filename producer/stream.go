package producer

import (
	"math/bits"
	"math/rand/v2"
	"strconv"

	"github.com/domination/domination/wire"
)

// Stream identifiers: the second half of each PCG seed, so that one seed
// gives unrelated ratings and visits streams (their ids never coincide).
const (
	ratingsStreamID = 0x7261_7469_6e67_7331 // "ratings1"
	visitsStreamID  = 0x7669_7369_7473_3031 // "visits01"
)

// prng is the seeded generator behind every stream. Its output is fully
// specified here and by math/rand/v2's PCG (whose algorithm is documented),
// not by rand.Rand's helpers, so a seed keeps meaning the same sequence
// across Go releases.
type prng struct{ pcg rand.PCG }

func newPRNG(seed int64, stream uint64) *prng {
	p := &prng{}
	p.pcg.Seed(uint64(seed), stream)
	return p
}

// below returns a uniform integer in [0, n), drawing one or more values
// (Lemire's multiply-and-reject). n == 0 means the full 64-bit range.
func (p *prng) below(n uint64) uint64 {
	if n == 0 {
		return p.pcg.Uint64()
	}
	hi, lo := bits.Mul64(p.pcg.Uint64(), n)
	if lo < n {
		threshold := -n % n
		for lo < threshold {
			hi, lo = bits.Mul64(p.pcg.Uint64(), n)
		}
	}
	return hi
}

// float returns a uniform float64 in [0, 1) from one draw.
func (p *prng) float() float64 {
	return float64(p.pcg.Uint64()>>11) / (1 << 53)
}

// uuidLen is the length of a formatted UUID: 8-4-4-4-12 hex digits.
const uuidLen = 36

// uuid4 draws two values and formats them, big-endian, as a version 4,
// RFC 9562 variant UUID in lowercase hex.
func (p *prng) uuid4() [uuidLen]byte {
	hi, lo := p.pcg.Uint64(), p.pcg.Uint64()
	hi = hi&^0xf000 | 0x4000       // version 4: high nibble of byte 6
	lo = lo&^(0xc0<<56) | 0x80<<56 // variant 10: top bits of byte 8
	return formatUUID(hi, lo)
}

const hexDigits = "0123456789abcdef"

// uuidDigit holds where each of the 32 hex digits goes in 8-4-4-4-12.
var uuidDigit = [32]uint8{
	0, 1, 2, 3, 4, 5, 6, 7,
	9, 10, 11, 12,
	14, 15, 16, 17,
	19, 20, 21, 22,
	24, 25, 26, 27, 28, 29, 30, 31, 32, 33, 34, 35,
}

func formatUUID(hi, lo uint64) [uuidLen]byte {
	var out [uuidLen]byte
	out[8], out[13], out[18], out[23] = '-', '-', '-', '-'
	for i := range 16 {
		out[uuidDigit[i]] = hexDigits[hi>>(60-4*i)&0xf]
		out[uuidDigit[16+i]] = hexDigits[lo>>(60-4*i)&0xf]
	}
	return out
}

// Default rating range, used when Min and Max are both zero.
const (
	DefaultMinRating = 1
	DefaultMaxRating = 100
)

// RatingStream yields the deterministic sequence of ratings for a seed:
// the same seed and range always give the same sequence of (rating,
// unique_id). Tests and end-to-end checks use it to compute offline what a
// RunRatings with that seed produced.
//
// Each rating draws from a PCG generator seeded with (seed,
// 0x726174696e677331): first the rating, uniform in [min, max], then the
// 128 bits of the unique_id, a version 4 UUID. A RatingStream is not safe
// for concurrent use.
type RatingStream struct {
	rng  *prng
	min  int64
	span uint64 // max-min+1, wrapping: 0 means the whole int64 range
}

// NewRatingStream returns the stream for seed with ratings in [min, max].
// Every seed, 0 included, is a seed here. When min and max are both zero
// the range is the default 1..100, as in RatingsConfig; any other pair is
// used as given, so 0..100 is (0, 100). It panics if min > max; validate
// user input with RatingsConfig.Validate.
func NewRatingStream(seed int64, min, max int64) *RatingStream {
	if min == 0 && max == 0 {
		min, max = DefaultMinRating, DefaultMaxRating
	}
	if min > max {
		panic("producer: NewRatingStream: min " + strconv.FormatInt(min, 10) + " > max " + strconv.FormatInt(max, 10))
	}
	return &RatingStream{
		rng:  newPRNG(seed, ratingsStreamID),
		min:  min,
		span: uint64(max) - uint64(min) + 1,
	}
}

func (s *RatingStream) next() (int64, [uuidLen]byte) {
	rating := int64(uint64(s.min) + s.rng.below(s.span))
	return rating, s.rng.uuid4()
}

// Next returns the next rating and its unique_id.
func (s *RatingStream) Next() (rating int64, uniqueID string) {
	r, id := s.next()
	return r, string(id[:])
}

// AppendJSON appends the next rating, encoded as the message value
// {"rating":<int>,"unique_id":"<uuid>"}, to dst and returns the extended
// buffer and the rating's unique_id (also its message key).
func (s *RatingStream) AppendJSON(dst []byte) (buf []byte, uniqueID string) {
	buf = s.appendNext(dst)
	return buf, string(buf[len(buf)-uuidLen-2 : len(buf)-2])
}

// appendNext appends the next rating's JSON without allocating beyond dst's
// growth. The unique_id is the 36 bytes before the closing `"}`.
func (s *RatingStream) appendNext(dst []byte) []byte {
	rating, id := s.next()
	return wire.AppendRating(dst, wire.Rating{Rating: rating, UniqueID: id[:]})
}
