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
MANAGER_EMAIL = "manager@demo.partnerpay.test"
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


# Onboarding: terms, groups, the application queue and the recruitment pipeline.

TERMS_TITLE = "Acme Analytics Partner Program Terms"
TERMS_BODY = """\
# Acme Analytics Partner Program Terms

1. **Commission.** You earn 20 % of every paid invoice of a customer you referred, for as long as they stay.
2. **Hold.** Commissions are held for 30 days, so that refunds and chargebacks can be netted, then approved.
3. **Payouts.** Approved commissions are paid once a month; refunds after a payout are deducted from the next one.
4. **Conduct.** No paid search on the Acme brand, no cookie stuffing, no misleading claims.
5. **Changes.** We publish new terms here; you keep earning once you accept them in the portal.
"""

QUESTION_KEY = "clients_per_year"
QUESTION_LABEL = "How many clients do you work with in a year?"

# Partners (indexes into PARTNERS) in the pilot and in the resellers group; neither changes any rate.
PILOT_NAME = "Pilot: agencies Q4"
PILOT_DESCRIPTION = "Agencies trying the co-selling kit and a shared Slack channel; compare their first 90 days."
PILOT_CAP = 8
PILOT_MEMBERS = (2, 3, 9, 13, 22)
RESELLERS_NAME = "Resellers"
RESELLERS_DESCRIPTION = "Partners who resell Acme licences with their own services."
RESELLER_MEMBERS = (6, 10, 14)


@dataclass(frozen=True)
class Applicant:
    """Someone who applied on the public form in the last days and waits for a decision."""

    days_ago: float
    answers: dict[str, str]
    ip: str


APPLICANTS: tuple[Applicant, ...] = (
    Applicant(
        4.2,
        {
            "name": "Priya Raman",
            "email": "priya@ridgeline-analytics.example",
            "company": "Ridgeline Analytics Ltd",
            "website": "https://ridgeline-analytics.example",
            "country": "GB",
            "audience": "Mid-size e-commerce teams in the UK; we build reporting for Shopify and WooCommerce shops.",
            QUESTION_KEY: "About 30, most of them on a yearly retainer",
        },
        "203.0.113.24",
    ),
    Applicant(
        2.1,
        {
            "name": "Mateo Fernández",
            "email": "mateo@datanorte.example",
            "company": "Datanorte Consultores SL",
            "website": "datanorte.example",
            "country": "ES",
            "audience": "SaaS start-ups in Spain and Latin America that need their first product dashboards.",
        },
        "198.51.100.7",
    ),
    Applicant(
        0.3,
        {
            "name": "Hanna Virtanen",
            "email": "hanna.virtanen@posti.example",
            "country": "FI",
            "audience": "A weekly newsletter on product analytics with about 4,000 subscribers.",
        },
        "192.0.2.55",
    ),
)


@dataclass(frozen=True)
class ProspectSpec:
    """A company the team recruits: created `created_days_ago`, then moved to `stage` `moved_days_ago`."""

    company: str
    contact_name: str
    email: str
    website: str
    source: str
    stage: str
    next_step: str
    due_in_days: int  # negative: overdue
    managed: bool  # owned by the manager (else by the owner)
    created_days_ago: int
    moved_days_ago: int | None = None


PROSPECTS: tuple[ProspectSpec, ...] = (
    ProspectSpec(
        "Vantage Point Media",
        "Claire Dubois",
        "claire@vantagepoint.example",
        "https://vantagepoint.example",
        "conference",
        "prospect",
        "Send the partner deck after her Analytics Summit talk",
        5,
        managed=True,
        created_days_ago=3,
    ),
    ProspectSpec(
        "Helix Growth Partners",
        "Tom Becker",
        "tom.becker@helixgrowth.example",
        "https://helixgrowth.example",
        "referral from Kanaal Growth",
        "contacted",
        "Follow up on the intro call: send the commission terms and a demo login",
        -3,
        managed=True,
        created_days_ago=24,
        moved_days_ago=10,
    ),
    ProspectSpec(
        "Ridgeline Analytics Ltd",
        "Priya Raman",
        "priya@ridgeline-analytics.example",
        "https://ridgeline-analytics.example",
        "LinkedIn",
        "applied",
        "Review her application in the queue and book a kick-off",
        1,
        managed=False,
        created_days_ago=18,
        moved_days_ago=4,
    ),
    ProspectSpec(
        "Orbit Commerce Studio",
        "Daniel Okafor",
        "daniel@orbitcommerce.example",
        "https://orbitcommerce.example",
        "inbound email",
        "dropped",
        "Ask again when their analytics practice launches in Q2",
        75,
        managed=True,
        created_days_ago=40,
        moved_days_ago=15,
    ),
)
