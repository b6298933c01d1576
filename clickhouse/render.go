package clickhouse

import (
	"fmt"
	"strings"
)

// Migration is one up migration as it is sent to a server.
type Migration struct {
	// Version is the migration's number, Name its file name.
	Version uint
	Name    string
	// SQL is the rendered file, all its statements.
	SQL string
}

// RenderUp renders every up migration, in order, for a server of the given
// version, exactly as Migrator.Up would send them to it. It is how the SQL
// for a release can be read, or checked against an engine, without a server.
func RenderUp(src KafkaSource, server Version) ([]Migration, error) {
	src = src.WithDefaults()
	if err := src.Validate(); err != nil {
		return nil, fmt.Errorf("render migrations: %w", err)
	}
	ts, err := newTemplateSource(migrationFiles, "migrations", src, server)
	if err != nil {
		return nil, fmt.Errorf("render migrations: %w", err)
	}
	var out []Migration
	v, ok := ts.migrations.First()
	for ok {
		m, _ := ts.migrations.Up(v)
		out = append(out, Migration{Version: v, Name: m.Raw, SQL: ts.rendered[m.Raw]})
		v, ok = ts.migrations.Next(v)
	}
	return out, nil
}

// Statements cuts a migration's SQL into the statements the native protocol
// runs one at a time, without comments or semicolons.
func Statements(sql string) ([]string, error) {
	stmts, err := splitStatements(sql)
	if err != nil {
		return nil, err
	}
	out := make([]string, len(stmts))
	for i, s := range stmts {
		out[i] = strings.TrimSpace(s.SQL)
	}
	return out, nil
}
