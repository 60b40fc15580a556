"""Analytics refresh at scale: RFM figures, the cohort matrix and the CLV fit, against lifetimes for the fit.

Run from the project root (PostgreSQL on 127.0.0.1:5432 by default):

    .venv/bin/python bench/analytics.py [--scale 1.0] [--recreate] [--json]

The database is `BENCH_DATABASE_URL` or `--database-url` (default loyalty_bench_analytics); the benchmark only
runs on a database it created itself (marked with a comment), as bench/ledger.py.

1. set-up (not measured; reused by later runs, `--recreate` starts again): per scale, a program (Europe/Prague,
   CLV in weeks) with 1,000,000 x `--scale` members enrolled over two years and about 10,000,000 x `--scale`
   purchases, inserted with set-based SQL into the real tables in one transaction (see PLAN and PURCHASES:
   20 % never buy; the others buy at rates spread over two orders of magnitude, 40 % of them stop early; one
   visit in ten has a second purchase the same day; 3 % of purchases are fully and 3 % partly returned),
   then VACUUM ANALYZE (the server may run without autovacuum). No ledger rows: the analytics never read them.
2. each run starts from no analytics (the program's member figures, segment changes and CLV fits are
   deleted), then times, on one connection, in this order:
   - `member_analytics_refresh` 30 days before the end of the data (the first: every row inserted), and again
     at the end of the data (every row updated, segment changes recorded);
   - `cohort_matrix` over the 24 months of data (24 cohorts x 24 offsets);
   - `clv_refresh` at the end of the data, and its parts: `clv_data` (the summary arrays), the BG/NBD fit, the
     Gamma-Gamma fit, and the predictions written back (computing them and `bulk_update`);
   - the reference: lifetimes' `BetaGeoFitter` and `GammaGammaFitter` on the SAME arrays that `clv_data`
     returned (members with a purchase; members with a repeat purchase and a positive mean value), default
     settings; both parameter sets, their largest relative difference, and both BG/NBD log-likelihoods;
   - `analytics_refresh` (the whole refresh: member figures, then CLV) one day after the end of the data,
     with its parts; the peak memory of this process during it.
"""

import argparse
import json
import os
import platform
import resource
import sys
import time
import warnings
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from statistics import median
from typing import Any
from zoneinfo import ZoneInfo

import psycopg
from ledger import ensure_database, log, machine_facts, setup_django  # bench/ is first on sys.path
from psycopg import sql

DEFAULT_DATABASE_URL = "postgres://postgres@127.0.0.1:5432/loyalty_bench_analytics"
DATABASE_MARK = "created by bench/analytics.py, the analytics refresh benchmark"
TIME_ZONE = "Europe/Prague"
DATA_END = datetime(2025, 7, 1, tzinfo=ZoneInfo(TIME_ZONE))  # no purchase at or after this moment
HISTORY_DAYS = 730
MEMBERS_AT_SCALE_1 = 1_000_000
PURCHASES_AT_SCALE_1 = 10_000_000
SAME_DAY_SHARE = 0.1  # visits with a second purchase on the same day
COHORT_MONTHS = 24
GOAL_SECONDS = 120


# --- Set-up -------------------------------------------------------------------------------------------------


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--database-url", default=os.environ.get("BENCH_DATABASE_URL", DEFAULT_DATABASE_URL))
    parser.add_argument(
        "--scale", type=float, default=1.0, help="1.0 = 1,000,000 members and about 10,000,000 purchases (default)"
    )
    parser.add_argument(
        "--fit-rounds", type=int, default=3, help="rounds of both fits, ours and lifetimes', in alternation (default 3)"
    )
    parser.add_argument("--seed", type=int, default=7, help="seed of the generated data (default 7)")
    parser.add_argument("--recreate", action="store_true", help="drop and recreate the benchmark's database first")
    parser.add_argument("--json", action="store_true", help="machine-readable output")
    args = parser.parse_args(argv)
    if not 0 < args.scale <= 10 or args.fit_rounds < 1:
        parser.error("need --scale in (0, 10] and --fit-rounds >= 1")
    return args


INSERT_MEMBERS = """
INSERT INTO members_member (program_id, external_id, card, email, phone, first_name, last_name, birth_date,
                            enrolled_at, status, acquisition_channel, consent_email, consent_sms, consent_push,
                            referral_code, status_changed_at, erased_at, updated_at, referred_by_id, user_id)
SELECT %(program)s, 'an-' || g, lpad(g::text, 12, '0'), NULL, NULL, '', '', NULL,
       %(end)s::timestamptz - random() * %(days)s * interval '1 day', 'active',
       (ARRAY['store', 'web', 'app', 'referral'])[1 + g %% 4], false, false, false, 'AN' || g, NULL, NULL,
       %(end)s, NULL, NULL
FROM generate_series(1, %(members)s) AS g
"""
# Per member: the first purchase (a few days after enrolment, on average), the days it stays active (40 % stop
# after a random share of the time left, skewed short), a rate weight (lognormal, sigma 0.9: rates spread over
# two orders of magnitude) and a mean purchase value (lognormal around 40). 20 % never buy.
PLAN_WEIGHTS = """
CREATE TEMP TABLE bench_weights ON COMMIT DROP AS
SELECT id, first_at, active_days, exp(0.9 * z1) * active_days AS weight, 40 * exp(0.6 * z2) AS mean_value
FROM (SELECT id, first_at, buyer,
             CASE WHEN churn < 0.4 THEN left_days * power(random(), 2) ELSE left_days END AS active_days,
             sqrt(-2 * ln(u1)) * cos(2 * pi() * u2) AS z1, sqrt(-2 * ln(u1)) * sin(2 * pi() * u2) AS z2
      FROM (SELECT id, first_at, buyer, churn, u1, u2,
                   extract(epoch FROM %(end)s::timestamptz - first_at) / 86400 AS left_days
            FROM (SELECT id, enrolled_at - ln(1 - random()) * interval '5 days' AS first_at,
                         random() AS buyer, random() AS churn, 1 - random() AS u1, random() AS u2
                  FROM members_member WHERE program_id = %(program)s ORDER BY id) m) s) t
WHERE buyer < 0.8 AND first_at < %(end)s::timestamptz
ORDER BY id
"""
# Visits per buyer: 1 + the weight x k (k sets the total), at most one a day.
PLAN = """
CREATE TEMP TABLE bench_plan ON COMMIT DROP AS
SELECT id, first_at, active_days, mean_value,
       least(1 + floor(weight * %(k)s + random()), 1 + floor(active_days))::int AS visits
FROM bench_weights ORDER BY id
"""
# Visit 1 at the first purchase, the others spread evenly (with jitter) over the active days; a second purchase
# 25 minutes before the visit on one visit in ten; totals lognormal around the member's mean; 3 % fully and 3 %
# partly returned. In member and time order, so every index of the table is appended to, not written at random.
PURCHASES = """
INSERT INTO loyalty_purchase (program_id, member_id, external_id, store, channel, occurred_at, currency, total,
                              eligible_amount, points_awarded, points_reversed, returned_total, returned_eligible,
                              awards, outcome, created_at, entry_id)
SELECT %(program)s, id, 'an-' || lpad(id::text, 10, '0') || '-' || lpad(k::text, 4, '0') || '-' || j,
       'store-' || (id %% 50), 'pos', at, 'EUR', total, total, 0, 0,
       CASE WHEN r < 0.03 THEN total WHEN r < 0.06 THEN round(total / 3, 2) ELSE 0 END, 0, '[]', '{}', at, NULL
FROM (SELECT p.id, v.k, d.j, random() AS r, v.visit_at - (d.j - 1) * interval '25 minutes' AS at,
             round(greatest(1, p.mean_value * exp(0.5 * sqrt(-2 * ln(1 - random())) * cos(2 * pi() * random())))
                   ::numeric, 2) AS total
      FROM bench_plan p
      CROSS JOIN LATERAL (
          SELECT k, CASE WHEN random() < %(same_day)s THEN 2 ELSE 1 END AS purchases,
                 CASE WHEN k = 1 THEN p.first_at
                      ELSE p.first_at + p.active_days * (k - 2 + random()) / (p.visits - 1) * interval '1 day'
                 END AS visit_at
          FROM generate_series(1, p.visits) AS k) v
      CROSS JOIN LATERAL generate_series(1, v.purchases) AS d(j)) s
"""
ORPHANS = """
SELECT count(*) FROM loyalty_purchase p
WHERE p.program_id = %s AND NOT EXISTS (SELECT FROM members_member m WHERE m.id = p.member_id AND m.program_id = %s)
"""


def program_slug(scale: float) -> str:
    return f"analytics-{round(MEMBERS_AT_SCALE_1 * scale)}"


def load_population(program: Any, members: int, purchases: int, seed: int) -> None:
    """Members and purchases of one program, set-based, inside the caller's transaction.

    The purchases are inserted with the foreign-key triggers off (session_replication_role = replica: a
    superuser setting, for this transaction only): the deferred checks would cost minutes at commit for ten
    million rows. The rows take their member ids from members_member, and one anti-join checks them after."""
    from django.db import connection

    params = {"program": program.pk, "end": DATA_END, "days": HISTORY_DAYS, "members": members}
    with connection.cursor() as cursor:
        cursor.execute("SELECT setseed(%s)", [(seed % 1000) / 1000])
        timed_statement(cursor, "members", INSERT_MEMBERS, params)
        timed_statement(cursor, "plan: weights", PLAN_WEIGHTS, params)
        params["k"] = visits_factor(cursor, purchases / (1 + SAME_DAY_SHARE))
        timed_statement(cursor, "plan: visits", PLAN, params)
        cursor.execute("ANALYZE bench_plan")
        cursor.execute("SET LOCAL session_replication_role = replica")
        timed_statement(cursor, "purchases", PURCHASES, {**params, "same_day": SAME_DAY_SHARE})
        cursor.execute("SET LOCAL session_replication_role = origin")
        started = time.perf_counter()
        cursor.execute("ANALYZE members_member, loyalty_purchase")  # else the planner guesses a nested loop
        cursor.execute(ORPHANS, [program.pk, program.pk])
        orphans = cursor.fetchone()[0]
        log(f"  statistics and foreign-key check (one anti-join): {time.perf_counter() - started:.1f} s")
    if orphans:
        raise SystemExit(f"{orphans} generated purchases without a member of the program")


def visits_factor(cursor: Any, visits: float) -> float:
    """k such that the buyers' visits, 1 + weight x k each but at most one a day, add up to about `visits`
    (a few fixed-point steps: the cap takes some of the heaviest buyers' visits)."""
    cursor.execute("SELECT count(*), sum(weight) FROM bench_weights")
    buyers, weights = cursor.fetchone()
    k = max(visits - buyers, 0) / weights if weights else 0
    for _ in range(4):
        cursor.execute(
            "SELECT sum(least(weight * %(k)s, floor(active_days))) FROM bench_weights", {"k": k}
        )  # expected visits after the first, capped
        repeats = cursor.fetchone()[0] or 0
        k = k * max(visits - buyers, 0) / repeats if repeats else k
    return k


def timed_statement(cursor: Any, label: str, statement: str, params: dict[str, Any]) -> None:
    started = time.perf_counter()
    cursor.execute(statement, params)
    rows = f"{cursor.rowcount:,} rows" if cursor.rowcount >= 0 else "done"
    log(f"  {label}: {rows} in {time.perf_counter() - started:.1f} s")


def ensure_program(url: str, scale: float, seed: int) -> tuple[Any, float | None]:
    """The program of this scale, and the seconds spent creating it (None: it was there). One transaction:
    a run stopped half-way leaves nothing behind, and the next run starts that program again."""
    from django.db import transaction

    from members.models import Program
    from members.services.programs import program_create

    slug = program_slug(scale)
    program = Program.objects.filter(slug=slug).first()
    if program is not None:
        return program, None
    members, purchases = round(MEMBERS_AT_SCALE_1 * scale), round(PURCHASES_AT_SCALE_1 * scale)
    log(f"creating program {slug}: {members:,} members, about {purchases:,} purchases")
    started = time.perf_counter()
    with transaction.atomic():
        program = program_create(
            slug=slug, name=f"Analytics benchmark, {members:,} members", currency="EUR", timezone=TIME_ZONE
        )
        log(f"  program: {time.perf_counter() - started:.1f} s")
        load_population(program, members, purchases, seed)
        commit_started = time.perf_counter()
    log(f"  commit: {time.perf_counter() - commit_started:.1f} s")
    analyze_started = time.perf_counter()
    with psycopg.connect(url, autocommit=True) as conn:
        for table in ("members_member", "loyalty_purchase"):
            conn.execute(sql.SQL("VACUUM (ANALYZE) {}").format(sql.Identifier(table)))
    log(f"  VACUUM ANALYZE: {time.perf_counter() - analyze_started:.1f} s")
    return program, time.perf_counter() - started


def reset_analytics(url: str, program: Any) -> None:
    """No figures, segment changes or CLV fits for the program: every run starts from the same state. The other
    programs' rows are kept; VACUUM ANALYZE so that dead rows from the last run do not slow this one."""
    tables = ("loyalty_memberanalytics", "loyalty_segmentchange", "loyalty_clvfit")
    with psycopg.connect(url, autocommit=True) as conn:
        for table in tables:
            conn.execute(sql.SQL("DELETE FROM {} WHERE program_id = %s").format(sql.Identifier(table)), [program.pk])
        for table in tables:
            conn.execute(sql.SQL("VACUUM (ANALYZE) {}").format(sql.Identifier(table)))


def data_facts(url: str, program: Any) -> dict[str, Any]:
    query = """
    SELECT (SELECT count(*) FROM members_member WHERE program_id = %(p)s),
           count(*), count(DISTINCT member_id), min(occurred_at), max(occurred_at),
           count(*) FILTER (WHERE returned_total = total AND total > 0), count(*) FILTER (WHERE returned_total > 0
                                                                         AND returned_total < total),
           pg_size_pretty(pg_total_relation_size('loyalty_purchase'))
    FROM loyalty_purchase WHERE program_id = %(p)s
    """
    with psycopg.connect(url, autocommit=True) as conn:
        row = conn.execute(query, {"p": program.pk}).fetchone()
    names = ("members", "purchases", "purchasers", "first_purchase", "last_purchase", "fully_returned",
             "partly_returned", "purchase_table_size")  # fmt: skip
    facts = dict(zip(names, row, strict=True))
    for key in ("first_purchase", "last_purchase"):
        facts[key] = facts[key].astimezone(UTC).isoformat(timespec="seconds")
    return facts


# --- Measurement --------------------------------------------------------------------------------------------


class Parts:
    """Seconds spent in named functions of a module while it is active (they are replaced by timing wrappers,
    and restored after): where a phase's time goes. The last return value of each is kept too."""

    def __init__(self, module: Any, names: Sequence[str]) -> None:
        self.module, self.names = module, names
        self.seconds: dict[str, float] = {}
        self.results: dict[str, Any] = {}

    def _wrap(self, name: str, function: Callable[..., Any]) -> Callable[..., Any]:
        def timed(*args: Any, **kwargs: Any) -> Any:
            started = time.perf_counter()
            result = function(*args, **kwargs)
            self.seconds[name] = self.seconds.get(name, 0.0) + time.perf_counter() - started
            self.results[name] = result
            return result

        return timed

    @contextmanager
    def active(self) -> Iterator["Parts"]:
        originals = {name: getattr(self.module, name) for name in self.names}
        self.seconds, self.results = {}, {}
        for name, function in originals.items():
            setattr(self.module, name, self._wrap(name, function))
        try:
            yield self
        finally:
            for name, function in originals.items():
                setattr(self.module, name, function)


MEMBER_PARTS = ("_purchase_rows", "_previous_segments", "_purchaser_columns", "_write_postgresql")
CLV_PARTS = ("clv_data", "bgnbd_fit", "gamma_gamma_fit", "_write_predictions")


@contextmanager
def all_parts() -> Iterator[dict[str, Parts]]:
    from analytics import lifetime, members

    parts = {"members": Parts(members, MEMBER_PARTS), "clv": Parts(lifetime, CLV_PARTS)}
    with parts["members"].active(), parts["clv"].active():
        yield parts


def parts_seconds(parts: dict[str, Parts]) -> dict[str, float]:
    return {name: round(s, 3) for part in parts.values() for name, s in part.seconds.items()}


def timed(call: Callable[[], Any]) -> tuple[float, Any]:
    started = time.perf_counter()
    result = call()
    return time.perf_counter() - started, result


def reset_peak_rss() -> bool:
    """Resets the kernel's peak-RSS mark of this process (Linux), so the next reading is the peak since."""
    try:
        Path("/proc/self/clear_refs").write_text("5")
    except OSError:
        return False
    return True


def maxrss_mb() -> float:
    return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)


def measure_member_refreshes(program: Any) -> list[dict[str, Any]]:
    from analytics.members import member_analytics_refresh

    phases = []
    for label, as_of in (("first", DATA_END - timedelta(days=30)), ("second", DATA_END)):
        log(f"member_analytics_refresh, {label}, as of {as_of:%Y-%m-%d}")
        with all_parts() as parts:
            seconds, result = timed(lambda as_of=as_of: member_analytics_refresh(program=program, as_of=as_of))
        found = parts_seconds(parts)
        found["the rest (scores, segments, lock)"] = round(seconds - sum(found.values()), 3)
        phases.append({"as_of": as_of.isoformat(), "seconds": round(seconds, 3), "parts": found,
                       **{k: v for k, v in result.as_dict().items() if k != "as_of"}})  # fmt: skip
    return phases


def measure_cohorts(program: Any) -> dict[str, Any]:
    from analytics.metrics import add_months, cohort_matrix, month_of

    last = month_of(program, DATA_END - timedelta(days=1))
    first = add_months(last, -(COHORT_MONTHS - 1))
    log(f"cohort_matrix {first:%Y-%m}..{last:%Y-%m}")
    seconds, cohorts = timed(
        lambda: cohort_matrix(program, first_month=first, last_month=last, offsets=COHORT_MONTHS - 1, as_of=DATA_END)
    )
    return {
        "seconds": round(seconds, 3),
        "cohorts": len(cohorts),
        "members": sum(cohort.size for cohort in cohorts),
        "first": str(first),
        "last": str(last),
        "month_1_share_first_cohort": cohorts[0].shares[1] if cohorts else None,
    }


def measure_clv(program: Any) -> tuple[dict[str, Any], Any]:
    """`clv_refresh` with its parts; returns the figures and the summary data `clv_data` gave it."""
    from analytics.lifetime import clv_refresh

    log(f"clv_refresh as of {DATA_END:%Y-%m-%d}")
    with all_parts() as parts:
        seconds, result = timed(lambda: clv_refresh(program=program, as_of=DATA_END))
        data = parts["clv"].results["clv_data"]
        bgnbd, spend = parts["clv"].results["bgnbd_fit"], parts["clv"].results["gamma_gamma_fit"]
    found = parts_seconds(parts)
    found["the rest (ClvFit row, transaction)"] = round(seconds - sum(found.values()), 3)
    figures = {
        "seconds": round(seconds, 3),
        "parts": found,
        "converged": result.fit.converged,
        "message": result.fit.message,
        "written": result.written,
        "members_used": result.fit.members_used,
        "repeat_members": result.fit.repeat_members,
        "time_unit": result.fit.time_unit,
        "bgnbd": {k: getattr(bgnbd.params, k) for k in ("r", "alpha", "a", "b")},
        "gamma_gamma": {k: getattr(spend.params, k) for k in ("p", "q", "gamma")},
    }
    return figures, data


def fit_arrays(data: Any) -> dict[str, tuple[Any, ...]]:
    """The arrays each fit gets, as in `clv_refresh`: members with a purchase (age > 0) for BG/NBD; members
    with a repeat purchase for Gamma-Gamma (ours leaves out a mean value <= 0 itself: lifetimes gets the rows
    that ours keeps)."""
    import numpy as np

    purchased, repeat = data.age > 0, data.frequency > 0
    kept = repeat & np.isfinite(data.mean_value) & (data.mean_value > 0)
    return {
        "bgnbd": (data.frequency[purchased], data.recency[purchased], data.age[purchased]),
        "gamma_gamma": (data.frequency[repeat], data.mean_value[repeat]),
        "gamma_gamma_kept": (data.frequency[kept], data.mean_value[kept]),
    }


def our_fits(arrays: dict[str, tuple[Any, ...]]) -> tuple[float, float, dict[str, float], dict[str, float]]:
    from analytics.clv import bgnbd_fit, gamma_gamma_fit

    bg_seconds, bg = timed(lambda: bgnbd_fit(*arrays["bgnbd"]))
    gg_seconds, gg = timed(lambda: gamma_gamma_fit(*arrays["gamma_gamma"]))
    params = {k: getattr(bg.params, k) for k in ("r", "alpha", "a", "b")}
    return bg_seconds, gg_seconds, params, {k: getattr(gg.params, k) for k in ("p", "q", "gamma")}


def lifetimes_fits(arrays: dict[str, tuple[Any, ...]]) -> tuple[float, float, dict[str, float], dict[str, float]]:
    warnings.filterwarnings("ignore", category=FutureWarning)
    warnings.filterwarnings("ignore", category=DeprecationWarning)
    from lifetimes import BetaGeoFitter, GammaGammaFitter

    bg_seconds, bg = timed(lambda: BetaGeoFitter().fit(*arrays["bgnbd"]))
    gg_seconds, gg = timed(lambda: GammaGammaFitter().fit(*arrays["gamma_gamma_kept"]))
    params = {k: float(bg.params_[k]) for k in ("r", "alpha", "a", "b")}
    return bg_seconds, gg_seconds, params, {"p": gg.params_["p"], "q": gg.params_["q"], "gamma": gg.params_["v"]}


def compare_fits(data: Any, rounds: int) -> dict[str, Any]:
    """Both fits, ours and lifetimes' (default settings), on the same arrays, `rounds` times in alternation;
    the medians, both parameter sets, their largest relative difference and both BG/NBD log-likelihoods."""
    from analytics.clv import BgNbdParams, bgnbd_log_likelihood

    arrays = fit_arrays(data)
    log(f"fits on the same arrays, {rounds} rounds: BG/NBD {arrays['bgnbd'][0].size:,} members, Gamma-Gamma"
        f" {arrays['gamma_gamma_kept'][0].size:,}")  # fmt: skip
    times: dict[str, list[tuple[float, float]]] = {"ours": [], "lifetimes": []}
    params: dict[str, dict[str, dict[str, float]]] = {}
    for _ in range(rounds):
        for name, fits in (("ours", our_fits), ("lifetimes", lifetimes_fits)):
            bg_seconds, gg_seconds, bg, gg = fits(arrays)
            times[name].append((bg_seconds, gg_seconds))
            params[name] = {"bgnbd": bg, "gamma_gamma": {k: float(v) for k, v in gg.items()}}
    differences = {
        f"{model}.{key}": abs(value - params["lifetimes"][model][key]) / abs(params["lifetimes"][model][key])
        for model in ("bgnbd", "gamma_gamma")
        for key, value in params["ours"][model].items()
    }
    result: dict[str, Any] = {"rounds": rounds}
    for name, pairs in times.items():
        result[name] = {
            "bgnbd_s": [round(bg, 3) for bg, _ in pairs],
            "gamma_gamma_s": [round(gg, 3) for _, gg in pairs],
            "median_s": round(median(bg + gg for bg, gg in pairs), 3),
            **params[name],
            "bgnbd_log_likelihood": bgnbd_log_likelihood(BgNbdParams(**params[name]["bgnbd"]), *arrays["bgnbd"]),
        }
    ours, theirs = result["ours"]["median_s"], result["lifetimes"]["median_s"]
    result["ratio"] = round(theirs / ours, 2) if ours else None  # lifetimes' time / ours: > 1, ours is faster
    result["relative_differences"] = {k: float(f"{v:.2e}") for k, v in differences.items()}
    result["max_relative_difference"] = float(f"{max(differences.values()):.2e}")
    return result


def measure_whole_refresh(program: Any) -> dict[str, Any]:
    from analytics.services.refresh import analytics_refresh

    as_of = DATA_END + timedelta(days=1)
    log(f"analytics_refresh as of {as_of:%Y-%m-%d}")
    reset = reset_peak_rss()
    with all_parts() as parts:
        seconds, status = timed(lambda: analytics_refresh(program=program, as_of=as_of))
    steps = {}
    for step in status["steps"]:
        started, finished = (datetime.fromisoformat(step[k]) for k in ("started_at", "finished_at"))
        steps[step["name"]] = round((finished - started).total_seconds(), 3)
    return {
        "as_of": as_of.isoformat(),
        "seconds": round(seconds, 3),
        "steps": steps,
        "parts": parts_seconds(parts),
        "state": status["state"],
        "results": status["results"],
        "peak_rss_mb": maxrss_mb() if reset else None,
    }


def software_facts() -> dict[str, str]:
    from importlib.metadata import version

    return {name: version(name) for name in ("numpy", "scipy", "pandas", "lifetimes")}


# --- Report -------------------------------------------------------------------------------------------------


def met(condition: bool) -> str:
    return "met" if condition else "not met"


def parts_text(parts: dict[str, float]) -> str:
    return ", ".join(f"{name} {seconds:.2f}" for name, seconds in parts.items())


def report(doc: dict[str, Any]) -> str:
    m, d, whole, fit = doc["machine"], doc["data"], doc["whole_refresh"], doc["fit"]
    lines = [
        f"Analytics refresh, scale {doc['scale']}, {m['date']}",
        f"machine: {m['cpu']}, {m['cores']} cores, {m['os']}; load average {doc['load_before']} before,"
        f" {doc['load_after']} after",
        f"software: Python {m['python']}, Django {m['django']}, PostgreSQL {m['postgresql']} (shared_buffers"
        f" {m['shared_buffers']}), psycopg {m['psycopg']}, "
        + ", ".join(f"{k} {v}" for k, v in doc["software"].items()),
        f"data: {d['members']:,} members, {d['purchases']:,} purchases by {d['purchasers']:,} members,"
        f" {d['first_purchase']} .. {d['last_purchase']}; {d['fully_returned']:,} fully and"
        f" {d['partly_returned']:,} partly returned; loyalty_purchase (all scales) {d['purchase_table_size']}",
        f"set-up: {doc['setup']}",
        "",
        "phase                                      seconds  parts (s)",
    ]
    for phase in doc["member_refreshes"]:
        lines.append(
            f"member_analytics_refresh, {phase['as_of'][:10]:<17}{phase['seconds']:>8.2f}  {parts_text(phase['parts'])}"
            f"; {phase['segment_changes']:,} segment changes"
        )
    c = doc["cohorts"]
    lines.append(f"cohort_matrix, {c['cohorts']} cohorts x {COHORT_MONTHS} months   {c['seconds']:>8.2f}")
    clv = doc["clv"]
    lines.append(
        f"clv_refresh (ours), {clv['written']:,} written    {clv['seconds']:>8.2f}  {parts_text(clv['parts'])}"
    )
    for name in ("ours", "lifetimes"):
        f = fit[name]
        lines.append(
            f"fits, {name + ', same arrays':<34}{f['median_s']:>8.2f}  median of {fit['rounds']}; BG/NBD"
            f" {f['bgnbd_s']}, Gamma-Gamma {f['gamma_gamma_s']}"
        )
    lines.append(
        f"analytics_refresh (whole), {whole['as_of'][:10]}   {whole['seconds']:>8.2f}  "
        + ", ".join(f"step {k} {v:.2f}" for k, v in whole["steps"].items())
        + f"; {parts_text(whole['parts'])}"
    )
    lines += [
        "",
        f"whole refresh < {GOAL_SECONDS} s: {met(whole['seconds'] < GOAL_SECONDS)} ({whole['seconds']:.1f} s)",
        f"fit: ours {fit['ours']['median_s']:.2f} s, lifetimes {fit['lifetimes']['median_s']:.2f} s (medians),"
        f" ratio (lifetimes / ours) {fit['ratio']}; fit no slower than the reference:"
        f" {met(fit['ours']['median_s'] <= fit['lifetimes']['median_s'])}",
        "parameters     " + "  ".join(f"{k:>10}" for k in ("r", "alpha", "a", "b", "p", "q", "gamma")),
        *(
            f"  {name:<13}"
            + "  ".join(f"{v:>10.6g}" for v in [*fit[name]["bgnbd"].values(), *fit[name]["gamma_gamma"].values()])
            for name in ("ours", "lifetimes")
        ),
        f"max relative difference of the parameters: {fit['max_relative_difference']:.1e}; BG/NBD log-likelihood:"
        f" ours {fit['ours']['bgnbd_log_likelihood']:.3f}, lifetimes {fit['lifetimes']['bgnbd_log_likelihood']:.3f}",
        f"peak RSS: {whole['peak_rss_mb']} MB during the whole refresh, {doc['peak_rss_mb']} MB for the run",
    ]
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    ensure_database(args.database_url, recreate=args.recreate, mark=DATABASE_MARK)
    setup_django(args.database_url)
    program, built = ensure_program(args.database_url, args.scale, args.seed)
    reset_analytics(args.database_url, program)
    doc: dict[str, Any] = {
        "scale": args.scale,
        "setup": f"generated in {built:.0f} s" if built is not None else "reused",
        "data": data_facts(args.database_url, program),
        "load_before": [round(v, 2) for v in os.getloadavg()],
    }
    doc["member_refreshes"] = measure_member_refreshes(program)
    doc["cohorts"] = measure_cohorts(program)
    doc["clv"], data = measure_clv(program)
    doc["fit"] = compare_fits(data, args.fit_rounds)
    doc["whole_refresh"] = measure_whole_refresh(program)
    doc["load_after"] = [round(v, 2) for v in os.getloadavg()]
    doc["peak_rss_mb"] = maxrss_mb()
    doc["machine"] = {**machine_facts(args.database_url), "platform": platform.machine()}
    doc["software"] = software_facts()
    if args.json:
        print(json.dumps(doc, indent=2, default=str))
    else:
        print(report(doc))
    return 0


if __name__ == "__main__":
    sys.exit(main())
