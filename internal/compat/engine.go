package compat

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"

	"github.com/domination/domination/internal/testenv"
)

// EnvPython names the Python interpreter that has chdb-core, when it is not
// the one scripts/chdb/install.sh puts in .tools/chdb.
const EnvPython = "DOMINATION_CHDB_PYTHON"

// installHint is how to get what Start needs.
const installHint = "run `make test`, whose scripts/test-deps.sh installs it, or `bash scripts/chdb/install.sh`"

// Engine is a current ClickHouse engine running in a child process: chdb-core
// driven by scripts/chdb/run.py, one statement at a time, on one data
// directory that lasts as long as the Engine. It is not safe for concurrent
// use.
type Engine struct {
	// Version and Timezone are the engine's, as version() and timezone()
	// report them.
	Version, Timezone string

	cmd    *exec.Cmd
	in     io.WriteCloser
	out    *bufio.Reader
	stderr *testenv.Buffer // what the runner writes to stderr, for error messages
	ended  error           // the process's end, once waited for
	waited bool
}

// EngineError is a statement the engine rejected, with its message
// ("Code: 60. DB::Exception: … (UNKNOWN_TABLE)").
type EngineError struct {
	SQL     string
	Message string
}

func (e *EngineError) Error() string { return e.Message }

// Start runs the engine on the data directory dir, which must be empty or
// hold an earlier Engine's data. It fails, saying how to install it, when
// the Python environment with chdb-core is missing. The process ends with
// ctx or Close.
func Start(ctx context.Context, dir string) (*Engine, error) {
	root, err := repoRoot()
	if err != nil {
		return nil, err
	}
	python := os.Getenv(EnvPython)
	if python == "" {
		python = filepath.Join(root, ".tools", "chdb", "bin", "python")
	}
	if _, err := os.Stat(python); err != nil {
		return nil, fmt.Errorf("start chdb: no Python with chdb-core at %s: %s", python, installHint)
	}
	cmd := exec.CommandContext(ctx, python, filepath.Join(root, "scripts", "chdb", "run.py"), dir)
	// Literals without a zone mean UTC, as on the servers the product is
	// tested against.
	cmd.Env = append(os.Environ(), "TZ=UTC")
	e := &Engine{cmd: cmd, stderr: &testenv.Buffer{}}
	cmd.Stderr = e.stderr
	if e.in, err = cmd.StdinPipe(); err != nil {
		return nil, fmt.Errorf("start chdb: %w", err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return nil, fmt.Errorf("start chdb: %w", err)
	}
	e.out = bufio.NewReaderSize(stdout, 1<<16)
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start chdb: %w", err)
	}
	var hello struct{ Version, Timezone string }
	if err := e.read(&hello); err != nil {
		return nil, fmt.Errorf("start chdb (%s): %w", installHint, e.fail(err))
	}
	e.Version, e.Timezone = hello.Version, hello.Timezone
	return e, nil
}

// Run sends one statement and returns its result as TabSeparated fields,
// one slice per row (NULL is \N). A statement the engine rejects is an
// *EngineError; any other error means the engine itself failed.
func (e *Engine) Run(sql string) ([][]string, error) {
	req, err := json.Marshal(map[string]string{"sql": sql})
	if err != nil {
		return nil, fmt.Errorf("run on chdb: %w", err)
	}
	if _, err := e.in.Write(append(req, '\n')); err != nil {
		return nil, fmt.Errorf("run on chdb: %w", e.fail(err))
	}
	var resp struct {
		Rows  [][]string
		Error *string
	}
	if err := e.read(&resp); err != nil {
		return nil, fmt.Errorf("run on chdb: %w", e.fail(err))
	}
	if resp.Error != nil {
		return nil, &EngineError{SQL: sql, Message: *resp.Error}
	}
	return resp.Rows, nil
}

// read decodes the next line the runner wrote.
func (e *Engine) read(v any) error {
	line, err := e.out.ReadBytes('\n')
	if err != nil {
		return fmt.Errorf("read from the chdb runner: %w", err)
	}
	if err := json.Unmarshal(line, v); err != nil {
		return fmt.Errorf("read from the chdb runner: %w in %q", err, line)
	}
	return nil
}

// Close ends the engine's input and waits for the process to end.
func (e *Engine) Close() error {
	if err := e.wait(); err != nil {
		return fmt.Errorf("chdb runner: %w%s", err, tail(e.stderr))
	}
	return nil
}

// wait closes the runner's input and waits for it to end, once.
func (e *Engine) wait() error {
	if !e.waited {
		e.waited = true
		e.in.Close()
		e.ended = e.cmd.Wait()
	}
	return e.ended
}

// fail ends the runner after err and adds what it said on stderr: the
// reason it stopped answering, such as chdb failing to import.
func (e *Engine) fail(err error) error {
	if end := e.wait(); end != nil {
		err = fmt.Errorf("%w (runner: %v)", err, end)
	}
	return fmt.Errorf("%w%s", err, tail(e.stderr))
}

// repoRoot is the directory holding go.mod, from the working directory up.
func repoRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", fmt.Errorf("find the repository: %w", err)
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("find the repository: no go.mod above the working directory")
		}
		dir = parent
	}
}

// tail is the last lines of what the runner wrote to stderr, as ": …" to
// end an error, or "".
func tail(stderr *testenv.Buffer) string {
	s := strings.TrimSpace(stderr.String())
	if s == "" {
		return ""
	}
	if len(s) > 2000 {
		s = "…" + s[len(s)-2000:]
	}
	return ": " + s
}
