import SweepKit

/// The machine-readable forms of report tables: one long CSV (one header, one line per cell,
/// numbers plain, mean/std/n in their own columns) and a JSON document.
enum TableData {
    static func csv(_ tables: [ReportTable]) -> String {
        let (rowsName, columnsName) = dimensionNames(tables)
        var lines = [
            CSVText.line([
                "table", rowsName, columnsName, "metric", "unit", "mean", "std", "n", "failed",
                "missing", "running", "pending", "cancelled", "nulls", "status", "text",
                "claimed", "claimed_unit", "delta", "ci_low", "ci_high", "verdict",
            ])
        ]
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

    static func json(sweep: String, pivots: [ReportTable], references: [ReportTable]) -> String {
        let tables =
            pivots.map { object($0, kind: "pivot") } + references.map { object($0, kind: "claimed_vs_measured") }
        return JSONText.pretty(.object(["sweep": .string(sweep), "tables": .array(tables)]))
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
        let rows = Set(tables.map(\.stubHeader)), columns = Set(tables.map(\.columnsBy))
        let reserved: Set<String> = ["table", "metric", "unit", "mean", "std", "n", "status", "text"]
        let rowName = rows.count == 1 && !reserved.contains(rows.first!) ? rows.first! : "row"
        let columnName =
            columns.count == 1 && !reserved.contains(columns.first!) && columns.first != rowName
            ? columns.first! : "column"
        return (rowName, columnName)
    }
}
