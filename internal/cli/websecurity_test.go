package cli

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/urfave/cli/v2"

	"github.com/domination/domination/internal/web"
)

// webConfigFrom runs the worker's web security flags with args and env.
func webConfigFrom(t *testing.T, env map[string]string, args ...string) (web.Config, error) {
	t.Helper()
	for k, v := range env {
		t.Setenv(k, v)
	}
	var cfg web.Config
	app := &cli.App{
		Name:  "t",
		Flags: webSecurityFlags(),
		Action: func(c *cli.Context) error {
			return webSecurity(c, &cfg)
		},
	}
	err := app.RunContext(context.Background(), append([]string{"t"}, args...))
	return cfg, err
}

func TestWebSecurityMergesTheTokensFileTheEnvironmentAndTheMetricsToken(t *testing.T) {
	const fileToken, envToken, metricsToken = "file-token-0123456789", "env-token-0123456789", "metrics-token-0123456789"
	path := filepath.Join(t.TempDir(), "tokens")
	if err := os.WriteFile(path, []byte("store1 "+fileToken+" accounts=1\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg, err := webConfigFrom(t, map[string]string{
		"DOMINATION_WEB_TOKENS":    "ops " + envToken + " accounts=*",
		"DOMINATION_METRICS_TOKEN": metricsToken,
	}, "--web-tokens-file", path, "--web-tls-cert", "c.pem", "--web-tls-key", "k.pem")
	if err != nil {
		t.Fatal(err)
	}
	if cfg.TLSCertFile != "c.pem" || cfg.TLSKeyFile != "k.pem" {
		t.Errorf("tls files = %q, %q", cfg.TLSCertFile, cfg.TLSKeyFile)
	}
	for secret, name := range map[string]string{fileToken: "store1", envToken: "ops", metricsToken: metricsTokenName} {
		tok, ok := cfg.Tokens.Lookup(secret)
		if !ok || tok.Name != name {
			t.Errorf("token for %s: %+v, %v", name, tok, ok)
		}
	}
	if tok, _ := cfg.Tokens.Lookup(metricsToken); !tok.Scope.Metrics || tok.Scope.HasAccounts() {
		t.Errorf("the metrics token's scope is %s, want metrics only", tok.Scope)
	}
}

func TestWebSecurityWithoutSettingsIsOpen(t *testing.T) {
	cfg, err := webConfigFrom(t, nil)
	if err != nil || cfg.Tokens.Len() != 0 || cfg.TLSCertFile != "" {
		t.Fatalf("no flags: tokens %d, tls %q, err %v; want open plain HTTP", cfg.Tokens.Len(), cfg.TLSCertFile, err)
	}
}

func TestWebSecurityErrorsNeverHoldAToken(t *testing.T) {
	const secret = "dup-secret-0123456789"
	cases := []struct {
		env  map[string]string
		want string
	}{
		{map[string]string{"DOMINATION_WEB_TOKENS": "a " + secret + " accounts=1; b " + secret + " accounts=2"}, "same secret"},
		{map[string]string{"DOMINATION_WEB_TOKENS": "a " + secret + " admin"}, "unknown scope"},
		{map[string]string{"DOMINATION_METRICS_TOKEN": "short"}, "shorter"},
		{map[string]string{"DOMINATION_WEB_TOKENS": "metrics " + secret + " accounts=1", "DOMINATION_METRICS_TOKEN": "other-" + secret}, "used twice"},
	}
	for _, tc := range cases {
		t.Run(tc.want, func(t *testing.T) {
			_, err := webConfigFrom(t, tc.env)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("%v: err %v, want %q", tc.env, err, tc.want)
			}
			if strings.Contains(err.Error(), secret) || strings.Contains(err.Error(), "short\"") {
				t.Errorf("the error %q holds a token", err)
			}
		})
	}
}
