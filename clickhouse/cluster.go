package clickhouse

import (
	"fmt"
	"regexp"
	"strings"
)

// On a cluster (Migrator.Cluster set) the migrations run as distributed DDL.
// The files are written for one server; each rendered statement is rewritten
// for the cluster instead of keeping a second copy of every file:
//
//   - CREATE TABLE, DROP TABLE and CREATE MATERIALIZED VIEW run ON CLUSTER,
//     with every table they name qualified by the database (a distributed
//     DDL runs on the other servers in their default database, and leaves
//     the SELECT of a view as it is written);
//   - a *MergeTree store becomes its Replicated*MergeTree, keyed in
//     ZooKeeper by the {shard} macro, the database and the table, one
//     replica per {replica} macro;
//   - a Kafka engine table is created on every server with the same group,
//     so the servers split the topic's partitions between them, and each
//     server's view writes what it consumes into its own replica.
//
// The migrations support one shard of any number of replicas: each replica
// holds every row, so the reads (query, the feed's history, verify) run on
// the same tables, with FINAL, on whichever server they reach. A statement
// of another kind is refused rather than run on one server only.

// clusterDatabaseDDL creates database on every server of cluster.
func clusterDatabaseDDL(database, cluster string) string {
	return "CREATE DATABASE IF NOT EXISTS " + quoteIdentifier(database) + " ON CLUSTER " + quoteIdentifier(cluster)
}

// versionTableDDL creates the version table. On a cluster it is one
// replicated table whose replicas are every server of every shard (its
// ZooKeeper path has no {shard}), so that every server reads the same
// version.
func versionTableDDL(database, cluster string) string {
	table := quoteIdentifier(database) + "." + versionTable
	cols := " (version Int64, dirty UInt8, sequence UInt64)"
	if cluster == "" {
		return "CREATE TABLE IF NOT EXISTS " + table + cols + " ENGINE = TinyLog"
	}
	return "CREATE TABLE IF NOT EXISTS " + table + " ON CLUSTER " + quoteIdentifier(cluster) + cols +
		" ENGINE = ReplicatedMergeTree(" + quote("/clickhouse/domination/"+database+"/"+versionTable) + ", '{shard}-{replica}') ORDER BY sequence"
}

var (
	createTableRE = regexp.MustCompile(`^(?is)CREATE\s+TABLE\s+(IF\s+NOT\s+EXISTS\s+)?(\w+)\b`)
	dropTableRE   = regexp.MustCompile(`^(?is)DROP\s+TABLE\s+(IF\s+EXISTS\s+)?(\w+)\s*$`)
	createViewRE  = regexp.MustCompile(`^(?is)CREATE\s+MATERIALIZED\s+VIEW\s+(IF\s+NOT\s+EXISTS\s+)?(\w+)\s+TO\s+(\w+)\s+AS\s`)
	fromRE        = regexp.MustCompile(`(?i)\bFROM\s+(\w+)\b`)
	engineRE      = regexp.MustCompile(`(?i)\bENGINE\s*=\s*(\w+)(\s*\(([^)]*)\))?`)
)

// onCluster rewrites every rendered migration of s for cluster, in
// database.
func (s *templateSource) onCluster(database, cluster string) error {
	for name, sql := range s.rendered {
		out, err := clusterMigration(sql, database, cluster)
		if err != nil {
			return fmt.Errorf("render migration %s for cluster %s: %w", name, cluster, err)
		}
		s.rendered[name] = out
	}
	return nil
}

// clusterMigration rewrites one rendered migration, header included.
func clusterMigration(sql, database, cluster string) (string, error) {
	header := ""
	if rest, ok := strings.CutPrefix(sql, migrationHeader); ok {
		line, after, _ := strings.Cut(rest, "\n")
		header, sql = migrationHeader+line+"\n", after
	}
	stmts, err := splitStatements(sql)
	if err != nil {
		return "", err
	}
	var b strings.Builder
	b.WriteString(header)
	for _, st := range stmts {
		out, err := clusterStatement(strings.TrimSpace(st.SQL), database, cluster)
		if err != nil {
			return "", fmt.Errorf("statement at line %d: %w", st.Line, err)
		}
		b.WriteString(out)
		b.WriteString(";\n\n")
	}
	return b.String(), nil
}

// clusterStatement rewrites one statement (see the comment at the top).
func clusterStatement(stmt, database, cluster string) (string, error) {
	on := " ON CLUSTER " + quoteIdentifier(cluster)
	qualify := func(table string) string { return database + "." + table }
	if m := dropTableRE.FindStringSubmatch(stmt); m != nil {
		return "DROP TABLE " + upperSpace(m[1]) + qualify(m[2]) + on, nil
	}
	if m := createViewRE.FindStringSubmatch(stmt); m != nil {
		body := stmt[len(m[0]):]
		froms := fromRE.FindAllStringSubmatchIndex(body, -1)
		if len(froms) != 1 {
			return "", fmt.Errorf("materialized view %s: want one FROM table, found %d", m[2], len(froms))
		}
		body = fromRE.ReplaceAllString(body, "FROM "+database+".$1")
		return "CREATE MATERIALIZED VIEW " + upperSpace(m[1]) + qualify(m[2]) + on + " TO " + qualify(m[3]) + " AS\n" + body, nil
	}
	if m := createTableRE.FindStringSubmatch(stmt); m != nil {
		table := m[2]
		rest := stmt[len(m[0]):]
		e := engineRE.FindStringSubmatchIndex(rest)
		if e == nil {
			return "", fmt.Errorf("table %s: no ENGINE clause", table)
		}
		engine := rest[e[2]:e[3]]
		args := ""
		if e[6] >= 0 {
			args = strings.TrimSpace(rest[e[6]:e[7]])
		}
		switch {
		case strings.EqualFold(engine, "Kafka"):
		case strings.HasSuffix(engine, "MergeTree") && !strings.HasPrefix(engine, "Replicated"):
			replicated := "Replicated" + engine + "(" + quote("/clickhouse/tables/{shard}/"+database+"/"+table) + ", '{replica}'"
			if args != "" {
				replicated += ", " + args
			}
			rest = rest[:e[0]] + "ENGINE = " + replicated + ")" + rest[e[1]:]
		default:
			return "", fmt.Errorf("table %s: engine %s has no replicated form the migrations know", table, engine)
		}
		return "CREATE TABLE " + upperSpace(m[1]) + qualify(table) + on + rest, nil
	}
	first, _, _ := strings.Cut(stmt, "\n")
	return "", fmt.Errorf("cannot run on a cluster: %q", first)
}

// upperSpace normalises an optional "IF [NOT] EXISTS " clause.
func upperSpace(clause string) string {
	if clause == "" {
		return ""
	}
	return strings.ToUpper(strings.Join(strings.Fields(clause), " ")) + " "
}
