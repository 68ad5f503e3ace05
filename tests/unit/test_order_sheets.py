from __future__ import annotations

import io

import pytest
from openpyxl import Workbook

from services.order.sheets import MAX_ROWS, Rejected, Row, SheetError, read_sheet


def test_csv_rows_are_numbered_as_the_spreadsheet_shows_them() -> None:
    content = "\ufeffsku_id,quantity,mobile\ns1,2,13800138000\n\ns2,x,13900139000\n,1,13700137000\n".encode()
    rows, rejected = read_sheet("batch.csv", content)
    assert rows == [Row(number=2, sku_id="s1", quantity=2, recipient={"mobile": "13800138000"})]
    assert rejected == [Rejected(4, "quantity 'x' is not a whole number"), Rejected(5, "sku_id is empty")]


def test_gb18030_csv_from_excel_on_windows() -> None:
    content = "sku_id,quantity,备注\ns1,1,中国移动\n".encode("gb18030")
    rows, _ = read_sheet("批量.csv", content)
    assert rows[0].recipient == {"备注": "中国移动"}


def test_xlsx() -> None:
    wb = Workbook()
    ws = wb.active
    ws.append(["sku_id", "quantity", "mobile"])
    ws.append(["s1", 3, 13800138000])
    buffer = io.BytesIO()
    wb.save(buffer)
    rows, rejected = read_sheet("batch.xlsx", buffer.getvalue())
    assert rows == [Row(number=2, sku_id="s1", quantity=3, recipient={"mobile": "13800138000"})]
    assert rejected == []


@pytest.mark.parametrize(
    ("name", "content", "message"),
    [
        ("a.pdf", b"%PDF", "upload a .csv or .xlsx"),
        ("a.csv", b"", "empty"),
        ("a.csv", b"sku,qty\n", "sku_id and quantity"),
        ("a.xlsx", b"not a zip", "not a readable .xlsx"),
        ("a.csv", ("sku_id,quantity\n" + "s,1\n" * (MAX_ROWS + 1)).encode(), f"at most {MAX_ROWS} rows"),
    ],
)
def test_unreadable_files(name: str, content: bytes, message: str) -> None:
    with pytest.raises(SheetError, match=message):
        read_sheet(name, content)
