package clickhouse

import (
	"errors"
	"testing"

	"github.com/golang-migrate/migrate/v4/database"
)

func TestMigrateDriverRecordsVersionsAndLeavesItsConnectionOpen(t *testing.T) {
	cfg, conn := testDB(t)
	d := NewMigrateDriver(conn, cfg.Database)
	if v, dirty, err := d.Version(); err != nil || v != database.NilVersion || dirty {
		t.Errorf("Version = %d, %v, %v; want NilVersion", v, dirty, err)
	}
	if err := d.SetVersion(7, true); err != nil {
		t.Fatal(err)
	}
	if v, dirty, err := d.Version(); err != nil || v != 7 || !dirty {
		t.Errorf("Version = %d, %v, %v; want 7, dirty", v, dirty, err)
	}
	if err := d.Close(); err != nil {
		t.Errorf("Close: %v", err)
	}
	if err := conn.Ping(t.Context()); err != nil {
		t.Errorf("the connection after Close: %v", err)
	}
}

func TestMigrateDriverIsNotOpenedFromAURL(t *testing.T) {
	if _, err := (&MigrateDriver{}).Open("clickhouse-native://127.0.0.1:9000/db?password=secret"); !errors.Is(err, errOpenByURL) {
		t.Errorf("Open = %v, want errOpenByURL", err)
	}
}
