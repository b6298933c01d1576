package producer

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"time"

	"github.com/segmentio/kafka-go"

	"github.com/domination/domination/wire"
)

// Defaults for VisitsConfig. DefaultMaxVisits is for the command's
// --max-messages flag: in VisitsConfig, zero MaxMessages means no limit.
const (
	DefaultVisitsTopic = wire.VisitsTopic
	DefaultAccountID   = 352
	DefaultStoreID     = "default"
	DefaultFrequency   = 1.0
	DefaultMaxVisits   = 300
	DefaultLateBy      = 30 * time.Second
)

// VisitsConfig configures RunVisits, the load generator behind
// `domination produce visits`.
type VisitsConfig struct {
	// Topic receives the visits. Default DefaultVisitsTopic.
	Topic string
	// AccountIDs are the accounts a visit picks from, uniformly. Default
	// [DefaultAccountID].
	AccountIDs []int64
	// StoreIDs are the stores a visit picks from. A visit has no store
	// (store_id null) with probability 1/(len(StoreIDs)+1), else one of
	// StoreIDs uniformly. Default [DefaultStoreID]. Repeats weigh a store
	// more.
	StoreIDs []string
	// Frequency is visits per second. Default DefaultFrequency;
	// math.Inf(1) (the flag value "inf") means as fast as possible.
	Frequency float64
	// MaxMessages stops the run after that many visits; 0 runs until ctx
	// ends. (The command's flag defaults to DefaultMaxVisits, 300.)
	MaxMessages int64
	// Seed makes the ids, accounts, stores and late choices reproducible:
	// a non-zero seed always gives the same sequence (see VisitStream).
	// Zero picks a random seed, which is logged and reported in Summary.
	Seed int64
	// LateFraction, in [0, 1], is the share of visits stamped LateBy in
	// the past, to exercise windows that receive records after they
	// would have closed. Default 0.
	LateFraction float64
	// LateBy is how far in the past a late visit is stamped. Default
	// DefaultLateBy.
	LateBy time.Duration
	// Sending sets the batch size and the WriteMessages calls in flight.
	// Defaults as Sending's.
	Sending
	// Now stamps visits. Default time.Now.
	Now func() time.Time
}

// WithDefaults returns c with its zero fields set to the documented
// defaults. Seed stays as it is: RunVisits picks a random one for zero.
func (c VisitsConfig) WithDefaults() VisitsConfig {
	c.Topic = cmp.Or(c.Topic, DefaultVisitsTopic)
	if len(c.AccountIDs) == 0 {
		c.AccountIDs = []int64{DefaultAccountID}
	}
	if len(c.StoreIDs) == 0 {
		c.StoreIDs = []string{DefaultStoreID}
	}
	c.Frequency = cmp.Or(c.Frequency, DefaultFrequency)
	c.LateBy = cmp.Or(c.LateBy, DefaultLateBy)
	c.Sending = c.Sending.WithDefaults()
	if c.Now == nil {
		c.Now = time.Now
	}
	return c
}

// Validate reports the first setting that cannot work. It applies no
// defaults: call it on c.WithDefaults().
func (c VisitsConfig) Validate() error {
	if err := c.Sending.validateRun("visits", c.Topic, "frequency", c.Frequency, "max messages", c.MaxMessages); err != nil {
		return err
	}
	if math.IsNaN(c.LateFraction) || c.LateFraction < 0 || c.LateFraction > 1 {
		return fmt.Errorf("visits late fraction %v is outside 0..1", c.LateFraction)
	}
	if c.LateBy < 0 {
		return fmt.Errorf("visits late-by %s is negative", c.LateBy)
	}
	return nil
}

// Visit is one generated visit: the visits topic's record, so that what is
// produced and what is consumed share one encoding (wire.AppendVisit).
type Visit = wire.Visit

// VisitStream yields the deterministic sequence of visits for a
// configuration: the same Seed, AccountIDs, StoreIDs and LateFraction give
// the same ids, accounts, stores and late choices; timestamps come from
// the time passed to Next.
//
// Each visit draws from a PCG generator seeded with (Seed,
// 0x7669736974733031): the id's 128 bits, the account index, the store
// index (len(StoreIDs) meaning null) and one value for the late choice,
// drawn whatever LateFraction is. A VisitStream is not safe for
// concurrent use.
type VisitStream struct {
	rng          *prng
	accounts     []int64
	stores       []*string
	storeBytes   [][]byte // the stores as bytes; the last is nil, null
	lateFraction float64
	lateBy       time.Duration
}

// NewVisitStream returns the stream for cfg, after defaults. Every seed, 0
// included, is a seed here.
func NewVisitStream(cfg VisitsConfig) (*VisitStream, error) {
	cfg = cfg.WithDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	s := &VisitStream{
		rng:          newPRNG(cfg.Seed, visitsStreamID),
		accounts:     append([]int64(nil), cfg.AccountIDs...),
		lateFraction: cfg.LateFraction,
		lateBy:       cfg.LateBy,
	}
	for _, id := range cfg.StoreIDs {
		s.stores = append(s.stores, &id)
		s.storeBytes = append(s.storeBytes, []byte(id))
	}
	s.stores = append(s.stores, nil)
	s.storeBytes = append(s.storeBytes, nil)
	return s, nil
}

// next draws one visit: its id, account, store index and Unix
// microseconds (now, or now-lateBy for a late one).
func (s *VisitStream) next(now time.Time) (id [uuidLen]byte, account int64, store int, micros int64) {
	id = s.rng.uuid4()
	account = s.accounts[s.rng.below(uint64(len(s.accounts)))]
	store = int(s.rng.below(uint64(len(s.stores))))
	micros = now.UnixMicro()
	if s.rng.float() < s.lateFraction {
		micros -= s.lateBy.Microseconds()
	}
	return id, account, store, micros
}

// Next returns the next visit, stamped now (or now-LateBy for a late one).
func (s *VisitStream) Next(now time.Time) Visit {
	id, account, store, micros := s.next(now)
	return Visit{ID: string(id[:]), AccountID: account, StoreID: s.stores[store], Timestamp: microsToSeconds(micros)}
}

// AppendJSON appends the next visit, stamped now, encoded as
// wire.AppendVisit does, to dst, without allocating beyond dst's growth.
// It returns the extended buffer and the visit's time.
func (s *VisitStream) AppendJSON(dst []byte, now time.Time) (buf []byte, ts time.Time) {
	id, account, store, micros := s.next(now)
	// The visit in place, as wire writes it on the repartition topic too.
	v := wire.Repartitioned{ID: id[:], AccountID: account, StoreID: s.storeBytes[store], Timestamp: microsToSeconds(micros)}
	return wire.AppendRepartitionedJSON(dst, v), time.UnixMicro(micros)
}

func microsToSeconds(micros int64) float64 { return float64(micros) / 1e6 }

// visitsEncoder feeds RunVisits' batches. The id is the key: bytes 7..43
// of the value, after `{"id":"`.
type visitsEncoder struct {
	s   *VisitStream
	now func() time.Time
}

func (e visitsEncoder) appendNext(dst []byte) ([]byte, int, int, time.Time) {
	start := len(dst)
	dst, ts := e.s.AppendJSON(dst, e.now())
	return dst, start + 7, start + 7 + uuidLen, ts
}

// RunVisits writes visits to cfg.Topic through w until MaxMessages are
// sent or ctx ends, pacing them at cfg.Frequency, keying each by its id
// and setting each message's time to the visit's timestamp. It works as
// RunRatings does: see there for batching, failures and stopping.
func RunVisits(ctx context.Context, w *kafka.Writer, cfg VisitsConfig, progress Progress, log *slog.Logger) (Summary, error) {
	cfg = cfg.WithDefaults()
	if err := cfg.Validate(); err != nil {
		return Summary{Kind: "visits"}, err
	}
	if w == nil {
		return Summary{Kind: "visits"}, errors.New("produce visits: nil writer")
	}
	log = orDiscard(log)
	seed := cfg.Seed
	if seed == 0 {
		seed = randomSeed()
	}
	streamCfg := cfg
	streamCfg.Seed = seed
	stream, err := NewVisitStream(streamCfg)
	if err != nil {
		return Summary{Kind: "visits", Seed: seed}, err
	}
	log.Info("producing visits", "topic", cfg.Topic, "seed", seed, "frequency", cfg.Frequency,
		"max_messages", cfg.MaxMessages, "accounts", len(cfg.AccountIDs), "stores", len(cfg.StoreIDs),
		"late_fraction", cfg.LateFraction, "late_by", cfg.LateBy)
	r := &run{
		kind:     "visits",
		topic:    cfg.Topic,
		w:        w,
		enc:      visitsEncoder{s: stream, now: cfg.Now},
		rate:     unpaced(cfg.Frequency),
		count:    cfg.MaxMessages,
		send:     cfg.Sending,
		seed:     seed,
		progress: progress,
		log:      log,
	}
	return r.run(ctx)
}
