// Package cli is domination's command line: one file per subcommand, each
// turning flags and DOMINATION_* environment variables into the Config of
// the component it runs. Nothing below cmd/ and this package reads flags or
// the environment.
package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"strings"

	"github.com/urfave/cli/v2"
)

// Version is set at build time with -ldflags "-X .../internal/cli.Version=…".
var Version = "dev"

// NewApp builds the domination command line, writing to stdout and stderr.
func NewApp(stdout, stderr io.Writer) *cli.App {
	app := &cli.App{
		Name:                 "domination",
		Usage:                "real-time analytics ingestion: Kafka agents in Go, ClickHouse for queries",
		Version:              Version,
		Writer:               stdout,
		ErrWriter:            stderr,
		Flags:                globalFlags(),
		EnableBashCompletion: true,
		HideHelpCommand:      true,
		Commands: []*cli.Command{
			workerCommand(),
			migrateCommand(),
			queryCommand(),
			produceCommand(),
			watchCommand(),
			healthcheckCommand(),
			verifyCommand(),
			statusCommand(),
			dlqCommand(),
		},
		OnUsageError: usageError,
		// Errors are printed once, by Main.
		ExitErrHandler: func(*cli.Context, error) {},
	}
	for _, c := range app.Commands {
		setUsageErrors(c)
	}
	return app
}

// setUsageErrors gives every command the one-line usage error, and every
// leaf command the global flags, so that they may come before or after the
// subcommand.
func setUsageErrors(c *cli.Command) {
	if c.OnUsageError == nil { // status keeps its own: it exits 2
		c.OnUsageError = usageError
	}
	if len(c.Subcommands) == 0 && c.Name != "healthcheck" {
		c.Flags = append(c.Flags, globalFlags()...)
	}
	for _, sc := range c.Subcommands {
		setUsageErrors(sc)
	}
}

func usageError(_ *cli.Context, err error, _ bool) error {
	return fmt.Errorf("%w (see --help)", err)
}

// Main runs the app with args and returns the process exit code: 0 on
// success, 1 with one line on stderr otherwise.
func Main(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	err := NewApp(stdout, stderr).RunContext(ctx, args)
	if err == nil {
		return 0
	}
	var ec cli.ExitCoder
	if errors.As(err, &ec) && ec.ExitCode() == 0 {
		return 0
	}
	msg := strings.TrimSpace(err.Error())
	fmt.Fprintf(stderr, "domination: %s\n", strings.ReplaceAll(msg, "\n", " "))
	if errors.As(err, &ec) {
		return ec.ExitCode()
	}
	return 1
}

// newLogger returns the logger the --loglevel and --log-format flags ask for.
func newLogger(c *cli.Context) (*slog.Logger, error) {
	var level slog.Level
	switch strings.ToLower(global(c, "loglevel")) {
	case "debug":
		level = slog.LevelDebug
	case "info", "":
		level = slog.LevelInfo
	case "warn", "warning":
		level = slog.LevelWarn
	case "error":
		level = slog.LevelError
	default:
		return nil, fmt.Errorf("log level %q is not one of debug, info, warn, error", global(c, "loglevel"))
	}
	opts := &slog.HandlerOptions{Level: level}
	w := c.App.ErrWriter
	switch strings.ToLower(global(c, "log-format")) {
	case "text", "":
		return slog.New(slog.NewTextHandler(w, opts)), nil
	case "json":
		return slog.New(slog.NewJSONHandler(w, opts)), nil
	}
	return nil, fmt.Errorf("log format %q is not one of text, json", global(c, "log-format"))
}

// innermost returns the context that holds the value of a flag defined on
// several levels (every global flag is also a leaf command's): the one
// given on the command line closest to the subcommand, else the leaf, whose
// value comes from the environment or the default.
func innermost(c *cli.Context, name string) *cli.Context {
	for _, cc := range c.Lineage() {
		for _, set := range cc.LocalFlagNames() {
			if set == name {
				return cc
			}
		}
	}
	return c
}

// global returns the value of a global string flag; see innermost.
func global(c *cli.Context, name string) string { return innermost(c, name).String(name) }

// globalBool returns the value of a global bool flag; see innermost.
func globalBool(c *cli.Context, name string) bool { return innermost(c, name).Bool(name) }
