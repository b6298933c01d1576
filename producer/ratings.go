package producer

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/segmentio/kafka-go"

	"github.com/domination/domination/wire"
)

// Defaults shared by RatingsConfig and VisitsConfig.
const (
	DefaultRatingsTopic = wire.RatingsTopic
	DefaultBatchSize    = 1000
	DefaultInFlight     = 4
)

// RatingsConfig configures RunRatings, the load generator behind
// `domination produce ratings`.
type RatingsConfig struct {
	// Topic receives the ratings. Default DefaultRatingsTopic.
	Topic string
	// Rate is ratings per second; 0 (or +Inf) means as fast as possible.
	Rate float64
	// Count stops the run after that many ratings; 0 runs until ctx ends.
	Count int64
	// Min and Max bound the ratings, inclusive. When both are zero they
	// are DefaultMinRating and DefaultMaxRating (1 and 100); any other pair
	// is used as given, so 0..100 (what the original producer sent) is
	// Min 0, Max 100, and a range reaching outside 1..100 exercises the
	// shadow agent's dead-letter path.
	Min, Max int64
	// Seed makes the stream reproducible: a non-zero seed always gives the
	// same sequence of (rating, unique_id), the one NewRatingStream(Seed,
	// Min, Max) yields. Zero picks a random seed, which is logged and
	// reported in Summary so the run can be replayed.
	Seed int64
	// Sending sets the batch size and the WriteMessages calls in flight.
	// Defaults as Sending's.
	Sending
}

// WithDefaults returns c with its zero fields set to the documented
// defaults. Seed stays as it is: RunRatings picks a random one for zero.
func (c RatingsConfig) WithDefaults() RatingsConfig {
	c.Topic = cmp.Or(c.Topic, DefaultRatingsTopic)
	if c.Min == 0 && c.Max == 0 {
		c.Min, c.Max = DefaultMinRating, DefaultMaxRating
	}
	c.Sending = c.Sending.WithDefaults()
	return c
}

// Validate reports the first setting that cannot work. It applies no
// defaults: call it on c.WithDefaults().
func (c RatingsConfig) Validate() error {
	if err := c.Sending.validateRun("ratings", c.Topic, "rate", c.Rate, "count", c.Count); err != nil {
		return err
	}
	if c.Min > c.Max {
		return fmt.Errorf("ratings min %d is above max %d", c.Min, c.Max)
	}
	return nil
}

// ratingsEncoder feeds RunRatings' batches. The unique_id is the key: the
// 36 bytes before the closing `"}`.
type ratingsEncoder struct{ s *RatingStream }

func (e ratingsEncoder) appendNext(dst []byte) ([]byte, int, int, time.Time) {
	dst = e.s.appendNext(dst)
	end := len(dst) - 2
	return dst, end - uuidLen, end, time.Now()
}

// RunRatings writes ratings to cfg.Topic through w until Count are sent or
// ctx ends, and returns what happened.
//
// Ratings are generated in batches of up to BatchSize, paced so that no
// more than Rate per second go out on average, each keyed by its
// unique_id and timed at its creation. Up to InFlight WriteMessages calls
// run at once. progress, if not nil, is called about every second and at
// the end, from the goroutine that called RunRatings.
//
// When ctx ends, RunRatings stops generating, gives the writes in flight
// DrainTimeout to finish, and returns a nil error: an interrupt is a
// normal end. If they do not finish in time, the error says so. A write
// that fails is counted in Summary.Failed (per message, from
// kafka.WriteErrors), logged, and the run goes on, unless
// MaxFailedBatches batches in a row fail entirely; then RunRatings stops
// and returns the last error. Summary.Acked counts only messages Kafka
// acknowledged.
//
// w is used as given: for the settings RunRatings expects, make it with
// NewWriter. Its Topic must be empty or cfg.Topic.
func RunRatings(ctx context.Context, w *kafka.Writer, cfg RatingsConfig, progress Progress, log *slog.Logger) (Summary, error) {
	cfg = cfg.WithDefaults()
	if err := cfg.Validate(); err != nil {
		return Summary{Kind: "ratings"}, err
	}
	if w == nil {
		return Summary{Kind: "ratings"}, errors.New("produce ratings: nil writer")
	}
	log = orDiscard(log)
	seed := cfg.Seed
	if seed == 0 {
		seed = randomSeed()
	}
	log.Info("producing ratings", "topic", cfg.Topic, "seed", seed, "rate", cfg.Rate,
		"count", cfg.Count, "min", cfg.Min, "max", cfg.Max)
	r := &run{
		kind:     "ratings",
		topic:    cfg.Topic,
		w:        w,
		enc:      ratingsEncoder{s: NewRatingStream(seed, cfg.Min, cfg.Max)},
		rate:     unpaced(cfg.Rate),
		count:    cfg.Count,
		send:     cfg.Sending,
		seed:     seed,
		progress: progress,
		log:      log,
	}
	return r.run(ctx)
}
