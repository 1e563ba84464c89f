// The dashboard's app.css, served at /app.css (docs/api.md, "Dashboard").

extension DashboardAssets {
    /// The dashboard style sheet.
    static let appCSS = #"""
        :root {
          --fg: #1f2328; --muted: #656d76; --line: #d8dee4; --bg: #f6f8fa; --card: #ffffff; --accent: #0969da;
          --pending: #8c959f; --ready: #bf8700; --running: #0969da; --succeeded: #1a7f37; --failed: #cf222e;
          --cancelled: #6e7781;
        }
        * { box-sizing: border-box; }
        html { font-size: 14px; }
        body {
          margin: 0; color: var(--fg); background: var(--bg);
          font-family: system-ui, -apple-system, "Segoe UI", Roboto, "Helvetica Neue", Arial, sans-serif;
          line-height: 1.45;
        }
        a { color: var(--accent); text-decoration: none; }
        a:hover { text-decoration: underline; }
        code, pre, .mono { font-family: ui-monospace, SFMono-Regular, Menlo, Consolas, "DejaVu Sans Mono", monospace; }
        header.top {
          display: flex; align-items: center; gap: 1.5rem; padding: 0.6rem 1.5rem;
          background: #24292f; color: #ffffff;
        }
        header.top .brand { color: #ffffff; font-weight: 600; font-size: 1.1rem; }
        header.top nav { display: flex; gap: 1rem; flex: 1; }
        header.top nav a { color: #d0d7de; padding: 0.2rem 0.4rem; border-radius: 4px; }
        header.top nav a.active { color: #ffffff; background: rgba(255, 255, 255, 0.15); }
        #live { font-size: 0.85rem; padding: 0.15rem 0.6rem; border-radius: 999px; }
        #live.live { background: #1a7f37; }
        #live.offline { background: #6e7781; }
        main { max-width: 1400px; margin: 0 auto; padding: 1rem 1.5rem 3rem; }
        h1 { font-size: 1.5rem; margin: 0.5rem 0 0.8rem; font-weight: 600; }
        h2 { font-size: 1.2rem; margin: 0 0 0.5rem; font-weight: 600; }
        h3 { font-size: 1rem; margin: 1.2rem 0 0.4rem; font-weight: 600; }
        .muted { color: var(--muted); }
        .error { color: var(--failed); background: #ffebe9; border: 1px solid #ffcecb; padding: 0.5rem 0.8rem;
          border-radius: 6px; }
        .warning { color: #7d4e00; background: #fff8c5; border: 1px solid #eed888; padding: 0.4rem 0.8rem;
          border-radius: 6px; }
        .card, section.sweep {
          background: var(--card); border: 1px solid var(--line); border-radius: 8px; padding: 1rem 1.2rem;
          margin-bottom: 1rem;
        }
        .sweep-head { display: flex; align-items: baseline; gap: 0.8rem; flex-wrap: wrap; }
        .sweep-head h2 { margin: 0; }
        .counts { display: flex; gap: 0.4rem; flex-wrap: wrap; margin: 0.5rem 0; }
        .chip { display: inline-flex; gap: 0.3rem; align-items: baseline; padding: 0.1rem 0.55rem; border-radius: 999px;
          background: var(--bg); border: 1px solid var(--line); font-size: 0.9rem; }
        .chip .count { font-weight: 600; font-variant-numeric: tabular-nums; }
        .stats { display: flex; gap: 1.5rem; flex-wrap: wrap; color: var(--muted); margin: 0.3rem 0 0.6rem; }
        .stats b { color: var(--fg); font-weight: 600; }
        .progress { display: flex; height: 10px; background: #eaeef2; border-radius: 5px; overflow: hidden;
          margin: 0.4rem 0; }
        .progress > div { height: 100%; }
        .bg-succeeded { background: var(--succeeded); }
        .bg-failed { background: var(--failed); }
        .bg-running { background: var(--running); }
        .bg-cancelled { background: var(--cancelled); }
        .badge { display: inline-block; font-size: 0.8rem; font-weight: 600; padding: 0 0.45rem; border-radius: 4px;
          color: #ffffff; background: var(--pending); }
        .s-pending { --c: var(--pending); }
        .s-ready { --c: var(--ready); }
        .s-running, .s-alive { --c: var(--running); }
        .s-succeeded { --c: var(--succeeded); }
        .s-failed, .s-dead, .s-invalid, .s-lost, .s-timeout { --c: var(--failed); }
        .s-cancelled, .s-left, .s-duplicate, .s-unknown { --c: var(--cancelled); }
        .s-draining { --c: var(--ready); }
        .s-alive { --c: var(--succeeded); }
        .badge[class*="s-"] { background: var(--c); }
        .chip[class*="s-"] { border-color: var(--c); }
        table { border-collapse: collapse; background: var(--card); font-variant-numeric: tabular-nums; }
        th, td { border-bottom: 1px solid var(--line); padding: 0.3rem 0.6rem; text-align: left; vertical-align: top; }
        th { background: var(--bg); font-weight: 600; white-space: nowrap; }
        td.num, th.num { text-align: right; }
        .scroll { overflow-x: auto; max-width: 100%; }
        table.data { width: 100%; }
        table.data tbody tr:hover { background: #f3f6f9; }
        table.sortable th { cursor: pointer; user-select: none; }
        table.sortable th.asc::after { content: " ▲"; font-size: 0.7em; }
        table.sortable th.desc::after { content: " ▼"; font-size: 0.7em; }
        table.matrix { margin-top: 0.5rem; }
        table.matrix th, table.matrix td { border: 1px solid var(--line); text-align: center; }
        table.matrix td { padding: 0; min-width: 6.5rem; }
        table.matrix td a { display: block; padding: 0.3rem 0.5rem; color: var(--fg); border-left: 4px solid var(--c); }
        table.matrix td a:hover { background: #f3f6f9; text-decoration: none; }
        table.matrix td .metric { display: block; font-weight: 600; }
        table.matrix td .label { display: block; font-size: 0.75rem; color: var(--muted); }
        table.matrix td.empty { background: var(--bg); }
        table.report { margin: 0.3rem 0 0.6rem; }
        table.report th.group { text-align: center; }
        table.report td { white-space: nowrap; }
        ul.notes { font-size: 0.85rem; color: var(--muted); margin: 0.2rem 0 1rem; padding-left: 1.2rem; }
        .figures { display: grid; grid-template-columns: repeat(auto-fit, minmax(520px, 1fr)); gap: 1rem; }
        .figures figure, .pareto figure, #curves figure {
          margin: 0; background: var(--card); border: 1px solid var(--line); border-radius: 8px; padding: 0.5rem;
        }
        .figures img { width: 100%; height: auto; display: block; }
        figcaption { font-size: 0.85rem; color: var(--muted); padding: 0.2rem 0.3rem; }
        .pareto { display: grid; grid-template-columns: repeat(auto-fit, minmax(480px, 1fr)); gap: 1rem; }
        svg { font-family: inherit; }
        svg .axis line, svg .axis path { stroke: #8c959f; }
        svg .axis line.grid { stroke: #eaeef2; }
        svg text { fill: var(--muted); font-size: 11px; }
        svg text.title { fill: var(--fg); font-size: 12px; font-weight: 600; }
        svg circle.point { stroke: #ffffff; stroke-width: 1; cursor: pointer; }
        svg circle.point.on-frontier { stroke: #1f2328; stroke-width: 1.5; }
        svg polyline.frontier { fill: none; stroke: #1f2328; stroke-width: 1.5; stroke-dasharray: 5 3; }
        svg polyline[data-series] { fill: none; stroke-width: 2; }
        .legend { display: flex; gap: 0.8rem; flex-wrap: wrap; font-size: 0.85rem; color: var(--muted); }
        .legend span::before { content: ""; display: inline-block; width: 0.7rem; height: 0.7rem; border-radius: 50%;
          margin-right: 0.3rem; background: var(--c); vertical-align: -1px; }
        .toolbar { display: flex; gap: 0.8rem; align-items: center; margin: 0.5rem 0; }
        #task-filter { padding: 0.35rem 0.6rem; border: 1px solid var(--line); border-radius: 6px; min-width: 22rem;
          font: inherit; }
        dl.kv { display: grid; grid-template-columns: max-content 1fr; gap: 0.2rem 1rem; margin: 0.3rem 0; }
        dl.kv dt { color: var(--muted); }
        dl.kv dd { margin: 0; }
        pre {
          background: #f6f8fa; border: 1px solid var(--line); border-radius: 6px; padding: 0.5rem; max-height: 22rem;
          overflow: auto; font-size: 0.8rem; white-space: pre-wrap; word-break: break-all; margin: 0.3rem 0; }
        td pre { max-width: 60rem; }
        .hash { font-size: 0.85rem; word-break: break-all; }
        .running-list { margin: 0; padding: 0; list-style: none; }
        .running-list li { margin: 0.1rem 0; }
        .grid2 { display: grid; grid-template-columns: repeat(auto-fit, minmax(420px, 1fr)); gap: 1rem; }
        #curves.grid2 { grid-template-columns: repeat(auto-fill, minmax(420px, 1fr)); }

        """#
}
