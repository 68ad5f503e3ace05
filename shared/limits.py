"""Bounds for the integers a client may send in a request body.

MongoDB stores integers as signed 64-bit and Redis counters are 64-bit too: an unbounded `int`
field lets a client send 2**64 and turn a validation question into a 500 from the encoder. Every
request struct uses these instead of a bare `int`, so such a value is a 422 at the edge and
nothing is written.
"""

from __future__ import annotations

from typing import Annotated

import msgspec

MAX_QUANTITY = 100_000
"""The most units one order row may ask for (a bulk buyer's largest realistic row)."""

Quantity = Annotated[int, msgspec.Meta(ge=1, le=MAX_QUANTITY, description="units, 1–100000")]
AnyQuantity = Annotated[int, msgspec.Meta(ge=-(2**31), le=2**31, description="units")]
"""A count that the use case checks itself (so its own message names the rule), only kept
inside what can be stored."""
Position = Annotated[int, msgspec.Meta(ge=-1_000_000, le=1_000_000, description="sort position")]

# A map key goes into MongoDB as a field name, which may not hold a NUL byte (nor start with `$`
# or hold a `.`, which queries would misread): fuzzing sent {"\u0000": ...} as a template row's
# recipient and got a 500 from the BSON encoder. The recipient field names a SKU defines are
# plain words, so such a key is a 422 at the edge.
FIELD_NAME_PATTERN = r"^[^\x00$.][^\x00.]*$"
FieldName = Annotated[str, msgspec.Meta(min_length=1, max_length=64, pattern=FIELD_NAME_PATTERN)]
RecipientInput = Annotated[
    dict[FieldName, str],
    # The key rule in the document too (`propertyNames`): Litestar states a dict's values, not its keys.
    msgspec.Meta(
        extra_json_schema={
            "extra": {
                "property_names": {"type": "string", "minLength": 1, "maxLength": 64, "pattern": FIELD_NAME_PATTERN}
            }
        }
    ),
]
"""What a buyer typed, by recipient field name (checked against the SKU's fields later)."""
