// Command domination is a real-time analytics ingestion pipeline: Kafka in,
// typed facts and live counts out, ClickHouse for queries. See README.md.
package main

import (
	"context"
	"os"

	"github.com/domination/domination/internal/cli"
)

func main() {
	os.Exit(cli.Main(context.Background(), os.Args, os.Stdout, os.Stderr))
}
