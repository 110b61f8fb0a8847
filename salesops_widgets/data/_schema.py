"""The canonical sales data model: tables, columns, types, and data-quality rule names.

Documented for users in docs/data-model.md. Every loader maps its source onto these names.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = [
    "Column",
    "TABLES",
    "KEYS",
    "STATUSES",
    "EXCLUDE_RULES",
    "FLAG_RULES",
    "RULE_TEXT",
    "SIZE_BANDS",
]


@dataclass(frozen=True)
class Column:
    """One canonical column.

    kind is one of: "id", "text", "number", "date", "timestamp", "bool". ``required``: the
    source must have the column, and a row without a value is excluded (``missing_required``);
    kept only where no KPI can use such a row.
    """

    name: str
    kind: str
    required: bool = False
    doc: str = ""


STATUSES = ("open", "won", "lost")

# Size bands derived from employee_count when an account has no size_band.
# (upper bound exclusive, label)
SIZE_BANDS = ((100, "SMB"), (1000, "Mid-Market"), (None, "Enterprise"))

TABLES: dict[str, tuple[Column, ...]] = {
    "opportunities": (
        Column("opportunity_id", "id", True, "unique deal id"),
        Column(
            "created_date",
            "date",
            False,
            "date the deal was created; a deal without one is kept and left out of cycle times",
        ),
        Column(
            "amount",
            "number",
            False,
            "deal value (net of discounts), in the base currency; a deal without one (open "
            "deals often have none) is kept and left out of the money KPIs",
        ),
        Column("is_closed", "bool", False, "true when the deal is won or lost"),
        Column("is_won", "bool", False, "true when the deal is won"),
        Column(
            "stage",
            "text",
            False,
            "current stage name; mapped to a status when is_closed/is_won are absent",
        ),
        Column(
            "close_date",
            "date",
            False,
            "actual close date for closed deals, expected close date for open deals",
        ),
        Column("opportunity_name", "text", False, "deal name"),
        Column("account_id", "id", False, "key into accounts"),
        Column("owner_id", "id", False, "key into reps"),
        Column("list_amount", "number", False, "deal value at list price, before any discount"),
        Column("currency", "text", False, "ISO currency code of amount and list_amount"),
        Column("deal_type", "text", False, "new business, expansion, renewal, ..."),
        Column("lead_source", "text", False, "where the deal came from"),
        Column("loss_reason", "text", False, "why a lost deal was lost"),
        Column("product_id", "id", False, "key into products (main product of the deal)"),
        Column("probability", "number", False, "win probability, 0-1 (0-100 is rescaled)"),
        Column("pipeline", "text", False, "sales pipeline name (HubSpot)"),
    ),
    "stage_history": (
        Column("opportunity_id", "id", True, "key into opportunities"),
        Column("stage", "text", True, "stage entered"),
        Column("entered_at", "timestamp", True, "when the deal entered the stage"),
        Column("close_date", "date", False, "expected close date as of this change"),
        Column("amount", "number", False, "deal amount as of this change"),
    ),
    "line_items": (
        Column("opportunity_id", "id", True, "key into opportunities"),
        Column("product_id", "id", True, "key into products"),
        Column("quantity", "number", True, "units sold"),
        Column("list_price", "number", True, "list price per unit"),
        Column(
            "invoice_price",
            "number",
            True,
            "invoiced (net) price per unit, after on-invoice discounts",
        ),
        Column(
            "discount_percent",
            "number",
            False,
            "extra on-invoice discount in percent (Salesforce Discount): folded into "
            "invoice_price on load, then dropped",
        ),
        Column("rebate", "number", False, "off-invoice rebate per unit"),
        Column("freight", "number", False, "freight cost borne by the seller per unit"),
        Column("payment_terms_cost", "number", False, "cost of payment terms per unit"),
        Column("unit_cost", "number", False, "cost of goods per unit"),
    ),
    "accounts": (
        Column("account_id", "id", True, "unique account id"),
        Column("account_name", "text", False, "account name"),
        Column("industry", "text", False, "industry"),
        Column("employee_count", "number", False, "number of employees"),
        Column(
            "size_band",
            "text",
            False,
            "SMB / Mid-Market / Enterprise (derived from employee_count when absent)",
        ),
        Column("region", "text", False, "sales region"),
        Column("country", "text", False, "country"),
        Column("annual_revenue", "number", False, "annual revenue"),
    ),
    "reps": (
        Column("owner_id", "id", True, "unique rep id"),
        Column("owner_name", "text", False, "rep name"),
        Column("team", "text", False, "sales team"),
        Column("manager", "text", False, "manager name or id"),
        Column("region", "text", False, "rep's region"),
        Column("hire_date", "date", False, "hire date (tenure)"),
        Column("quota", "number", False, "annual quota in the base currency"),
    ),
    "products": (
        Column("product_id", "id", True, "unique product id"),
        Column("product_name", "text", False, "product name"),
        Column("family", "text", False, "product family"),
        Column("list_price", "number", False, "list price per unit"),
    ),
    "currency_rates": (
        Column("currency", "id", True, "ISO currency code"),
        Column("rate", "number", True, "units of this currency per one unit of the base currency"),
    ),
}

# Primary key of each table (None: no unique key).
KEYS: dict[str, str | None] = {
    "opportunities": "opportunity_id",
    "stage_history": None,
    "line_items": None,
    "accounts": "account_id",
    "reps": "owner_id",
    "products": "product_id",
    "currency_rates": "currency",
}

# Rules that exclude a row, in the order they are checked: a row is counted under the
# first rule it fails, so that rows read = rows used + rows excluded, exactly.
EXCLUDE_RULES = (
    "missing_required",
    "unparseable_number",
    "unparseable_date",
    "unknown_stage",
    "currency_without_rate",
    "negative_amount",
    "parent_excluded",
    "unmatched_opportunity",
    "duplicate_id",
)

# Rules that flag a row that is still used.
FLAG_RULES = (
    "unparseable_number",  # an optional number column could not be parsed: set to empty
    "unparseable_date",  # an optional date column could not be parsed: set to empty
    "currency_without_rate",  # opportunities: kept without an amount
    "negative_amount",  # opportunities: kept without an amount
    "close_before_created",  # opportunities: kept, left out of cycle times
    "net_above_list",
    "unmatched_account",
    "unmatched_owner",
    "unmatched_product",
    "open_close_date_past",
    "formula_text",
    "mixed_currencies",
)

RULE_TEXT = {
    "missing_required": "a required field is empty",
    "unparseable_number": "a number could not be parsed (a used row keeps it empty)",
    "unparseable_date": "a date could not be parsed (a used row keeps it empty)",
    "unknown_stage": "deal status unknown: stage not in the stage map and no is_closed/is_won",
    "currency_without_rate": "amount is in another currency and no rate converts it (an "
    "opportunity is kept without an amount)",
    "negative_amount": "amount, quantity or price is negative (an opportunity is kept without "
    "an amount)",
    "close_before_created": "close date is before the created date (the deal is kept and left "
    "out of cycle times)",
    "parent_excluded": "belongs to an opportunity that was excluded",
    "unmatched_opportunity": "opportunity_id matches no opportunity",
    "duplicate_id": "id already seen on another row (one row kept)",
    "net_above_list": "net price is above list price",
    "unmatched_account": "account_id matches no account",
    "unmatched_owner": "owner_id matches no rep",
    "unmatched_product": "product_id matches no product",
    "open_close_date_past": "open deal with an expected close date before the as-of date",
    "formula_text": "text starts with =, +, - or @, which a spreadsheet runs as a formula",
    "mixed_currencies": "several currencies, converted with currency_rates",
}
