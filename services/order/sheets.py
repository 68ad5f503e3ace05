"""Reading batch-order spreadsheets (批量下单): CSV or XLSX with columns `sku_id, quantity`
and one column per recipient field (e.g. `mobile`). Rows are numbered as the spreadsheet shows
them (the header is row 1), so a buyer can find the row a message is about."""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass, field

MAX_ROWS = 500
MAX_BYTES = 2 * 1024 * 1024


class SheetError(ValueError):
    """The file as a whole cannot be read (wrong type, too big, no header...)."""


@dataclass(frozen=True)
class Row:
    number: int
    sku_id: str
    quantity: int
    recipient: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Rejected:
    row: int
    reason: str

    def as_dict(self) -> dict[str, object]:
        return {"row": self.row, "reason": self.reason}


def read_sheet(filename: str, content: bytes) -> tuple[list[Row], list[Rejected]]:
    if len(content) > MAX_BYTES:
        raise SheetError(f"the file is larger than {MAX_BYTES // 1024 // 1024} MB")
    name = filename.lower()
    if name.endswith(".xlsx"):
        table = _xlsx_cells(content)
    elif name.endswith((".csv", ".txt")):
        table = _csv_cells(content)
    else:
        raise SheetError("upload a .csv or .xlsx file")
    return rows_from_table(table)


def rows_from_table(table: list[list[str]]) -> tuple[list[Row], list[Rejected]]:
    if not table:
        raise SheetError("the file is empty")
    header = [h.strip().lower() for h in table[0]]
    if "sku_id" not in header or "quantity" not in header:
        raise SheetError("the first row must name the columns, including sku_id and quantity")
    if len(header) != len(set(header)):
        raise SheetError("a column name appears twice")
    rows: list[Row] = []
    rejected: list[Rejected] = []
    data = table[1:]
    if len(data) > MAX_ROWS:
        raise SheetError(f"at most {MAX_ROWS} rows per batch")
    for offset, cells in enumerate(data, start=2):
        values = {header[i]: (cells[i].strip() if i < len(cells) else "") for i in range(len(header))}
        if not any(values.values()):
            continue  # blank line
        sku_id = values.pop("sku_id")
        quantity_text = values.pop("quantity")
        if not sku_id:
            rejected.append(Rejected(offset, "sku_id is empty"))
            continue
        try:
            quantity = int(quantity_text)
        except ValueError:
            rejected.append(Rejected(offset, f"quantity {quantity_text!r} is not a whole number"))
            continue
        recipient = {k: v for k, v in values.items() if k and v}
        rows.append(Row(number=offset, sku_id=sku_id, quantity=quantity, recipient=recipient))
    return rows, rejected


def _csv_cells(content: bytes) -> list[list[str]]:
    try:
        text = content.decode("utf-8-sig")  # Excel writes a BOM
    except UnicodeDecodeError:
        try:
            text = content.decode("gb18030")  # Excel on Chinese Windows
        except UnicodeDecodeError as exc:
            raise SheetError("the CSV is neither UTF-8 nor GB18030 text") from exc
    return [row for row in csv.reader(io.StringIO(text))]


def _xlsx_cells(content: bytes) -> list[list[str]]:
    from openpyxl import load_workbook

    try:
        workbook = load_workbook(io.BytesIO(content), read_only=True, data_only=True)
    except Exception as exc:  # openpyxl raises many kinds for a file that is not a workbook
        raise SheetError("the file is not a readable .xlsx workbook") from exc
    try:
        sheet = workbook.worksheets[0]
        table: list[list[str]] = []
        for values in sheet.iter_rows(values_only=True):
            if len(table) > MAX_ROWS + 1:
                raise SheetError(f"at most {MAX_ROWS} rows per batch")
            table.append([_cell_text(v) for v in values])
        return table
    finally:
        workbook.close()


def _cell_text(value: object) -> str:
    if value is None:
        return ""
    if isinstance(value, float) and value.is_integer():
        return str(int(value))  # Excel stores 13800138000 and 2 as floats
    return str(value)
