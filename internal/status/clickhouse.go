package status

import (
	"context"
	"fmt"
	"regexp"
	"strings"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
)

// engineStage names the objects of one Kafka engine table and its store, as
// the migrations create them.
type engineStage struct {
	// store is the MergeTree table, the metrics' table label.
	store string
	// engine is the Kafka engine table; errors the errors table.
	engine, errors string
	// eventColumn is the store's event time (emit_timestamp, window_end).
	eventColumn string
	// partitionColumn is the DateTime column the store is partitioned by,
	// whose newest value system.parts keeps (min_time, max_time).
	partitionColumn string
	// decode reads the event time of one record of the topic.
	decode func([]byte) (time.Time, bool)
}

// The stores, as the migrations in clickhouse/migrations create them.
var (
	shadowStore = engineStage{
		store: "shadow", engine: "shadow_stream", errors: "shadow_errors",
		eventColumn: "emit_timestamp", partitionColumn: "emit_timestamp", decode: shadowEventTime,
	}
	activeVisitorsStore = engineStage{
		store: "active_visitors", engine: "active_visitors_stream", errors: "active_visitors_errors",
		eventColumn: "window_end", partitionColumn: "window_start", decode: windowEndTime,
	}
)

// maxWindowSpan bounds window_end - window_start for the newest-event
// query: the rows whose window_start is more than this before the newest
// window_start cannot hold the newest window_end, so the query reads only
// the newest day's parts and stays exact for any window up to a day.
const maxWindowSpan = 24 * time.Hour

// tableInfo is what system.tables says of the objects status reads.
type tableInfo struct {
	exists map[string]bool
	// engineFull holds each Kafka engine table's definition.
	engineFull map[string]string
}

func readTables(ctx context.Context, conn driver.Conn) (tableInfo, error) {
	info := tableInfo{exists: map[string]bool{}, engineFull: map[string]string{}}
	rows, err := conn.Query(ctx, "SELECT name, engine, engine_full FROM system.tables WHERE database = currentDatabase()")
	if err != nil {
		return info, fmt.Errorf("list clickhouse tables: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var name, engine, full string
		if err := rows.Scan(&name, &engine, &full); err != nil {
			return info, fmt.Errorf("list clickhouse tables: %w", err)
		}
		info.exists[name] = true
		if engine == "Kafka" {
			info.engineFull[name] = full
		}
	}
	if err := rows.Err(); err != nil {
		return info, fmt.Errorf("list clickhouse tables: %w", err)
	}
	return info, nil
}

var settingRE = regexp.MustCompile(`\b(kafka_topic_list|kafka_group_name)\s*=\s*'((?:[^'\\]|\\.)*)'`)

// engineSettings reads the topic and consumer group out of a Kafka engine
// table's engine_full ("Kafka SETTINGS kafka_broker_list = '…',
// kafka_topic_list = 'shadow', kafka_group_name = 'clickhouse-shadow', …").
// Of a topic list it keeps the first topic. Missing settings come back
// empty.
func engineSettings(engineFull string) (topic, group string) {
	for _, m := range settingRE.FindAllStringSubmatch(engineFull, -1) {
		v := strings.NewReplacer(`\'`, `'`, `\\`, `\`).Replace(m[2])
		switch m[1] {
		case "kafka_topic_list":
			topic = strings.TrimSpace(strings.Split(v, ",")[0])
		case "kafka_group_name":
			group = v
		}
	}
	return topic, group
}

// storeStats reads the store's row count and newest event time, and the
// errors table's records. Every query is cheap: parts metadata, a bounded
// read of the newest parts, a count of a small table.
func storeStats(ctx context.Context, conn driver.Conn, s engineStage, tables tableInfo) (*Store, error) {
	st := &Store{Table: s.store, ErrorsTable: s.errors}
	if !tables.exists[s.store] {
		return st, fmt.Errorf("table %s does not exist (run `domination migrate up`)", s.store)
	}
	var rows uint64
	var newestPartition time.Time
	if err := conn.QueryRow(ctx,
		"SELECT toUInt64(sum(rows)), max(max_time) FROM system.parts WHERE database = currentDatabase() AND table = ? AND active",
		s.store).Scan(&rows, &newestPartition); err != nil {
		return st, fmt.Errorf("count rows of %s: %w", s.store, err)
	}
	st.Rows = int64(rows)
	if rows > 0 {
		newest := newestPartition
		if s.eventColumn != s.partitionColumn {
			q := fmt.Sprintf("SELECT max(%s) FROM %s WHERE %s >= toDateTime(?)", s.eventColumn, s.store, s.partitionColumn)
			if err := conn.QueryRow(ctx, q, newestPartition.Add(-maxWindowSpan).Unix()).Scan(&newest); err != nil {
				return st, fmt.Errorf("read newest event time of %s: %w", s.store, err)
			}
		}
		if newest.Unix() > 0 {
			n := newest.UTC()
			st.NewestEvent = &n
		}
	}
	if tables.exists[s.errors] {
		var n uint64
		if err := conn.QueryRow(ctx, fmt.Sprintf("SELECT count() FROM %s FINAL", s.errors)).Scan(&n); err != nil {
			return st, fmt.Errorf("count rows of %s: %w", s.errors, err)
		}
		st.ErrorsRows = int64(n)
	}
	return st, nil
}

// ReadStores reads, with the statements Collect sends to ClickHouse, each
// store's rows, newest event time and errors rows (FreshnessSeconds and
// NewestOnTopic need Kafka and stay zero). A store whose table does not
// exist is left out; a statement that fails is an error.
func ReadStores(ctx context.Context, conn driver.Conn) ([]Store, error) {
	tables, err := readTables(ctx, conn)
	if err != nil {
		return nil, err
	}
	var out []Store
	for _, es := range []engineStage{shadowStore, activeVisitorsStore} {
		if !tables.exists[es.store] {
			continue
		}
		st, err := storeStats(ctx, conn, es, tables)
		if err != nil {
			return nil, err
		}
		out = append(out, *st)
	}
	return out, nil
}
