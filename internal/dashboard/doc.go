// Package dashboard is the worker's web page on GET /: what the pipeline is
// doing, for people who would rather look than read JSON.
//
// The page shows three panels, each fed by a route of the worker:
//
//   - live active visitors per account and store, a table and a chart of
//     the latest windows, from the feed on /ws (history first, then every
//     window as it closes); its account filter sends the feed's setFilter;
//   - shadow events per type per minute over the last hour, from
//     GET /api/shadow (ShadowHandler), which answers with query.Shadow:
//     bound values, read with FINAL, so a re-delivered rating counts once;
//     the page asks again every ShadowRefresh;
//   - the pipeline's health from GET /status: lag per stage, stalled stages
//     (with partition, offset and since when) and dead letters by reason.
//
// # Assets
//
// The HTML, CSS and JavaScript are embedded in the binary (go:embed) and
// fetch nothing from the network but the worker's own routes; the charts
// are SVG drawn by the page's own script, no library. The page's
// Content-Security-Policy allows scripts, styles and connections to the
// worker's own origin only, which is also what the feed's origin rule
// accepts.
//
// # Tokens
//
// Handler serves only static files, which hold no data, so the worker
// mounts it among the web server's public routes: the page loads without a
// token. Its data calls do not: with tokens configured, the page asks for
// one, keeps it in the tab's sessionStorage and sends it as
// "Authorization: Bearer" to /status and /api/shadow, and as the
// access_token query parameter to /ws (a browser's WebSocket cannot set
// headers). A scoped token sees only its accounts; a filter outside them
// is closed by the feed with code 4403, which the page reports.
// ShadowHandler is mounted like /status: any valid token with an accounts
// scope may read it, since shadow events belong to no account.
package dashboard
