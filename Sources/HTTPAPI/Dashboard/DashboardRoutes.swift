import Foundation
import Hummingbird
import Reports
import SweepKit

extension APIServer {
    /// The browser dashboard's headers: nothing but the server's own scripts, styles and
    /// images (and data: images) may load, and no content-type sniffing.
    static let contentSecurityPolicy = "default-src 'self'; img-src 'self' data:"

    /// `GET /`, `/app.js`, `/app.css`: the dashboard (docs/api.md, "Dashboard"), behind the
    /// same token check as the API. With a token, the page links its assets with `?token=`
    /// (a browser sends no Authorization header for `<script src>`); the script reads the
    /// token from the page's own URL.
    func addDashboard(to router: Router<BasicRequestContext>) {
        let index = Self.indexPage(token: token)
        router.get("/") { _, _ in Self.asset(index, contentType: "text/html; charset=utf-8") }
        router.get("/index.html") { _, _ in Self.asset(index, contentType: "text/html; charset=utf-8") }
        router.get("/app.js") { _, _ in
            Self.asset(DashboardAssets.appJS, contentType: "text/javascript; charset=utf-8")
        }
        router.get("/app.css") { _, _ in
            Self.asset(DashboardAssets.appCSS, contentType: "text/css; charset=utf-8")
        }
        router.get("/api/sweeps/:name/tables") { _, context in
            try await self.tables(try Self.pathName(context, "name"))
        }
        router.get("/api/sweeps/:name/figures/:file") { _, context in
            try await self.figure(try Self.pathName(context, "name"), file: try context.parameters.require("file"))
        }
    }

    /// index.html with its asset links carrying the token, percent-encoded, when there is one.
    static func indexPage(token: String?) -> String {
        var query = ""
        if let token {
            var allowed = CharacterSet.alphanumerics
            allowed.insert(charactersIn: "-._~")
            query = "?token=" + (token.addingPercentEncoding(withAllowedCharacters: allowed) ?? "")
        }
        return DashboardAssets.indexHTML.replacingOccurrences(of: "{{query}}", with: query)
    }

    static func asset(_ text: String, contentType: String) -> Response {
        var response = response(.ok, text, contentType: contentType)
        response.headers[.contentSecurityPolicy] = contentSecurityPolicy
        response.headers[.xContentTypeOptions] = "nosniff"
        return response
    }

    /// The rows and report specs of a sweep (404 for an unknown one).
    func reportInput(_ name: String) async throws -> ([ResultRow], [ReportSpec]) {
        _ = try await summary(name)
        return try await blocking { [store] in
            (try store.resultRows(sweep: name), try store.reportSpecs(sweep: name))
        }
    }

    /// `GET /api/sweeps/NAME/tables`: what `sparsegrid report NAME --format json` prints — the
    /// comparison tables of the spec's `report:` section (the default two without one).
    func tables(_ name: String) async throws -> Response {
        let (rows, specs) = try await reportInput(name)
        let text = Reports.renderReport(
            sweep: name, rows: rows, specs: Reports.specs(specs, speedupPercent: nil), format: .json)
        return Self.response(.ok, text, contentType: "application/json")
    }

    /// `GET /api/sweeps/NAME/figures/N.svg`, N = 1…4: the report's figures, as
    /// `sparsegrid report --out` writes them (figures/*.svg), drawn from the same rows.
    func figure(_ name: String, file: String) async throws -> Response {
        guard file.count == 5, file.hasSuffix(".svg"), let n = Int(file.prefix(1)), (1...4).contains(n) else {
            throw APIError(.notFound, "figures are 1.svg, 2.svg, 3.svg and 4.svg")
        }
        let (rows, specs) = try await reportInput(name)
        let all = Reports.figures(
            sweep: name, rows: rows, speedupPercent: Reports.specs(specs, speedupPercent: nil)[0].speedupPercent)
        guard all.indices.contains(n - 1) else { throw APIError(.notFound, "there is no figure \(n)") }
        var response = Self.response(.ok, all[n - 1].svg, contentType: "image/svg+xml")
        response.headers[.contentSecurityPolicy] = "default-src 'none'; style-src 'unsafe-inline'"
        response.headers[.xContentTypeOptions] = "nosniff"
        return response
    }
}
