package web

import (
	"net"
	"net/http"
	"strings"

	"github.com/domination/domination/internal/auth"
)

// need is what a route asks of a token's scope.
type need int

const (
	needMetrics  need = iota + 1 // the metrics scope
	needAccounts                 // some accounts (the handler limits its data to them)
)

func (n need) String() string {
	if n == needMetrics {
		return "metrics"
	}
	return "accounts"
}

// guard wraps h so that, when the server has tokens, a request without a
// known token gets 401 and one whose scope lacks n gets 403; an accepted
// request carries its token in the context. Refusals are logged with the
// token's name, never the token.
func (s *Server) guard(n need, h http.Handler) http.Handler {
	if s.cfg.Tokens.Len() == 0 {
		return h
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		secret, err := auth.FromRequest(r)
		if err != nil {
			s.log.Info("web request refused: no valid bearer token", "path", r.URL.Path, "remote", r.RemoteAddr, "reason", err.Error())
			unauthorized(w)
			return
		}
		tok, ok := s.cfg.Tokens.Lookup(secret)
		if !ok {
			s.log.Info("web request refused: unknown token", "path", r.URL.Path, "remote", r.RemoteAddr)
			unauthorized(w)
			return
		}
		allowed := tok.Scope.Metrics
		if n == needAccounts {
			allowed = tok.Scope.HasAccounts()
		}
		if !allowed {
			s.log.Info("web request refused: token's scope does not cover the route", "path", r.URL.Path, "token", tok.Name, "scope", tok.Scope.String(), "need", n.String(), "remote", r.RemoteAddr)
			http.Error(w, "forbidden: this token's scope does not cover "+r.URL.Path, http.StatusForbidden)
			return
		}
		s.log.Debug("web request authenticated", "path", r.URL.Path, "token", tok.Name, "remote", r.RemoteAddr)
		h.ServeHTTP(w, r.WithContext(auth.WithToken(r.Context(), tok)))
	})
}

func unauthorized(w http.ResponseWriter) {
	w.Header().Set("WWW-Authenticate", `Bearer realm="domination"`)
	http.Error(w, "unauthorized: a bearer token is required", http.StatusUnauthorized)
}

// announce logs where the server listens, and warns when it is reachable
// beyond loopback with no tokens: anyone who reaches the port then reads
// every account's counts.
func (s *Server) announce(addr net.Addr) {
	scheme := "http"
	if s.tls != nil {
		scheme = "https"
	}
	s.log.Info("web server listening", "addr", addr.String(), "scheme", scheme, "tokens", s.cfg.Tokens.Len())
	if s.cfg.Tokens.Len() > 0 {
		s.log.Info("web server requires bearer tokens", "tokens", strings.Join(s.cfg.Tokens.Names(), ", "), "metrics_protected", s.cfg.Tokens.MetricsProtected())
		return
	}
	if !loopback(addr) {
		s.log.Warn("web server listens beyond loopback without tokens: anyone who reaches it can read every account's counts and the metrics; set --web-tokens-file or DOMINATION_WEB_TOKENS, or --web-host 127.0.0.1",
			"addr", addr.String())
	}
}

// loopback reports whether addr accepts connections from this host only.
func loopback(addr net.Addr) bool {
	tcp, ok := addr.(*net.TCPAddr)
	if !ok {
		return false
	}
	return tcp.IP.IsLoopback()
}
