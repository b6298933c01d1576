package rollup

import (
	"cmp"
	"context"
	"database/sql"
	"errors"
	"fmt"
	"log/slog"
	"strings"

	"time"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"

	"github.com/domination/domination/internal/backoff"
)

// Defaults of Config.
const (
	// DefaultInterval is the pause between passes.
	DefaultInterval = 10 * time.Second
	// DefaultLag is how long after its end a minute is first sealed: a
	// minute still being filled would only be sealed again.
	DefaultLag = time.Minute
	// DefaultMaxMinutes bounds the minutes one pass seals per store (a
	// week), so a pass over a store that was never sealed stays short.
	DefaultMaxMinutes = 7 * 24 * 60
	// DefaultRunMinutes bounds the minutes one read of a store with FINAL
	// covers (a day).
	DefaultRunMinutes = 24 * 60
)

// Config configures a Sealer.
type Config struct {
	// Interval is the pause between passes. Default DefaultInterval.
	Interval time.Duration
	// Lag: a minute is sealed once it ended at least Lag ago. It is no
	// condition of exactness (a minute sealed too early is sealed again),
	// only of work saved. Default DefaultLag.
	Lag time.Duration
	// MaxMinutes bounds the minutes one pass seals per store. Default
	// DefaultMaxMinutes.
	MaxMinutes int
	// RunMinutes bounds the minutes of one FINAL read. Default
	// DefaultRunMinutes.
	RunMinutes int
}

// WithDefaults returns c with its zero fields set to the documented
// defaults; negative ones stay, for Validate to refuse.
func (c Config) WithDefaults() Config {
	c.Interval = cmp.Or(c.Interval, DefaultInterval)
	c.Lag = cmp.Or(c.Lag, DefaultLag)
	c.MaxMinutes = cmp.Or(c.MaxMinutes, DefaultMaxMinutes)
	c.RunMinutes = cmp.Or(c.RunMinutes, DefaultRunMinutes)
	return c
}

// Validate reports the first setting that cannot work. It applies no
// defaults.
func (c Config) Validate() error {
	switch {
	case c.Interval < 0:
		return fmt.Errorf("rollup interval %v is negative", c.Interval)
	case c.Lag < 0:
		return fmt.Errorf("rollup lag %v is negative", c.Lag)
	case c.MaxMinutes < 1 || c.RunMinutes < 1:
		return fmt.Errorf("rollup minutes per pass %d and per read %d: want at least 1", c.MaxMinutes, c.RunMinutes)
	}
	return nil
}

// Sealer keeps the seals of both stores up to date. Every worker may run
// one: a pass is idempotent, and concurrent passes only repeat work.
type Sealer struct {
	cfg  Config
	conn driver.Conn
	log  *slog.Logger
	// bootstrapped is set once the stores' minutes that predate their
	// arrival counters are all sealed.
	bootstrapped [2]bool
}

// New returns a Sealer over conn's database; Run starts it.
func New(cfg Config, conn driver.Conn, log *slog.Logger) (*Sealer, error) {
	cfg = cfg.WithDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if conn == nil {
		return nil, errors.New("rollup: no clickhouse connection")
	}
	return &Sealer{cfg: cfg, conn: conn, log: log}, nil
}

// Run seals, pass after pass, until ctx ends. A failed pass (ClickHouse
// down, tables not migrated yet) is logged and tried again after
// Config.Interval; nothing is lost by a missed pass, the queries just read
// more with FINAL.
func (s *Sealer) Run(ctx context.Context) error {
	failing := false
	for {
		n, err := s.Pass(ctx, time.Now())
		switch {
		case ctx.Err() != nil:
			return nil
		case err != nil && !failing:
			s.log.Warn("rollup pass failed; queries read the unsealed minutes with FINAL meanwhile", "err", err)
			failing = true
		case err == nil && failing:
			s.log.Info("rollup passes succeed again", "sealed", n)
			failing = false
		case err == nil && n > 0:
			s.log.Debug("rollup pass", "sealed", n)
		}
		if !backoff.Sleep(ctx, s.cfg.Interval) {
			return nil
		}
	}
}

// Pass seals, in each store, the minutes that ended Config.Lag before now
// and have no seal or a seal whose arrival count is no longer the
// minute's; at most Config.MaxMinutes per store. It returns how many
// minutes it sealed.
func (s *Sealer) Pass(ctx context.Context, now time.Time) (int, error) {
	before := now.Add(-s.cfg.Lag).UTC().Truncate(time.Minute)
	total := 0
	for i, st := range stores {
		if !s.bootstrapped[i] {
			n, err := s.seal(ctx, st, st.unsealedStored, before)
			total += n
			if err != nil {
				return total, err
			}
			s.bootstrapped[i] = n == 0
		}
		n, err := s.seal(ctx, st, st.stale, before)
		total += n
		if err != nil {
			return total, err
		}
	}
	return total, nil
}

// seal reads candidate minutes with their arrival counts (the statement
// find), then seals them run by run.
func (s *Sealer) seal(ctx context.Context, st store, find string, before time.Time) (int, error) {
	// The arrival counts are read here, before any FINAL read of the
	// minutes they belong to: see the package doc.
	rows, err := s.conn.Query(ctx, find, before, before, s.cfg.MaxMinutes)
	if err != nil {
		return 0, fmt.Errorf("find %s minutes to seal: %w", st.name, err)
	}
	var cands []minute
	for rows.Next() {
		var m minute
		if err := rows.Scan(&m.at, &m.arrived); err != nil {
			rows.Close()
			return 0, fmt.Errorf("read %s minutes to seal: %w", st.name, err)
		}
		m.at = m.at.UTC()
		cands = append(cands, m)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return 0, fmt.Errorf("read %s minutes to seal: %w", st.name, err)
	}
	if len(cands) == 0 {
		return 0, nil
	}
	if err := s.syncReplica(ctx, st.name); err != nil {
		return 0, err
	}
	version := uint64(time.Now().UnixNano())
	sealed := 0
	for _, run := range runs(cands, s.cfg.RunMinutes) {
		if err := st.sealRun(ctx, s.conn, run, version); err != nil {
			return sealed, err
		}
		sealed += len(run)
	}
	return sealed, nil
}

// syncReplica makes a replicated store hold, before it is read with
// FINAL, every part whose rows the arrival counts just read have counted:
// replication fetches the counter's parts and the store's independently,
// so a replica may hold the first before the second. The replica that
// inserted a block logged the store's part before its views counted it, so
// SYSTEM SYNC REPLICA, which waits for what the log holds, fetches it. A
// store that is not replicated needs nothing.
func (s *Sealer) syncReplica(ctx context.Context, table string) error {
	var engine string
	err := s.conn.QueryRow(ctx, "SELECT engine FROM system.tables WHERE database = currentDatabase() AND name = ?", table).Scan(&engine)
	if err != nil && !errors.Is(err, sql.ErrNoRows) {
		return fmt.Errorf("read the engine of %s: %w", table, err)
	}
	if !strings.HasPrefix(engine, "Replicated") {
		return nil
	}
	if err := s.conn.Exec(ctx, "SYSTEM SYNC REPLICA "+table); err != nil {
		return fmt.Errorf("sync replica %s: %w", table, err)
	}
	return nil
}

// minute is a candidate for sealing: its start and the arrival count read
// before its FINAL read.
type minute struct {
	at      time.Time
	arrived uint64
}

// runs cuts sorted minutes into runs of consecutive minutes, at most max
// each, so that each run is one FINAL read over exactly its minutes.
func runs(ms []minute, max int) [][]minute {
	var out [][]minute
	start := 0
	for i := 1; i <= len(ms); i++ {
		if i == len(ms) || !ms[i].at.Equal(ms[i-1].at.Add(time.Minute)) || i-start == max {
			if i > start {
				out = append(out, ms[start:i])
			}
			start = i
		}
	}
	return out
}

// store is one source table with its counter and its seals.
type store struct {
	name string
	// stale finds minutes whose seal is missing or whose arrival count
	// moved; unsealedStored finds minutes the store holds that have
	// neither a seal nor an arrival (stored before the counter existed).
	// Both take (before, before, limit) and return (minute, arrived).
	stale, unsealedStored string
	sealRun               func(ctx context.Context, conn driver.Conn, run []minute, version uint64) error
}

// staleSQL finds the minutes of arrivals whose seal in seals is missing or
// names another arrival count. A minute's seal is its row (rows, for
// shadow's types, all alike) with the highest version, what FINAL keeps.
func staleSQL(arrivals, seals string) string {
	return "SELECT minute, arrived FROM (SELECT minute, sum(arrived) AS arrived FROM " + arrivals +
		" WHERE minute < ? GROUP BY minute) AS arrivals ANY LEFT JOIN (SELECT minute, argMax(arrived, sealed) AS sealed_arrived, toUInt8(1) AS has_seal FROM " + seals +
		" WHERE minute < ? GROUP BY minute) AS seals USING minute WHERE has_seal = 0 OR sealed_arrived != arrived ORDER BY minute LIMIT ?"
}

// unsealedSQL finds the minutes of store (by its time column) with neither
// an arrival nor a seal; their arrival count is 0.
func unsealedSQL(table, column, arrivals, seals string) string {
	return "SELECT minute, toUInt64(0) AS arrived FROM (SELECT DISTINCT toStartOfMinute(" + column + ") AS minute FROM " + table +
		" WHERE " + column + " < ?) WHERE minute < ? AND minute NOT IN (SELECT minute FROM " + seals + ") AND minute NOT IN (SELECT minute FROM " +
		arrivals + ") ORDER BY minute LIMIT ?"
}

// ShadowTypes are shadow.type's values; every seal writes one row for each.
var shadowTypes = []string{"Incompatible", "Sha", "Dow", "ShaDow"}

var stores = []store{
	{
		name:           "shadow",
		stale:          staleSQL("shadow_arrivals", "shadow_minutes"),
		unsealedStored: unsealedSQL("shadow", "emit_timestamp", "shadow_arrivals", "shadow_minutes"),
		sealRun:        sealShadow,
	},
	{
		name:           "active_visitors",
		stale:          staleSQL("active_visitors_arrivals", "active_visitors_seals"),
		unsealedStored: unsealedSQL("active_visitors", "window_start", "active_visitors_arrivals", "active_visitors_seals"),
		sealRun:        sealActiveVisitors,
	},
}

// sealShadow counts the run's minutes with FINAL and writes their seals,
// every type of every minute, in one block.
func sealShadow(ctx context.Context, conn driver.Conn, run []minute, version uint64) error {
	from, to := run[0].at, run[len(run)-1].at.Add(time.Minute)
	rows, err := conn.Query(ctx, "SELECT toStartOfMinute(emit_timestamp) AS minute, toString(type), count() FROM shadow FINAL"+
		" WHERE emit_timestamp >= ? AND emit_timestamp < ? GROUP BY minute, type", from, to)
	if err != nil {
		return fmt.Errorf("count shadow from %s: %w", from.Format(time.RFC3339), err)
	}
	type key struct {
		at  int64
		typ string
	}
	counts := map[key]uint64{}
	for rows.Next() {
		var (
			at  time.Time
			typ string
			n   uint64
		)
		if err := rows.Scan(&at, &typ, &n); err != nil {
			rows.Close()
			return fmt.Errorf("read shadow counts: %w", err)
		}
		counts[key{at.Unix(), typ}] = n
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return fmt.Errorf("read shadow counts: %w", err)
	}
	batch, err := conn.PrepareBatch(ctx, "INSERT INTO shadow_minutes (minute, type, events, arrived, sealed)")
	if err != nil {
		return fmt.Errorf("seal shadow: %w", err)
	}
	for _, m := range run {
		for _, t := range shadowTypes {
			if err := batch.Append(m.at, t, counts[key{m.at.Unix(), t}], m.arrived, version); err != nil {
				return fmt.Errorf("seal shadow: %w", err)
			}
		}
	}
	if err := batch.Send(); err != nil {
		return fmt.Errorf("seal shadow from %s: %w", from.Format(time.RFC3339), err)
	}
	return nil
}

// sealActiveVisitors copies the run's windows from active_visitors FINAL
// under version, then, once the copy is whole, writes the seals that name
// it.
func sealActiveVisitors(ctx context.Context, conn driver.Conn, run []minute, version uint64) error {
	from, to := run[0].at, run[len(run)-1].at.Add(time.Minute)
	err := conn.Exec(ctx, "INSERT INTO active_visitors_sealed (sealed, account_id, store_id, window_start, window_end, `count`)"+
		" SELECT toUInt64(?), account_id, store_id, window_start, window_end, `count` FROM active_visitors FINAL"+
		" WHERE window_start >= ? AND window_start < ?", version, from, to)
	if err != nil {
		return fmt.Errorf("copy active_visitors from %s: %w", from.Format(time.RFC3339), err)
	}
	batch, err := conn.PrepareBatch(ctx, "INSERT INTO active_visitors_seals (minute, arrived, sealed)")
	if err != nil {
		return fmt.Errorf("seal active_visitors: %w", err)
	}
	for _, m := range run {
		if err := batch.Append(m.at, m.arrived, version); err != nil {
			return fmt.Errorf("seal active_visitors: %w", err)
		}
	}
	if err := batch.Send(); err != nil {
		return fmt.Errorf("seal active_visitors from %s: %w", from.Format(time.RFC3339), err)
	}
	return nil
}
