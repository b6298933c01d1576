package cli

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"strconv"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/domination/domination/internal/web"
)

// localWorker is the URL of path on a worker on this host, on the default
// port.
func localWorker(scheme, path string) string {
	return scheme + "://" + net.JoinHostPort("127.0.0.1", strconv.Itoa(web.DefaultPort)) + path
}

// healthcheckCommand lets a container image without a shell or curl check a
// worker: `domination healthcheck --url http://127.0.0.1:6066/healthz`.
func healthcheckCommand() *cli.Command {
	return &cli.Command{
		Name:  "healthcheck",
		Usage: "exit 0 when a worker's HTTP endpoint answers 200 (for container healthchecks)",
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "url", Value: localWorker("http", "/healthz"), Usage: "endpoint to check"},
			&cli.DurationFlag{Name: "timeout", Value: 3 * time.Second, Usage: "how long to wait for the answer"},
		},
		Action: func(c *cli.Context) error {
			ctx, cancel := context.WithTimeout(c.Context, c.Duration("timeout"))
			defer cancel()
			req, err := http.NewRequestWithContext(ctx, http.MethodGet, c.String("url"), nil)
			if err != nil {
				return fmt.Errorf("healthcheck: %w", err)
			}
			res, err := http.DefaultClient.Do(req)
			if err != nil {
				return fmt.Errorf("healthcheck %s: %w", c.String("url"), err)
			}
			defer res.Body.Close()
			if res.StatusCode != http.StatusOK {
				return fmt.Errorf("healthcheck %s: %s", c.String("url"), res.Status)
			}
			fmt.Fprintln(c.App.Writer, "ok")
			return nil
		},
	}
}
