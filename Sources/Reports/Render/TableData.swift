import SweepKit

/// The machine-readable forms of report tables: one long CSV (one header, one line per cell,
/// numbers plain, mean/std/n in their own columns) and a JSON document.
enum TableData {
    /// The provenance comes first, as lines of the same shape (table "provenance", the item's
    /// label under `metric`, its text under `text`, status "provenance" or "warning", numbers
    /// empty), so the file stays one rectangular table that any CSV reader loads as is.
    static func csv(_ tables: [ReportTable], provenance content: ReportContent? = nil) -> String {
        let (rowsName, columnsName) = dimensionNames(tables)
        let header = [
            "table", rowsName, columnsName, "metric", "unit", "mean", "std", "n", "failed",
            "missing", "running", "pending", "cancelled", "nulls", "status", "text",
            "claimed", "claimed_unit", "delta", "ci_low", "ci_high", "verdict",
        ]
        var lines = [CSVText.line(header)]
        func info(_ metric: String, _ status: String, _ text: String) -> String {
            var fields = [String](repeating: "", count: header.count)
            fields[header.firstIndex(of: "table")!] = "provenance"
            fields[header.firstIndex(of: "metric")!] = metric
            fields[header.firstIndex(of: "status")!] = status
            fields[header.firstIndex(of: "text")!] = text
            return CSVText.line(fields)
        }
        if let content {
            lines += content.warnings.map { info("warning", "warning", $0) }
            lines += content.provenance.items.map { info($0.label, "provenance", $0.text) }
        }
        for table in tables {
            lines += table.warnings.map { info("warning", "warning", "\(table.title): \($0)") }
        }
        for table in tables {
            for r in table.records {
                lines.append(
                    CSVText.line([
                        r.table, r.row, r.column, r.metric, r.unit, number(r.mean), number(r.std),
                        r.n.map(String.init) ?? "",
                        String(r.failed), String(r.missing), String(r.running), String(r.pending), String(r.cancelled),
                        String(r.nulls), r.status, r.text, number(r.claimed), r.claimedUnit ?? "", number(r.delta),
                        number(r.ciLow), number(r.ciHigh), r.verdict ?? "",
                    ]))
            }
        }
        return lines.joined(separator: "\n") + "\n"
    }

    static func json(
        sweep: String, pivots: [ReportTable], references: [ReportTable], provenance content: ReportContent
    ) -> String {
        let tables =
            pivots.map { object($0, kind: "pivot") } + references.map { object($0, kind: "claimed_vs_measured") }
        return JSONText.pretty(
            .object([
                "sweep": .string(sweep), "warnings": .array(content.warnings.map { .string($0) }),
                "provenance": content.provenance.json, "tables": .array(tables),
            ]))
    }

    private static func object(_ table: ReportTable, kind: String) -> JSONValue {
        .object([
            "title": .string(table.title),
            "kind": .string(kind),
            "rows_by": .string(table.stubHeader),
            "columns_by": .string(table.columnsBy),
            "groups": .array(
                table.groups.map {
                    .object(["title": .string($0.title), "columns": .array($0.columns.map { .string($0) })])
                }),
            "rows": .array(
                table.rows.map { .object(["label": .string($0.label), "cells": .array($0.cells.map { .string($0) })]) }),
            "notes": .array(table.notes.map { .string($0) }),
            "warnings": .array(table.warnings.map { .string($0) }),
            "cells": .array(table.records.map(record)),
        ])
    }

    private static func record(_ r: CellRecord) -> JSONValue {
        .object([
            "row": .string(r.row), "column": .string(r.column), "metric": .string(r.metric), "unit": .string(r.unit),
            "mean": .nullable(r.mean), "std": .nullable(r.std), "n": .nullable(r.n),
            "failed": .number(Double(r.failed)), "missing": .number(Double(r.missing)),
            "running": .number(Double(r.running)), "pending": .number(Double(r.pending)),
            "cancelled": .number(Double(r.cancelled)), "nulls": .number(Double(r.nulls)), "status": .string(r.status),
            "text": .string(r.text),
            "claimed": .nullable(r.claimed), "claimed_unit": .nullable(r.claimedUnit), "delta": .nullable(r.delta),
            "ci_low": .nullable(r.ciLow), "ci_high": .nullable(r.ciHigh), "verdict": .nullable(r.verdict),
        ])
    }

    private static func number(_ value: Double?) -> String { value.map(NumberText.plain) ?? "" }

    /// The CSV names its row and column dimensions ("model", "method") when every table
    /// agrees on them, and calls them "row" and "column" otherwise.
    static func dimensionNames(_ tables: [ReportTable]) -> (String, String) {
        // The text-claims table shows claims as rows, but its records hold model and method.
        let rows = Set(tables.map { $0.stubHeader == TextClaims.stubHeader ? "model" : $0.stubHeader })
        let columns = Set(tables.map(\.columnsBy))
        let reserved: Set<String> = ["table", "metric", "unit", "mean", "std", "n", "status", "text"]
        let rowName = rows.count == 1 && !reserved.contains(rows.first!) ? rows.first! : "row"
        let columnName =
            columns.count == 1 && !reserved.contains(columns.first!) && columns.first != rowName
            ? columns.first! : "column"
        return (rowName, columnName)
    }
}
