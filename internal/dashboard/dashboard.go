package dashboard

import (
	"embed"
	"io/fs"
	"net/http"
	"strings"
	"time"
)

// ShadowRefresh is how often the page asks /api/shadow again.
const ShadowRefresh = 10 * time.Second

//go:embed assets
var embedded embed.FS

// contentSecurityPolicy lets the page run its own script and style and
// talk to its own origin only ('self' covers ws:// and wss:// there).
const contentSecurityPolicy = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; " +
	"connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"

// Handler serves the page on GET / and its assets on GET /assets/...;
// any other path is 404. Everything it serves is static and embedded,
// holding no data (see the package doc on tokens).
func Handler() http.Handler {
	sub, err := fs.Sub(embedded, "assets")
	if err != nil {
		panic("dashboard: embedded assets: " + err.Error()) // a build without assets/ cannot happen
	}
	files := http.FileServerFS(sub)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			w.Header().Set("Allow", "GET, HEAD")
			http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
			return
		}
		h := w.Header()
		h.Set("Content-Security-Policy", contentSecurityPolicy)
		h.Set("X-Content-Type-Options", "nosniff")
		h.Set("Referrer-Policy", "no-referrer")
		// The assets change with the binary: check on every load.
		h.Set("Cache-Control", "no-cache")
		switch {
		case r.URL.Path == "/":
			http.ServeFileFS(w, r, sub, "index.html")
		case strings.HasPrefix(r.URL.Path, "/assets/") && !strings.HasSuffix(r.URL.Path, "/") && r.URL.Path != "/assets/index.html":
			r2 := r.Clone(r.Context())
			r2.URL.Path = strings.TrimPrefix(r.URL.Path, "/assets")
			files.ServeHTTP(w, r2)
		default:
			http.NotFound(w, r)
		}
	})
}
