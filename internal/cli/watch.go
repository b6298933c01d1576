package cli

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"os/signal"
	"strconv"
	"syscall"
	"time"

	"github.com/gorilla/websocket"
	"github.com/urfave/cli/v2"
)

// watchCommand is a small client of a worker's live feed, so that watching
// it needs no other tool: it prints every frame on its own line.
func watchCommand() *cli.Command {
	return &cli.Command{
		Name:  "watch",
		Usage: "print a worker's live active-visitor counts (a client of ws://HOST:PORT/ws)",
		Flags: append([]cli.Flag{
			&cli.StringFlag{Name: "url", Value: localWorker("ws", "/ws"), Usage: "the worker's feed"},
			&cli.Int64Flag{Name: "account", Usage: "only this account (sends a setFilter); 0: all"},
			&cli.IntFlag{Name: "history", Value: -1, Usage: "recent windows to receive first (-1: the worker's default)"},
			&cli.IntFlag{Name: "count", Usage: "exit after this many frames (0: until interrupted)"},
			&cli.DurationFlag{Name: "timeout", Usage: "exit after this long (0: no limit)"},
		}, clientTokenFlags()...),
		Action: func(c *cli.Context) error {
			u, err := url.Parse(c.String("url"))
			if err != nil || (u.Scheme != "ws" && u.Scheme != "wss") {
				return fmt.Errorf("watch: --url %q is not a ws:// or wss:// URL", c.String("url"))
			}
			if h := c.Int("history"); h >= 0 {
				q := u.Query()
				q.Set("history", strconv.Itoa(h))
				u.RawQuery = q.Encode()
			}
			ctx, stop := signal.NotifyContext(c.Context, syscall.SIGINT, syscall.SIGTERM)
			defer stop()
			if d := c.Duration("timeout"); d > 0 {
				var cancel context.CancelFunc
				ctx, cancel = context.WithTimeout(ctx, d)
				defer cancel()
			}
			dctx, cancel := context.WithTimeout(ctx, 10*time.Second)
			defer cancel()
			token, err := clientToken(c)
			if err != nil {
				return fmt.Errorf("watch: %w", err)
			}
			dialer := *websocket.DefaultDialer
			if u.Scheme == "wss" {
				if dialer.TLSClientConfig, err = clientTLS(c); err != nil {
					return fmt.Errorf("watch: %w", err)
				}
			}
			header := http.Header{}
			if token != "" {
				header.Set("Authorization", "Bearer "+token)
			}
			conn, res, err := dialer.DialContext(dctx, u.String(), header)
			if err != nil {
				if res != nil {
					return fmt.Errorf("watch %s: %s", u.Redacted(), res.Status)
				}
				return fmt.Errorf("watch %s: %w", u.Redacted(), err)
			}
			defer conn.Close()
			go func() {
				<-ctx.Done()
				_ = conn.WriteControl(websocket.CloseMessage, websocket.FormatCloseMessage(websocket.CloseNormalClosure, ""), time.Now().Add(time.Second))
				_ = conn.Close()
			}()
			if acc := c.Int64("account"); acc != 0 {
				msg, _ := json.Marshal(map[string]any{"type": "setFilter", "filter": map[string]int64{"account": acc}})
				if err := conn.WriteMessage(websocket.TextMessage, msg); err != nil {
					return fmt.Errorf("watch: send filter: %w", err)
				}
			}
			for n := 0; c.Int("count") == 0 || n < c.Int("count"); n++ {
				_, frame, err := conn.ReadMessage()
				if err != nil {
					if ctx.Err() != nil || websocket.IsCloseError(err, websocket.CloseNormalClosure, websocket.CloseGoingAway) || errors.Is(err, context.Canceled) {
						return nil
					}
					var ce *websocket.CloseError
					if errors.As(err, &ce) {
						return fmt.Errorf("watch: the worker closed the feed (%d): %s", ce.Code, ce.Text)
					}
					return fmt.Errorf("watch: %w", err)
				}
				fmt.Fprintln(c.App.Writer, string(frame))
			}
			return nil
		},
	}
}
