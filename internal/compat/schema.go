package compat

import (
	"errors"
	"fmt"
	"regexp"
	"slices"
	"strings"

	"github.com/domination/domination/clickhouse"
)

// KafkaStartFailure ends the message with which the in-process engine
// answers a Kafka engine CREATE whose settings it accepted: the table is
// attached, but its consumers cannot start inside chdb. Any other answer
// (UNKNOWN_SETTING, BAD_ARGUMENTS for a bad kafka_handle_error_mode, a
// syntax error, or success) is a failure.
const KafkaStartFailure = "Shutdown was called. (LOGICAL_ERROR)"

var kafkaCreate = regexp.MustCompile("(?is)^CREATE\\s+TABLE\\s+(?:IF\\s+NOT\\s+EXISTS\\s+)?`?([^\\s(`]+)`?.*\\bENGINE\\s*=\\s*Kafka\\b")

// KafkaTable returns the table that stmt creates when it creates a Kafka
// engine table, and false for any other statement.
func KafkaTable(stmt string) (string, bool) {
	m := kafkaCreate.FindStringSubmatch(stmt)
	if m == nil {
		return "", false
	}
	return m[1], true
}

// Applied is what Migrate ran.
type Applied struct {
	// Statements counts every statement run, Kafka those that created
	// Kafka engine tables.
	Statements, Kafka int
	// KafkaTables are the Kafka engine tables created, each once.
	KafkaTables []string
}

// Apply runs one statement the product sends on e, as the current engine
// must answer it: a Kafka engine CREATE fails with exactly
// KafkaStartFailure, and leaves its table attached, so that the views over
// it, virtual columns included, are checked against the real engine's
// table; every other statement succeeds. It returns the rows of a
// statement that succeeded, and whether stmt created a Kafka engine table.
func Apply(e *Engine, stmt string) (rows [][]string, kafkaTable string, err error) {
	rows, err = e.Run(stmt)
	table, isKafka := KafkaTable(stmt)
	if !isKafka {
		if err != nil {
			return nil, "", fmt.Errorf("the current engine rejects it: %w", err)
		}
		return rows, "", nil
	}
	var rejected *EngineError
	switch {
	case err == nil:
		return nil, table, fmt.Errorf("a Kafka engine table was created in process; this check expects %q and needs revising", KafkaStartFailure)
	case !errors.As(err, &rejected) || !strings.HasSuffix(rejected.Message, KafkaStartFailure):
		return nil, table, fmt.Errorf("the current engine rejects this Kafka engine table (want only %q): %w", KafkaStartFailure, err)
	}
	return nil, table, nil
}

// Migrate runs every statement of migrations on e with Apply, in order,
// and stops at the first that fails.
func Migrate(e *Engine, migrations []clickhouse.Migration) (Applied, error) {
	var n Applied
	for _, m := range migrations {
		stmts, err := clickhouse.Statements(m.SQL)
		if err != nil {
			return n, fmt.Errorf("migration %s: %w", m.Name, err)
		}
		for i, stmt := range stmts {
			_, table, err := Apply(e, stmt)
			n.Statements++
			if table != "" {
				n.Kafka++
				if !slices.Contains(n.KafkaTables, table) {
					n.KafkaTables = append(n.KafkaTables, table)
				}
			}
			if err != nil {
				return n, fmt.Errorf("migration %s, statement %d: %w\n%s", m.Name, i+1, err, stmt)
			}
		}
	}
	return n, nil
}

// StandIn replaces every Kafka engine table of the current database with a
// Null engine table of the same name and columns, the engine's virtual
// columns (_topic, _partition, _offset, _raw_message, _error, …) included as
// ordinary ones. The views created over the Kafka table stay attached, so an
// INSERT into the stand-in goes through them as a block the engine read
// would: the views' SELECTs run on the current engine, and their rows land
// in the stores. It returns the tables replaced.
func StandIn(e *Engine) ([]string, error) {
	tables, err := e.Run("SELECT name FROM system.tables WHERE database = currentDatabase() AND engine = 'Kafka' ORDER BY name")
	if err != nil {
		return nil, fmt.Errorf("list kafka tables: %w", err)
	}
	var out []string
	for _, row := range tables {
		name := row[0]
		cols, err := e.Run("DESCRIBE TABLE " + ident(name) + " SETTINGS describe_include_virtual_columns = 1")
		if err != nil {
			return out, fmt.Errorf("describe %s: %w", name, err)
		}
		defs := make([]string, len(cols))
		for i, c := range cols {
			defs[i] = ident(c[0]) + " " + c[1]
		}
		if _, err := e.Run("DROP TABLE " + ident(name)); err != nil {
			return out, fmt.Errorf("stand in for %s: %w", name, err)
		}
		if _, err := e.Run("CREATE TABLE " + ident(name) + " (" + strings.Join(defs, ", ") + ") ENGINE = Null"); err != nil {
			return out, fmt.Errorf("stand in for %s: %w", name, err)
		}
		out = append(out, name)
	}
	return out, nil
}

// ident backquotes a name as TabSeparated printed it.
func ident(name string) string {
	return "`" + strings.ReplaceAll(name, "`", "\\`") + "`"
}
