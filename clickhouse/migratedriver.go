package clickhouse

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io"
	"sort"
	"strings"
	"sync"
	"time"

	ch "github.com/ClickHouse/clickhouse-go/v2"
	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
	"github.com/golang-migrate/migrate/v4/database"
)

// versionTable is where MigrateDriver records versions, in the same layout as
// golang-migrate's own ClickHouse driver: one row per change, the latest
// sequence wins.
const versionTable = "schema_migrations"

// unknownTable is ClickHouse's error code for a table that does not exist.
const unknownTable = 60

// MigrateDriver is a golang-migrate database.Driver over a clickhouse-go v2
// native connection.
//
// It exists because golang-migrate's own ClickHouse driver goes through
// database/sql and records each version with INSERT … VALUES, which hangs on
// ClickHouse 18.16. This one records versions with a batch insert naming its
// columns, which works on 18.16 and on current releases, and it cuts each
// migration file into statements, because the native protocol runs one
// statement per query.
//
// ClickHouse has no locks: Lock only keeps two migrations in this process
// apart. Running migrations from two processes at once is not prevented.
//
// Make one with NewMigrateDriver.
type MigrateDriver struct {
	conn     driver.Conn
	database string
	cluster  string // non-empty: DDL runs ON CLUSTER, the version table is replicated

	mu       sync.Mutex // guards the fields below
	ctx      context.Context
	locked   bool
	checked  bool // the connection's database is known to be database
	hasTable bool // the version table is known to exist
	lastSeq  uint64
}

var _ database.Driver = (*MigrateDriver)(nil)

// NewMigrateDriver returns a driver migrating database over conn, which must
// be connected to that database: migrations create unqualified tables, in the
// connection's database, and the driver checks that they agree before it
// changes anything. Close leaves conn open.
func NewMigrateDriver(conn driver.Conn, database string) *MigrateDriver {
	return &MigrateDriver{conn: conn, database: database, ctx: context.Background()}
}

// setContext makes the driver's queries run under ctx until the next call.
// golang-migrate's interface has no contexts, so Migrator sets one around
// each operation.
func (d *MigrateDriver) setContext(ctx context.Context) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.ctx = ctx
}

func (d *MigrateDriver) context() context.Context {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.ctx
}

// errOpenByURL is Open's answer: a MigrateDriver is made by NewMigrateDriver
// over a connection the Migrator opened from a Config.
var errOpenByURL = errors.New("clickhouse migrations: the driver is not opened from a URL; use NewMigrateDriver")

// Open is part of golang-migrate's database.Driver. The Migrator hands
// golang-migrate a driver it built, so Open is never called; it fails rather
// than parse credentials out of a URL.
func (d *MigrateDriver) Open(string) (database.Driver, error) { return nil, errOpenByURL }

// Close leaves the connection open: its owner closes it.
func (d *MigrateDriver) Close() error { return nil }

// Lock marks the driver busy, or returns database.ErrLocked if it is. It
// guards this process only: ClickHouse has no locks.
func (d *MigrateDriver) Lock() error {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.locked {
		return database.ErrLocked
	}
	d.locked = true
	return nil
}

// Unlock undoes Lock.
func (d *MigrateDriver) Unlock() error {
	d.mu.Lock()
	defer d.mu.Unlock()
	if !d.locked {
		return database.ErrNotLocked
	}
	d.locked = false
	return nil
}

// check makes sure, once, that the connection runs in the driver's database,
// where the unqualified names of the migrations land.
func (d *MigrateDriver) check(ctx context.Context) error {
	return d.untilDone(&d.checked, func() error {
		var current string
		if err := d.conn.QueryRow(ctx, "SELECT currentDatabase()").Scan(&current); err != nil {
			return fmt.Errorf("read current database: %w", err)
		}
		if current != d.database {
			return fmt.Errorf("the connection is in database %q, not %q: migrations create their tables in the connection's database", current, d.database)
		}
		return nil
	})
}

// untilDone runs f unless *done is set, and sets *done once f succeeds.
// d.mu guards *done; f runs without the lock, so two calls at once may
// both run it.
func (d *MigrateDriver) untilDone(done *bool, f func() error) error {
	d.mu.Lock()
	ok := *done
	d.mu.Unlock()
	if ok {
		return nil
	}
	if err := f(); err != nil {
		return err
	}
	d.mu.Lock()
	*done = true
	d.mu.Unlock()
	return nil
}

// Run cuts a migration into statements and runs them in order, stopping at
// the first that fails. The error names the migration file (when the source
// is Migrator's), the statement's line and ClickHouse's message.
//
// The statements run to the end even if the operation's context is
// cancelled: stopping inside a file would leave the schema half-changed.
// Migrator stops between files instead.
func (d *MigrateDriver) Run(migration io.Reader) error {
	body, err := io.ReadAll(migration)
	if err != nil {
		return fmt.Errorf("read migration: %w", err)
	}
	name, script := "migration", string(body)
	if rest, ok := strings.CutPrefix(script, migrationHeader); ok {
		file, after, _ := strings.Cut(rest, "\n")
		name, script = "migration "+file, after
	}
	stmts, err := splitStatements(script)
	if err != nil {
		return fmt.Errorf("run %s: %w", name, err)
	}
	ctx := context.WithoutCancel(d.context())
	if err := d.check(ctx); err != nil {
		return fmt.Errorf("run %s: %w", name, err)
	}
	for _, s := range stmts {
		if err := d.conn.Exec(ctx, s.SQL); err != nil {
			return fmt.Errorf("run %s: statement at line %d: %w", name, s.Line, err)
		}
	}
	return nil
}

// SetVersion records version (database.NilVersion for none) and whether it
// is dirty, creating the version table if need be. As golang-migrate's own
// driver does, it appends a row; the one with the highest sequence is
// current.
//
// golang-migrate calls it with dirty set just before each migration, and
// clean just after. Once the operation's context is cancelled the first
// kind fails, stopping the run on a clean version; the second still
// completes, so that a migration that ran is recorded.
func (d *MigrateDriver) SetVersion(version int, dirty bool) error {
	ctx := d.context()
	if dirty && ctx.Err() != nil {
		// golang-migrate marks the version dirty before each migration:
		// the last point at which to stop cleanly.
		return fmt.Errorf("stopped before migrating to version %d: %w", version, context.Cause(ctx))
	}
	ctx = context.WithoutCancel(ctx)
	if err := d.check(ctx); err != nil {
		return fmt.Errorf("set migration version: %w", err)
	}
	if err := d.ensureTable(ctx); err != nil {
		return fmt.Errorf("set migration version: %w", err)
	}
	batch, err := d.conn.PrepareBatch(ctx, "INSERT INTO "+d.table()+" (version, dirty, sequence)")
	if err != nil {
		return fmt.Errorf("set migration version: %w", err)
	}
	defer batch.Close()
	var dirtyFlag uint8
	if dirty {
		dirtyFlag = 1
	}
	if err := batch.Append(int64(version), dirtyFlag, d.nextSequence()); err != nil {
		return fmt.Errorf("set migration version: %w", err)
	}
	if err := batch.Send(); err != nil {
		return fmt.Errorf("set migration version: %w", err)
	}
	return nil
}

// nextSequence is the clock in nanoseconds, but always above the last one
// this driver wrote, so that two quick writes keep their order.
func (d *MigrateDriver) nextSequence() uint64 {
	d.mu.Lock()
	defer d.mu.Unlock()
	seq := uint64(time.Now().UnixNano())
	if seq <= d.lastSeq {
		seq = d.lastSeq + 1
	}
	d.lastSeq = seq
	return seq
}

func (d *MigrateDriver) table() string {
	return quoteIdentifier(d.database) + "." + versionTable
}

func (d *MigrateDriver) ensureTable(ctx context.Context) error {
	return d.untilDone(&d.hasTable, func() error {
		if err := d.conn.Exec(ctx, versionTableDDL(d.database, d.cluster)); err != nil {
			return fmt.Errorf("create %s: %w", versionTable, err)
		}
		return nil
	})
}

// Version returns the version recorded last and whether it is dirty;
// database.NilVersion when none is (no version table yet counts as none).
func (d *MigrateDriver) Version() (version int, dirty bool, err error) {
	ctx := d.context()
	if err := d.check(ctx); err != nil {
		return 0, false, fmt.Errorf("read migration version: %w", err)
	}
	var (
		v int64
		f uint8
	)
	q := "SELECT version, dirty FROM " + d.table() + " ORDER BY sequence DESC LIMIT 1"
	err = d.conn.QueryRow(ctx, q).Scan(&v, &f)
	var ex *ch.Exception
	switch {
	case errors.Is(err, sql.ErrNoRows), errors.As(err, &ex) && ex.Code == unknownTable:
		return database.NilVersion, false, nil
	case err != nil:
		return 0, false, fmt.Errorf("read migration version: %w", err)
	}
	return int(v), f != 0, nil
}

// Drop removes every table and view of the database, the version table
// included: views first, so that nothing reads from Kafka or writes while
// the tables go.
func (d *MigrateDriver) Drop() error {
	ctx := d.context()
	if err := d.check(ctx); err != nil {
		return fmt.Errorf("drop tables: %w", err)
	}
	rows, err := d.conn.Query(ctx, "SELECT name, engine FROM system.tables WHERE database = ?", d.database)
	if err != nil {
		return fmt.Errorf("drop tables: list them: %w", err)
	}
	type table struct{ name, engine string }
	var tables []table
	for rows.Next() {
		var t table
		if err := rows.Scan(&t.name, &t.engine); err != nil {
			rows.Close()
			return fmt.Errorf("drop tables: list them: %w", err)
		}
		tables = append(tables, t)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return fmt.Errorf("drop tables: list them: %w", err)
	}
	rank := func(engine string) int {
		switch engine {
		case "MaterializedView", "View":
			return 0
		case "Kafka":
			return 1
		}
		return 2
	}
	sort.SliceStable(tables, func(i, j int) bool { return rank(tables[i].engine) < rank(tables[j].engine) })
	for _, t := range tables {
		// DROP TABLE drops views too; 18.16 has no DROP VIEW.
		q := "DROP TABLE IF EXISTS " + quoteIdentifier(d.database) + "." + quoteIdentifier(t.name)
		if d.cluster != "" {
			q += " ON CLUSTER " + quoteIdentifier(d.cluster)
		}
		if err := d.conn.Exec(ctx, q); err != nil {
			return fmt.Errorf("drop table %s: %w", t.name, err)
		}
	}
	d.mu.Lock()
	d.hasTable = false
	d.mu.Unlock()
	return nil
}
