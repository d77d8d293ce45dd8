"""The fixed cast of the demo: partners, customer name parts and the price list.

Emails use the reserved `.example` top-level domain (RFC 2606), so no demo notice can reach a real inbox.
"""

from __future__ import annotations

from dataclasses import dataclass

PROGRAM_NAME = "Acme Analytics Partners"
CURRENCY = "EUR"
HOLD_DAYS = 30
DEFAULT_PERCENT_BP = 2000

OWNER_EMAIL = "owner@demo.partnerpay.test"
FINANCE_EMAIL = "finance@demo.partnerpay.test"
PARTNER_EMAIL = "partner@demo.partnerpay.test"
API_KEY_NAME = "partnerpay demo"

# (name, contact email, ISO 3166 country)
PARTNERS: tuple[tuple[str, str, str], ...] = (
    ("Brightline Digital", "partners@brightline-digital.example", "GB"),
    ("Nordlicht Consulting GmbH", "kontakt@nordlicht-consulting.example", "DE"),
    ("Studio Vérane", "bonjour@studio-verane.example", "FR"),
    ("Kanaal Growth BV", "hallo@kanaalgrowth.example", "NL"),
    ("Fjordlys Analyse AS", "post@fjordlys.example", "NO"),
    ("Luma Datos SL", "hola@lumadatos.example", "ES"),
    ("Hollis & Park LLC", "partners@hollispark.example", "US"),
    ("Datawise Solutions Ltd", "info@datawise.example", "IE"),
    ("Maple Metrics Inc.", "hello@maplemetrics.example", "CA"),
    ("Sørensen Digital ApS", "kontakt@sorensen-digital.example", "DK"),
    ("Tessera Labs Srl", "ciao@tesseralabs.example", "IT"),
    ("Blue Harbor Advisory", "team@blueharbor.example", "US"),
    ("Insight Forge Ltd", "partnerships@insightforge.example", "GB"),
    ("Klarblick Agentur", "office@klarblick.example", "AT"),
    ("Polaris BI AB", "hej@polarisbi.example", "SE"),
    ("Marta Kowalska", "marta.kowalska@poczta.example", "PL"),
    ("Jonas Weber", "jonas@weber-analytics.example", "DE"),
    ("Ana Ribeiro", "ana.ribeiro@correio.example", "PT"),
    ("Lukáš Novák", "lukas.novak@posta.example", "CZ"),
    ("Emma Lindqvist", "emma@lindqvist.example", "SE"),
    ("Oliver Grant", "oliver@grantconsulting.example", "AU"),
    ("Sofia Marchetti", "sofia.marchetti@posta.example", "IT"),
    ("Northwind Revenue Ops", "hello@northwind-revops.example", "US"),
    ("Clearpath Analytics SRL", "info@clearpath.example", "BE"),
    ("Aurora Insights Oy", "moi@aurorainsights.example", "FI"),
)
PORTAL_PARTNER = 0  # Brightline Digital: the partner behind partner@demo.partnerpay.test
CARRY_PARTNER = 11  # Blue Harbor Advisory: one big customer, refunded after payout → negative carry
NEW_PARTNERS = (22, 23, 24)  # joined in the last months; the very last one has no revenue yet

COMPANY_FIRST = (
    "Atlas",
    "Kestrel",
    "Greenfield",
    "Bluewater",
    "Northstar",
    "Copperleaf",
    "Silverline",
    "Redwood",
    "Harbourside",
    "Lighthouse",
    "Evergreen",
    "Summit",
    "Meridian",
    "Oakridge",
    "Brightwave",
    "Stonebridge",
    "Ironwood",
    "Riverbend",
    "Clearwater",
    "Highland",
    "Foxglove",
    "Windmill",
    "Granite",
    "Sunrise",
)
COMPANY_SECOND = (
    "Logistics",
    "Retail",
    "Health",
    "Software",
    "Foods",
    "Travel",
    "Energy",
    "Media",
    "Insurance",
    "Robotics",
    "Outdoor",
    "Fashion",
    "Furniture",
    "Dental",
    "Legal",
    "Marketing",
    "Property",
    "Fitness",
)
COMPANY_SUFFIX = {
    "GB": "Ltd",
    "IE": "Ltd",
    "DE": "GmbH",
    "AT": "GmbH",
    "FR": "SAS",
    "NL": "BV",
    "BE": "BV",
    "NO": "AS",
    "DK": "ApS",
    "SE": "AB",
    "FI": "Oy",
    "ES": "SL",
    "PT": "Lda",
    "IT": "Srl",
    "PL": "sp. z o.o.",
    "CZ": "s.r.o.",
    "US": "Inc.",
    "CA": "Inc.",
    "AU": "Pty Ltd",
}


@dataclass(frozen=True)
class Plan:
    """A subscription plan of Acme Analytics, priced per month in euro cents."""

    product: str
    base: int
    included_seats: int
    seat_price: int
    weight: int


PLANS: tuple[Plan, ...] = (
    Plan("starter", 4_900, 1, 0, 35),
    Plan("team", 14_900, 5, 1_190, 35),
    Plan("business", 39_900, 10, 2_490, 22),
    Plan("enterprise", 129_000, 50, 0, 8),
)
PLAN_BY_PRODUCT = {plan.product: plan for plan in PLANS}
