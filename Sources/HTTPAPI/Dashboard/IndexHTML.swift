// The dashboard's index.html, served at / (docs/api.md, "Dashboard").

extension DashboardAssets {
    /// The page: a shell the script fills; `{{query}}` becomes `?token=…` with a token.
    static let indexHTML = #"""
        <!doctype html>
        <html lang="en">
        <head>
        <meta charset="utf-8">
        <meta name="viewport" content="width=device-width, initial-scale=1">
        <meta name="referrer" content="no-referrer">
        <link rel="icon" href="data:,">
        <title>sparsegrid</title>
        <link rel="stylesheet" href="app.css{{query}}">
        <script src="app.js{{query}}" defer></script>
        </head>
        <body>
        <header class="top">
          <a class="brand" href="#/">sparsegrid</a>
          <nav>
            <a id="nav-sweeps" href="#/">Sweeps</a>
            <a id="nav-workers" href="#/workers">Workers</a>
          </nav>
          <span id="live" class="offline" title="live updates from /api/events">offline</span>
        </header>
        <main id="main"><p class="muted">Loading…</p></main>
        <noscript><p>The dashboard needs JavaScript; the JSON API is under <code>/api/</code>.</p></noscript>
        </body>
        </html>

        """#
}
