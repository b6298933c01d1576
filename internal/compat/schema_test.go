package compat

import "testing"

func TestKafkaTableRecognisesOnlyKafkaEngineCreates(t *testing.T) {
	for _, c := range []struct {
		stmt, table string
	}{
		{"CREATE TABLE shadow_stream\n(\n    a Int32\n)\nENGINE = Kafka\nSETTINGS kafka_format = 'JSONEachRow'", "shadow_stream"},
		{"create table if not exists `s` (a Int32) engine=Kafka('b', 't', 'g', 'JSONEachRow')", "s"},
		{"CREATE TABLE shadow (a Int32) ENGINE = ReplacingMergeTree() ORDER BY a", ""},
		{"CREATE TABLE k (a Int32) ENGINE = KafkaLike", ""},
		{"CREATE MATERIALIZED VIEW v TO shadow AS SELECT a FROM shadow_stream", ""},
		{"DROP TABLE IF EXISTS shadow_stream", ""},
	} {
		table, ok := KafkaTable(c.stmt)
		if table != c.table || ok != (c.table != "") {
			t.Errorf("KafkaTable(%q) = %q, %v; want %q", c.stmt, table, ok, c.table)
		}
	}
}
