package web

import (
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"io"
	"log/slog"
	"math/big"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/domination/domination/internal/auth"
	"github.com/domination/domination/internal/testenv"
	"github.com/domination/domination/metrics"
)

const (
	storeSecret   = "store-one-secret-0123456789"
	metricsSecret = "prometheus-secret-0123456789"
	allSecret     = "operator-secret-0123456789"
)

// serveOn starts a Server for cfg on ln, logging at debug level to logs,
// and returns the address it listens on.
func serveOn(t *testing.T, cfg Config, ln net.Listener, logs io.Writer) string {
	t.Helper()
	log := slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	s, err := New(cfg, metrics.New().Registry, log)
	if err != nil {
		t.Fatal(err)
	}
	return testenv.Serve(t, ln, s.Serve)
}

func listen(t *testing.T, addr string) net.Listener {
	t.Helper()
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	return ln
}

func testTokens(t *testing.T) *auth.Tokens {
	t.Helper()
	toks, err := auth.Parse(strings.NewReader(
		"store1 "+storeSecret+" accounts=1\n"+
			"prom "+metricsSecret+" metrics\n"+
			"ops "+allSecret+" accounts=* metrics\n"), "test")
	if err != nil {
		t.Fatal(err)
	}
	return toks
}

func status(t *testing.T, client *http.Client, url, token string) int {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, url, nil)
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	res, err := client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	_, _ = io.Copy(io.Discard, res.Body)
	res.Body.Close()
	return res.StatusCode
}

func TestTokensGuardMetricsAndHandlersButNotHealthOrReady(t *testing.T) {
	var logs testenv.Buffer
	var seen auth.Token
	var mu sync.Mutex
	feed := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		tok, ok := auth.FromContext(r.Context())
		if !ok {
			t.Error("the handler ran without the token in its context")
		}
		mu.Lock()
		seen = tok
		mu.Unlock()
		w.WriteHeader(http.StatusOK)
	})
	addr := serveOn(t, Config{Tokens: testTokens(t), Handlers: map[string]http.Handler{"/ws": feed}}, listen(t, "127.0.0.1:0"), &logs)
	base := "http://" + addr
	c := http.DefaultClient
	cases := []struct {
		path, token string
		want        int
	}{
		{"/healthz", "", http.StatusOK},
		{"/ready", "", http.StatusOK},
		{"/ws", "", http.StatusUnauthorized},
		{"/ws", "not-a-known-token-at-all", http.StatusUnauthorized},
		{"/ws", storeSecret, http.StatusOK},
		{"/ws?access_token=" + storeSecret, "", http.StatusOK},
		{"/ws", metricsSecret, http.StatusForbidden},
		{"/ws", allSecret, http.StatusOK},
		{"/metrics", "", http.StatusUnauthorized},
		{"/metrics", storeSecret, http.StatusForbidden},
		{"/metrics", metricsSecret, http.StatusOK},
		{"/metrics", allSecret, http.StatusOK},
	}
	for _, tc := range cases {
		if got := status(t, c, base+tc.path, tc.token); got != tc.want {
			t.Errorf("GET %s with token %q: %d, want %d", tc.path, tc.token, got, tc.want)
		}
	}
	mu.Lock()
	if seen.Name != "ops" || !seen.Scope.AllAccounts {
		t.Errorf("the handler last saw token %q (%s), want ops (accounts=*)", seen.Name, seen.Scope)
	}
	mu.Unlock()

	req, _ := http.NewRequest(http.MethodGet, base+"/ws", nil)
	req.Header.Set("Authorization", "Basic "+storeSecret)
	res, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != http.StatusUnauthorized || !strings.HasPrefix(res.Header.Get("WWW-Authenticate"), "Bearer") {
		t.Errorf("a Basic authorization: %d %q, want 401 with a Bearer challenge", res.StatusCode, res.Header.Get("WWW-Authenticate"))
	}

	out := logs.String()
	for _, secret := range []string{storeSecret, metricsSecret, allSecret} {
		if strings.Contains(out, secret) {
			t.Fatalf("a token appears in the debug log:\n%s", out)
		}
	}
	for _, want := range []string{"token=store1", "unknown token", "store1 (accounts=1)"} {
		if !strings.Contains(out, want) {
			t.Errorf("the log does not say %q:\n%s", want, out)
		}
	}
}

func TestNoTokensLeavesEveryRouteOpen(t *testing.T) {
	ok := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if _, scoped := auth.FromContext(r.Context()); scoped {
			t.Error("an open server put a token in the context")
		}
	})
	addr := serveOn(t, Config{Handlers: map[string]http.Handler{"/ws": ok}}, listen(t, "127.0.0.1:0"), io.Discard)
	for _, path := range []string{"/ws", "/metrics", "/healthz"} {
		if got := status(t, http.DefaultClient, "http://"+addr+path, ""); got != http.StatusOK {
			t.Errorf("GET %s without tokens configured: %d, want 200", path, got)
		}
	}
}

func TestWarnsWhenListeningBeyondLoopbackWithoutTokens(t *testing.T) {
	cases := []struct {
		name   string
		addr   string
		tokens *auth.Tokens
		warn   bool
	}{
		{"all interfaces, no tokens", "0.0.0.0:0", nil, true},
		{"loopback, no tokens", "127.0.0.1:0", nil, false},
		{"all interfaces, tokens", "0.0.0.0:0", testTokens(t), false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var logs testenv.Buffer
			waitServing(t, serveOn(t, Config{Tokens: tc.tokens}, listen(t, tc.addr), &logs))
			warned := strings.Contains(logs.String(), "level=WARN") && strings.Contains(logs.String(), "without tokens")
			if warned != tc.warn {
				t.Fatalf("warned = %v, want %v; log:\n%s", warned, tc.warn, logs.String())
			}
		})
	}
}

// waitServing returns once the server at addr answers: Serve has logged
// where it listens before it accepts the first connection.
func waitServing(t *testing.T, addr string) {
	t.Helper()
	_, port, _ := net.SplitHostPort(addr)
	if got := status(t, http.DefaultClient, "http://127.0.0.1:"+port+"/healthz", ""); got != http.StatusOK {
		t.Fatalf("GET /healthz: %d", got)
	}
}

// selfSigned writes a certificate for 127.0.0.1 and its key, and returns
// their paths and a pool trusting the certificate.
func selfSigned(t *testing.T) (certFile, keyFile string, pool *x509.CertPool) {
	t.Helper()
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1),
		Subject:      pkix.Name{CommonName: "127.0.0.1"},
		IPAddresses:  []net.IP{net.ParseIP("127.0.0.1")},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	certFile, keyFile, cert := testenv.SelfSigned(t, t.TempDir(), "cert.pem", "key.pem", tmpl)
	pool = x509.NewCertPool()
	pool.AddCert(cert)
	return certFile, keyFile, pool
}

func TestTLSServesHTTPSAndRefusesPlainHTTP(t *testing.T) {
	certFile, keyFile, pool := selfSigned(t)
	addr := serveOn(t, Config{TLSCertFile: certFile, TLSKeyFile: keyFile, Tokens: testTokens(t)}, listen(t, "127.0.0.1:0"), io.Discard)
	client := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}}}
	if got := status(t, client, "https://"+addr+"/metrics", metricsSecret); got != http.StatusOK {
		t.Fatalf("GET https /metrics with the metrics token: %d", got)
	}
	if got := status(t, client, "https://"+addr+"/metrics", ""); got != http.StatusUnauthorized {
		t.Fatalf("GET https /metrics without a token: %d, want 401", got)
	}
	res, err := http.Get("http://" + addr + "/healthz")
	if err == nil {
		res.Body.Close()
		if res.StatusCode == http.StatusOK {
			t.Fatal("plain HTTP was served by a TLS server")
		}
	}
}

func TestConfigValidateNeedsBothTLSFiles(t *testing.T) {
	for _, c := range []Config{{TLSCertFile: "c.pem"}, {TLSKeyFile: "k.pem"}} {
		if err := c.Validate(); err == nil || !strings.Contains(err.Error(), "tls") {
			t.Errorf("Validate(%+v) = %v, want an error about tls", c, err)
		}
	}
	if _, err := New(Config{TLSCertFile: "/nonexistent/c.pem", TLSKeyFile: "/nonexistent/k.pem"}, metrics.New().Registry, discard()); err == nil {
		t.Error("New with missing certificate files succeeded")
	}
}
