package guard

import (
	"context"
	"fmt"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
)

// Engine is what the guard does to one table's objects in ClickHouse: every
// statement it sends is here. The connection's database holds the tables.
type Engine struct {
	conn driver.Conn
	t    Table
}

// NewEngine returns the Engine of t over conn.
func NewEngine(conn driver.Conn, t Table) *Engine { return &Engine{conn: conn, t: t} }

// Skipped is a record the guard moves an engine past.
type Skipped struct {
	Partition int
	Offset    int64
	Value     []byte
	Reason    string
}

// NoteSkipped records skipped records in the table's errors table, with
// source 'guard'.
func (e *Engine) NoteSkipped(ctx context.Context, now time.Time, skipped ...Skipped) error {
	batch, err := e.conn.PrepareBatch(ctx, "INSERT INTO "+e.t.Errors+" (kafka_topic, kafka_partition, kafka_offset, raw_message, error, source, noticed_at)")
	if err != nil {
		return fmt.Errorf("record skipped records in %s: %w", e.t.Errors, err)
	}
	for _, s := range skipped {
		if err := batch.Append(e.t.Topic, int64(s.Partition), s.Offset, string(s.Value), s.Reason, "guard", now.UTC().Truncate(time.Second)); err != nil {
			_ = batch.Abort()
			return fmt.Errorf("record skipped records in %s: %w", e.t.Errors, err)
		}
	}
	if err := batch.Send(); err != nil {
		return fmt.Errorf("record skipped records in %s: %w", e.t.Errors, err)
	}
	return nil
}

// Detach detaches the view, then the engine table, taking the engine's
// consumer out of its group.
func (e *Engine) Detach(ctx context.Context) error {
	for _, name := range []string{e.t.View, e.t.Engine} {
		if err := e.conn.Exec(ctx, "DETACH TABLE "+name); err != nil {
			return fmt.Errorf("detach %s: %w", name, err)
		}
	}
	return nil
}

// Attach attaches the engine table, then the view, where they are missing.
func (e *Engine) Attach(ctx context.Context) error {
	for _, name := range []string{e.t.Engine, e.t.View} {
		var n uint64
		if err := e.conn.QueryRow(ctx, "SELECT count() FROM system.tables WHERE database = currentDatabase() AND name = ?", name).Scan(&n); err != nil {
			return fmt.Errorf("look up %s: %w", name, err)
		}
		if n > 0 {
			continue
		}
		if err := e.conn.Exec(ctx, "ATTACH TABLE "+name); err != nil {
			return fmt.Errorf("attach %s: %w", name, err)
		}
	}
	return nil
}
