package cli

import (
	"crypto/tls"
	"errors"
	"fmt"
	"os"
	"strings"

	"github.com/urfave/cli/v2"

	"github.com/domination/domination/internal/auth"
	"github.com/domination/domination/internal/tlsconfig"
	"github.com/domination/domination/internal/web"
)

const catWeb = "Web security"

// metricsTokenName is the name the --metrics-token credential has in logs.
const metricsTokenName = "metrics"

// webSecurityFlags are the worker's flags for TLS and bearer tokens on its
// web server.
func webSecurityFlags() []cli.Flag {
	return []cli.Flag{
		&cli.StringFlag{Name: "web-tls-cert", Usage: "PEM certificate: serve HTTPS and wss:// (with --web-tls-key)", EnvVars: env("WEB_TLS_CERT"), Category: catWeb},
		&cli.StringFlag{Name: "web-tls-key", Usage: "PEM key of --web-tls-cert", EnvVars: env("WEB_TLS_KEY"), Category: catWeb},
		&cli.StringFlag{Name: "web-tokens-file", Usage: "file of bearer tokens, one '<name> <token> accounts=1,2|accounts=*|metrics' per line; with tokens, /ws and /metrics need one", EnvVars: env("WEB_TOKENS_FILE"), Category: catWeb},
		&cli.StringFlag{Name: "web-tokens", Usage: "bearer tokens as in --web-tokens-file, entries separated by ';' (prefer the environment variable)", EnvVars: env("WEB_TOKENS"), Category: catWeb},
		&cli.StringFlag{Name: "metrics-token-file", Usage: "file holding the one token that may read /metrics (a Prometheus scraper's credentials_file)", EnvVars: env("METRICS_TOKEN_FILE"), Category: catWeb},
		&cli.StringFlag{Name: "metrics-token", Usage: "the token that may read /metrics (prefer the environment variable)", EnvVars: env("METRICS_TOKEN"), Category: catWeb},
	}
}

// webSecurity sets the TLS files and the tokens of cfg from the flags. No
// error names a token.
func webSecurity(c *cli.Context, cfg *web.Config) error {
	cfg.TLSCertFile, cfg.TLSKeyFile = c.String("web-tls-cert"), c.String("web-tls-key")
	var tokens *auth.Tokens
	add := func(more *auth.Tokens) error {
		merged, err := tokens.Merge(more)
		if err != nil {
			return fmt.Errorf("web tokens: %w", err)
		}
		tokens = merged
		return nil
	}
	if path := c.String("web-tokens-file"); path != "" {
		t, err := auth.ParseFile(path)
		if err != nil {
			return fmt.Errorf("web tokens: %w", err)
		}
		if err := add(t); err != nil {
			return err
		}
	}
	if s := c.String("web-tokens"); s != "" {
		t, err := auth.Parse(strings.NewReader(s), "DOMINATION_WEB_TOKENS")
		if err != nil {
			return fmt.Errorf("web tokens: %w", err)
		}
		if err := add(t); err != nil {
			return err
		}
	}
	secret := c.String("metrics-token")
	if path := c.String("metrics-token-file"); path != "" {
		if secret != "" {
			return errors.New("metrics token: give --metrics-token or --metrics-token-file, not both")
		}
		b, err := os.ReadFile(path)
		if err != nil {
			return fmt.Errorf("metrics token: %w", err)
		}
		secret = strings.TrimSpace(string(b))
	}
	if secret != "" {
		tok, err := auth.New(metricsTokenName, secret, auth.Scope{Metrics: true})
		if err != nil {
			return fmt.Errorf("metrics token: %w", err)
		}
		if err := add(auth.Single(tok)); err != nil {
			return err
		}
	}
	cfg.Tokens = tokens
	return nil
}

// clientTokenFlags are a web client's credentials (watch).
func clientTokenFlags() []cli.Flag {
	return []cli.Flag{
		&cli.StringFlag{Name: "token", Usage: "bearer token for the worker's web server (prefer the environment variable)", EnvVars: env("TOKEN")},
		&cli.StringFlag{Name: "token-file", Usage: "file holding the bearer token", EnvVars: env("TOKEN_FILE")},
		&cli.StringFlag{Name: "web-tls-ca", Usage: "PEM file of CAs to trust for a wss:// or https:// worker", EnvVars: env("WEB_TLS_CA")},
		&cli.BoolFlag{Name: "web-tls-insecure", Usage: "accept any worker certificate (tests only)", EnvVars: env("WEB_TLS_INSECURE")},
	}
}

// clientToken returns the bearer token given to a web client, if any.
func clientToken(c *cli.Context) (string, error) {
	tok := c.String("token")
	if path := c.String("token-file"); path != "" {
		if tok != "" {
			return "", errors.New("give --token or --token-file, not both")
		}
		b, err := os.ReadFile(path)
		if err != nil {
			return "", fmt.Errorf("read token file: %w", err)
		}
		tok = strings.TrimSpace(string(b))
	}
	return tok, nil
}

// clientTLS returns the TLS settings of a web client.
func clientTLS(c *cli.Context) (*tls.Config, error) {
	tc, err := tlsconfig.Config{
		Enabled:            true,
		CAFile:             c.String("web-tls-ca"),
		InsecureSkipVerify: c.Bool("web-tls-insecure"),
	}.Build()
	if err != nil {
		return nil, fmt.Errorf("web %w", err)
	}
	return tc, nil
}
