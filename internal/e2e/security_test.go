package e2e

// The product over encrypted and authenticated connections, on a private
// Kafka (TLS, mutual-TLS and SASL_SSL listeners) and a private ClickHouse
// (secure native port, a password user, its Kafka engine reaching the broker
// over SASL_SSL), both started with the project's scripts and a throw-away
// CA from certs.sh; and the web server's bearer tokens and scopes with two
// workers.

import (
	"bytes"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/domination/domination/internal/testenv"
)

// Secrets of the secured stack; no log line or error may contain one.
const (
	secSASLPassword = "scram-pass-5Jx8.q"
	secCHPassword   = "ch-pass-R2d7-w"
	secStoreToken   = "store-one-token-7c1e09b2a4"
	secStoresToken  = "stores-two-three-token-55e1f0"
	secPromToken    = "prometheus-token-b8d2a91c3f"
	secOpsToken     = "operator-token-0e4f6a8c2d1b"
	secCHUser       = "domination_app"
)

func secretsOf() []string {
	return []string{secSASLPassword, secCHPassword, secStoreToken, secStoresToken, secPromToken, secOpsToken}
}

// secured is a private secured Kafka and ClickHouse. The plain listeners
// stay on loopback for the test's own reads; the product uses the secured
// ones.
type secured struct {
	t          *testing.T
	dir, certs string
	kafkaEnv   []string
	chEnv      []string

	kafkaPlain, kafkaTLS, kafkaMTLS, kafkaSASL string
	chPlain, chSecure                          string
}

func secRepoRoot() string {
	_, file, _, _ := runtime.Caller(0)
	return filepath.Join(filepath.Dir(file), "..", "..")
}

func (s *secured) script(name, verb string, env []string) error {
	cmd := exec.Command("bash", filepath.Join(secRepoRoot(), "scripts", "services", name), verb)
	cmd.Env = append(append(os.Environ(), "DOMINATION_SERVICES_DIR="+s.dir), env...)
	out, err := cmd.CombinedOutput()
	if err != nil {
		return fmt.Errorf("%s %s: %w\n%s", name, verb, err, out)
	}
	for _, secret := range secretsOf() {
		if strings.Contains(string(out), secret) {
			s.t.Errorf("%s %s printed a secret:\n%s", name, verb, out)
		}
	}
	return nil
}

// startSecured starts the private secured services; they stop when t ends.
func startSecured(t *testing.T) *secured {
	t.Helper()
	s := &secured{t: t, dir: t.TempDir()}
	s.certs = filepath.Join(s.dir, "certs")
	// Reuse the jars the shared broker was started with (hard links).
	if libs := filepath.Join(secRepoRoot(), ".services", "kafka", "libs"); fileExists(filepath.Join(libs, ".pom.sha")) {
		_ = os.MkdirAll(filepath.Join(s.dir, "kafka"), 0o755)
		if out, err := exec.Command("cp", "-al", libs, filepath.Join(s.dir, "kafka", "libs")).CombinedOutput(); err != nil {
			t.Logf("link kafka jars: %v %s", err, out)
		}
	}
	port := func() int { return freePort(t) }
	kp, kc, ks, km, ksasl := port(), port(), port(), port(), port()
	s.kafkaPlain, s.kafkaTLS = fmt.Sprintf("127.0.0.1:%d", kp), fmt.Sprintf("127.0.0.1:%d", ks)
	s.kafkaMTLS, s.kafkaSASL = fmt.Sprintf("127.0.0.1:%d", km), fmt.Sprintf("127.0.0.1:%d", ksasl)
	s.kafkaEnv = []string{
		"KAFKA_PORT=" + strconv.Itoa(kp), "KAFKA_CONTROLLER_PORT=" + strconv.Itoa(kc),
		"KAFKA_SSL_PORT=" + strconv.Itoa(ks), "KAFKA_MTLS_PORT=" + strconv.Itoa(km), "KAFKA_SASL_SSL_PORT=" + strconv.Itoa(ksasl),
		"KAFKA_SASL_USERNAME=domination", "KAFKA_SASL_PASSWORD=" + secSASLPassword,
	}
	cp, chp, cs := port(), port(), port()
	s.chPlain, s.chSecure = fmt.Sprintf("127.0.0.1:%d", cp), fmt.Sprintf("127.0.0.1:%d", cs)
	// ClickHouse 18.16's Kafka engine (librdkafka 2.0.2) cannot complete
	// SCRAM with Kafka 4.3: it uses PLAIN, over TLS, on the same listener.
	s.chEnv = []string{
		"CLICKHOUSE_TCP_PORT=" + strconv.Itoa(cp), "CLICKHOUSE_HTTP_PORT=" + strconv.Itoa(chp), "CLICKHOUSE_TCP_PORT_SECURE=" + strconv.Itoa(cs),
		"CLICKHOUSE_USER=" + secCHUser, "CLICKHOUSE_PASSWORD=" + secCHPassword,
		"CLICKHOUSE_KAFKA_SECURITY_PROTOCOL=sasl_ssl", "CLICKHOUSE_KAFKA_SASL_MECHANISM=PLAIN",
		"CLICKHOUSE_KAFKA_SASL_USERNAME=domination", "CLICKHOUSE_KAFKA_SASL_PASSWORD=" + secSASLPassword,
	}
	start := time.Now()
	if err := s.script("certs.sh", "up", nil); err != nil {
		t.Fatal(err)
	}
	if err := s.script("kafka.sh", "up", s.kafkaEnv); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := s.script("kafka.sh", "down", s.kafkaEnv); err != nil {
			t.Log(err)
		}
	})
	if err := s.script("clickhouse.sh", "up", s.chEnv); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := s.script("clickhouse.sh", "down", s.chEnv); err != nil {
			t.Log(err)
		}
		s.noSecretInServiceLogs()
	})
	t.Logf("secured kafka (tls %s, mtls %s, sasl_ssl %s) and clickhouse (secure %s) up in %s",
		s.kafkaTLS, s.kafkaMTLS, s.kafkaSASL, s.chSecure, time.Since(start).Round(time.Millisecond))
	return s
}

func fileExists(path string) bool { _, err := os.Stat(path); return err == nil }

// noSecretInServiceLogs checks the servers' own logs (the configuration
// files hold the secrets; the logs must not).
func (s *secured) noSecretInServiceLogs() {
	for _, dir := range []string{filepath.Join(s.dir, "kafka", "log"), filepath.Join(s.dir, "clickhouse", "log")} {
		files, _ := filepath.Glob(filepath.Join(dir, "*"))
		for _, f := range files {
			b, err := os.ReadFile(f)
			if err != nil {
				continue
			}
			for _, secret := range secretsOf() {
				if bytes.Contains(b, []byte(secret)) {
					s.t.Errorf("%s contains a secret", f)
				}
			}
		}
	}
}

func (s *secured) ca() string { return filepath.Join(s.certs, "ca.pem") }

// env is a test world on the secured services: the harness reads through
// the plain listeners, the product goes through the secured ones.
func (s *secured) env() *env {
	e := newEnvAt(s.t, []string{s.kafkaPlain}, s.chPlain)
	return e
}

// setFlag returns args with flag's value replaced, or appended.
func setFlag(args []string, flag, value string) []string {
	out := append([]string(nil), args...)
	for i := 0; i+1 < len(out); i++ {
		if out[i] == flag {
			out[i+1] = value
			return out
		}
	}
	return append(out, flag, value)
}

// kafkaVia names how a command reaches Kafka.
type kafkaVia int

const (
	viaSASL kafkaVia = iota // SASL_SSL, SCRAM-SHA-512
	viaTLS                  // TLS, no client certificate
	viaMTLS                 // TLS with the client certificate
)

// args are e's global flags pointed at the secured listeners.
func (s *secured) args(e *env, via kafkaVia) []string {
	// Debug level: no secret may appear at any level.
	a := append(e.args(), "-l", "debug")
	a = setFlag(a, "--clickhouse-addr", s.chSecure)
	a = append(a, "--clickhouse-tls-ca", s.ca(), "--clickhouse-user", secCHUser, "--kafka-tls-ca", s.ca())
	switch via {
	case viaSASL:
		a = setFlag(a, "--kafka-brokers", s.kafkaSASL)
		a = append(a, "--kafka-sasl-mechanism", "SCRAM-SHA-512", "--kafka-sasl-username", "domination")
	case viaTLS:
		a = setFlag(a, "--kafka-brokers", s.kafkaTLS)
	case viaMTLS:
		a = setFlag(a, "--kafka-brokers", s.kafkaMTLS)
		a = append(a, "--kafka-tls-cert", filepath.Join(s.certs, "client.pem"), "--kafka-tls-key", filepath.Join(s.certs, "client.key"))
	}
	return a
}

// environ is e's environment with the passwords, which are passed the
// recommended way.
func (s *secured) environ(e *env) []string {
	return append(e.environ(), "DOMINATION_KAFKA_SASL_PASSWORD="+secSASLPassword, "DOMINATION_CLICKHOUSE_PASSWORD="+secCHPassword)
}

// run runs a command over the secured services and checks that its output
// holds no secret.
func (s *secured) run(e *env, via kafkaVia, environ []string, args ...string) result {
	s.t.Helper()
	r := runEnv(s.t, 3*time.Minute, environ, append(s.args(e, via), args...)...)
	noSecretIn(s.t, "domination "+strings.Join(args, " "), r.stdout+r.stderr, secretsOf()...)
	return r
}

// ok is run with the right credentials, failing unless it exits 0.
func (s *secured) ok(e *env, via kafkaVia, args ...string) result {
	s.t.Helper()
	r := s.run(e, via, s.environ(e), args...)
	if r.code != 0 {
		s.t.Fatalf("domination %s exited %d\nstdout: %s\nstderr: %s", strings.Join(args, " "), r.code, r.stdout, r.stderr)
	}
	return r
}

// tokensFile writes the web tokens of the test.
func (s *secured) tokensFile() string {
	path := filepath.Join(s.dir, "web-tokens")
	text := strings.Join([]string{
		"# name token scopes",
		"store1 " + secStoreToken + " accounts=1",
		"stores23 " + secStoresToken + " accounts=2,3",
		"ops " + secOpsToken + " accounts=*",
	}, "\n") + "\n"
	if err := os.WriteFile(path, []byte(text), 0o600); err != nil {
		s.t.Fatal(err)
	}
	return path
}

// secureWorker is a worker on the secured services whose web server
// requires tokens, and, with webTLS, speaks HTTPS with certs.sh's
// certificate.
type secureWorker struct {
	*worker
	scheme string
	client *http.Client
	tls    *tls.Config
}

func (s *secured) startWorker(e *env, webTLS bool, extra ...string) *secureWorker {
	s.t.Helper()
	port := freePort(s.t)
	args := append(s.args(e, viaSASL), "worker", "-l", "debug", "--web-host", "127.0.0.1", "--web-port", strconv.Itoa(port),
		"--shadow-group", e.group, "--web-tokens-file", s.tokensFile())
	sw := &secureWorker{scheme: "http", client: &http.Client{Timeout: 10 * time.Second}}
	if webTLS {
		args = append(args, "--web-tls-cert", filepath.Join(s.certs, "server.pem"), "--web-tls-key", filepath.Join(s.certs, "server.key"))
		pem, err := os.ReadFile(s.ca())
		if err != nil {
			s.t.Fatal(err)
		}
		pool := x509.NewCertPool()
		pool.AppendCertsFromPEM(pem)
		sw.scheme, sw.tls = "https", &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}
		sw.client.Transport = &http.Transport{TLSClientConfig: sw.tls}
	}
	args = append(args, extra...)
	w := &worker{t: s.t, port: port, logs: &testenv.Buffer{}, done: make(chan error, 1)}
	w.cmd = exec.Command(binary, args...)
	// The metrics token comes from the environment, as the README says.
	w.cmd.Env = append(append(os.Environ(), s.environ(e)...), "DOMINATION_METRICS_TOKEN="+secPromToken)
	w.cmd.Stdout, w.cmd.Stderr = w.logs, w.logs
	if err := w.cmd.Start(); err != nil {
		s.t.Fatalf("start worker: %v", err)
	}
	go func() { w.done <- w.cmd.Wait() }()
	sw.worker = w
	s.t.Cleanup(func() {
		w.stop(syscall.SIGKILL)
		if s.t.Failed() {
			s.t.Logf("worker on port %d logs:\n%s", port, w.logs.String())
		}
	})
	testenv.WaitFor(s.t, "worker /ready", time.Minute, func() bool { return sw.get("/ready", "") == http.StatusOK })
	return sw
}

func (w *secureWorker) base() string { return fmt.Sprintf("%s://127.0.0.1:%d", w.scheme, w.port) }

// get returns the status of GET path with token (none when empty), 0 when
// the request fails.
func (w *secureWorker) get(path, token string) int {
	req, _ := http.NewRequest(http.MethodGet, w.base()+path, nil)
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	res, err := w.client.Do(req)
	if err != nil {
		return 0
	}
	res.Body.Close()
	return res.StatusCode
}

// dialFeed opens the feed with token; it returns the HTTP status of a
// refused handshake.
func (w *secureWorker) dialFeed(t *testing.T, query, token string) (*websocket.Conn, int) {
	t.Helper()
	scheme := "ws"
	if w.scheme == "https" {
		scheme = "wss"
	}
	d := *websocket.DefaultDialer
	d.TLSClientConfig = w.tls
	hdr := http.Header{}
	if token != "" {
		hdr.Set("Authorization", "Bearer "+token)
	}
	conn, res, err := d.Dial(fmt.Sprintf("%s://127.0.0.1:%d/ws%s", scheme, w.port, query), hdr)
	if err != nil {
		if res == nil {
			t.Fatalf("dial the feed: %v", err)
		}
		return nil, res.StatusCode
	}
	t.Cleanup(func() { conn.Close() })
	return conn, http.StatusSwitchingProtocols
}

func onlyAccounts(all []string, accounts ...int64) []string {
	var out []string
	for _, a := range accounts {
		out = append(out, only(all, a)...)
	}
	sort.Strings(out)
	return out
}

func TestSecuredPipelineOverTLSMutualTLSAndSASLWithScopedFeedAndNoSecretInAnyLog(t *testing.T) {
	s := startSecured(t)
	e := s.env()
	s.ok(e, viaSASL, "migrate", "up", "--clickhouse-kafka-brokers", s.kafkaSASL)
	e.migratedUp = false // its cleanup would use the plain flags; the services are private anyway

	window := []string{"--window", fmt.Sprintf("%ds", visitWindow), "--grace", "1s"}
	w1 := s.startWorker(e, true, window...)
	w2 := s.startWorker(e, false, window...)

	// The web server: 401 without a token or with an unknown one, 403 for
	// a token whose scope does not cover the route.
	for _, w := range []*secureWorker{w1, w2} {
		checks := []struct {
			path, token string
			want        int
		}{
			{"/healthz", "", http.StatusOK},
			{"/metrics", "", http.StatusUnauthorized},
			{"/metrics", secStoreToken, http.StatusForbidden},
			{"/metrics", secPromToken, http.StatusOK},
			{"/ws", "", http.StatusUnauthorized},
			{"/ws", "unknown-token-0123456789abc", http.StatusUnauthorized},
			{"/ws", secPromToken, http.StatusForbidden},
		}
		for _, c := range checks {
			if got := w.get(c.path, c.token); got != c.want {
				t.Errorf("%s GET %s with token %q: %d, want %d", w.scheme, c.path, c.token, got, c.want)
			}
		}
		if _, code := w.dialFeed(t, "", ""); code != http.StatusUnauthorized {
			t.Errorf("%s feed without a token: HTTP %d, want 401", w.scheme, code)
		}
	}

	// Scoped clients on both workers, connected before the visits.
	conn1, _ := w1.dialFeed(t, "?history=1000", secStoreToken)
	conn2, _ := w2.dialFeed(t, "?history=1000", secStoreToken)
	one1, one2 := collect(t, conn1), collect(t, conn2)
	wrong, _ := w2.dialFeed(t, "?history=0", secStoreToken)
	if err := wrong.WriteJSON(map[string]any{"type": "setFilter", "filter": map[string]any{"account": 2}}); err != nil {
		t.Fatal(err)
	}
	_ = wrong.SetReadDeadline(time.Now().Add(30 * time.Second))
	var closeErr *websocket.CloseError
	for {
		_, _, err := wrong.ReadMessage()
		if err == nil {
			continue
		}
		ce, ok := err.(*websocket.CloseError)
		if !ok {
			t.Fatalf("a filter outside the scope ended the connection without a close frame: %v", err)
		}
		closeErr = ce
		break
	}
	if closeErr.Code != 4403 {
		t.Errorf("a filter outside the scope closed with %d %q, want 4403", closeErr.Code, closeErr.Text)
	}

	// Ratings over each Kafka listener, visits over mutual TLS.
	const perListener = 500
	s.ok(e, viaTLS, "produce", "ratings", "--count", strconv.Itoa(perListener), "--seed", "71")
	s.ok(e, viaMTLS, "produce", "ratings", "--count", strconv.Itoa(perListener), "--seed", "72")
	s.ok(e, viaSASL, "produce", "ratings", "--count", strconv.Itoa(perListener), "--seed", "73")
	const visits = 600
	s.ok(e, viaMTLS, visitArgs(visits, 74)...)

	// Refused credentials fail with one clear line and no secret.
	noCert := runEnv(t, time.Minute, s.environ(e), append(setFlag(s.args(e, viaTLS), "--kafka-brokers", s.kafkaMTLS), "produce", "ratings", "--count", "1")...)
	refusedOneLine(t, "produce to the mutual-TLS listener without a client certificate", noCert, "tls")
	wrongSASL := runEnv(t, time.Minute, append(e.environ(), "DOMINATION_KAFKA_SASL_PASSWORD=wrong-sasl-9q", "DOMINATION_CLICKHOUSE_PASSWORD="+secCHPassword),
		append(s.args(e, viaSASL), "produce", "ratings", "--count", "1")...)
	refusedOneLine(t, "produce with a wrong SCRAM password", wrongSASL, "sasl", "authentication")
	noSecretIn(t, "produce with a wrong SCRAM password", wrongSASL.stdout+wrongSASL.stderr, append(secretsOf(), "wrong-sasl-9q")...)
	wrongCH := runEnv(t, time.Minute, append(e.environ(), "DOMINATION_KAFKA_SASL_PASSWORD="+secSASLPassword, "DOMINATION_CLICKHOUSE_PASSWORD=wrong-ch-3k"),
		append(s.args(e, viaSASL), "query", "shadow")...)
	refusedOneLine(t, "query with a wrong ClickHouse password", wrongCH, "clickhouse", "password")
	noSecretIn(t, "query with a wrong ClickHouse password", wrongCH.stdout+wrongCH.stderr, append(secretsOf(), "wrong-ch-3k")...)

	// Every rating lands, through the Kafka engine's SASL_SSL consumer,
	// exactly once; verify and query read over TLS with the password.
	v := s.ok(e, viaSASL, "verify", "ratings", "--wait", "2m")
	if !strings.Contains(v.stdout, fmt.Sprintf("produced=%d landed=%d missing=0 duplicated=0", 3*perListener, 3*perListener)) {
		t.Fatalf("verify ratings over TLS and SASL: %s", v.stdout)
	}
	t.Logf("verify ratings: %s", strings.TrimSpace(v.stdout))
	q := s.ok(e, viaSASL, "query", "shadow", "--format", "json")
	var rows []struct {
		Count uint64 `json:"count"`
	}
	if err := json.Unmarshal([]byte(q.stdout), &rows); err != nil {
		t.Fatalf("query shadow --format json: %v\n%s", err, q.stdout)
	}
	var total uint64
	for _, row := range rows {
		total += row.Count
	}
	if total != 3*perListener {
		t.Fatalf("query shadow over TLS counts %d ratings, want %d", total, 3*perListener)
	}

	// status over SASL_SSL and ClickHouse TLS, and from a worker with a
	// token (401 without one).
	st := s.ok(e, viaSASL, "status", "--format", "json", "--shadow-group", e.group, "--visits-group", e.vgroup)
	if !strings.Contains(st.stdout, "shadow") {
		t.Fatalf("status over TLS and SASL printed %s", st.stdout)
	}
	workerURL := fmt.Sprintf("https://127.0.0.1:%d", w1.port)
	st = s.run(e, viaSASL, []string{"DOMINATION_TOKEN=" + secOpsToken}, "status", "--worker", workerURL, "--web-tls-ca", s.ca(), "--format", "json")
	if st.code != 0 || !strings.Contains(st.stdout, "shadow") {
		t.Fatalf("status --worker over https with a token: exit %d\n%s\n%s", st.code, st.stdout, st.stderr)
	}
	st = s.run(e, viaSASL, nil, "status", "--worker", workerURL, "--web-tls-ca", s.ca())
	refusedOneLine(t, "status --worker without a token", st, "401")

	// The scoped clients got exactly account 1's windows, on both workers.
	want := e.offlineWindows(visits, visitWindow)
	wantOne := onlyAccounts(want, 1)
	for name, c := range map[string]*feedClient{"worker 1 (wss)": one1, "worker 2 (ws)": one2} {
		waitForWindows(t, "the account-1 client of "+name, time.Minute, wantOne, c.distinct)
	}
	// A late client scoped to accounts 2 and 3 gets their history only.
	testenv.WaitFor(t, "active_visitors to hold every window", time.Minute, func() bool { return len(e.storedWindows()) >= len(want) })
	lateConn, _ := w2.dialFeed(t, "?history=1000", secStoresToken)
	late := collect(t, lateConn)
	waitForWindows(t, "the late accounts-2-3 client", time.Minute, onlyAccounts(want, 2, 3), late.distinct)

	// watch, over wss:// with the CA and a token from the environment.
	wr := runEnv(t, time.Minute, []string{"DOMINATION_TOKEN=" + secStoreToken},
		"watch", "--url", fmt.Sprintf("wss://127.0.0.1:%d/ws", w1.port), "--web-tls-ca", s.ca(), "--history", "3", "--count", "3", "--timeout", "30s")
	if wr.code != 0 {
		t.Fatalf("watch over wss with a token exited %d: %s", wr.code, wr.stderr)
	}
	for _, line := range strings.Split(strings.TrimSpace(wr.stdout), "\n") {
		var f frame
		if err := json.Unmarshal([]byte(line), &f); err != nil || f.Account != 1 {
			t.Fatalf("watch with account 1's token printed %q", line)
		}
	}
	noSecretIn(t, "watch", wr.stdout+wr.stderr, secretsOf()...)
	wr = runEnv(t, time.Minute, nil, "watch", "--url", fmt.Sprintf("wss://127.0.0.1:%d/ws", w1.port), "--web-tls-ca", s.ca(), "--count", "1", "--timeout", "30s")
	refusedOneLine(t, "watch without a token", wr, "401")

	// No secret in any worker log line, at debug level.
	for _, w := range []*secureWorker{w1, w2} {
		_ = w.stop(syscall.SIGTERM)
		logs := w.logs.String()
		if !strings.Contains(logs, "level=DEBUG") {
			t.Fatalf("the worker did not log at debug level")
		}
		noSecretIn(t, "the worker's debug log", logs, secretsOf()...)
		for _, want := range []string{"web server requires bearer tokens", "token=store1"} {
			if !strings.Contains(logs, want) {
				t.Errorf("the worker's log does not say %q", want)
			}
		}
	}
}

// noSecretIn fails t if text holds one of the secrets.
func noSecretIn(t *testing.T, where, text string, secrets ...string) {
	t.Helper()
	for _, secret := range secrets {
		if strings.Contains(text, secret) {
			t.Errorf("%s contains the secret %q", where, secret)
		}
	}
}

// refusedOneLine checks that a refused command exited non-zero with one
// "domination: " line naming each of mustContain.
func refusedOneLine(t *testing.T, what string, r result, mustContain ...string) {
	t.Helper()
	if r.code == 0 {
		t.Errorf("%s exited 0", what)
		return
	}
	lines := strings.Split(strings.TrimSpace(r.stderr), "\n")
	last := lines[len(lines)-1]
	if !strings.HasPrefix(last, "domination: ") {
		t.Errorf("%s: the error is not one 'domination: ' line: %q", what, r.stderr)
	}
	for _, want := range mustContain {
		if !strings.Contains(strings.ToLower(last), strings.ToLower(want)) {
			t.Errorf("%s: %q does not name %q", what, last, want)
		}
	}
	t.Logf("%s: %s", what, last)
}
