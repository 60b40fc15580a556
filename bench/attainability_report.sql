-- The program attainability report (rewards.attainability.program_report, no what-if) as one query.
-- bench/attainability.py runs it through Django's connection with %(program)s and %(now)s bound, and checks
-- that its numbers equal the report's. One row: the summary and, as JSON, the six bucket counts per reward.
--
-- The definitions (loyalty/attainability.py, rewards/attainability.py):
--   earned   net points of the member's `earn` and `reverse` entries in (now - window days, now], at least 0;
--   days     observed days: least(window, greatest(whole days since enrolment, 30));
--   the time to close a gap G is ceil(G * days / earned) days: 0 when G <= 0, never when earned = 0.
-- 'Never' is float8 'Infinity', which sorts after every number, so percentile_disc picks the member that
-- NumPy's percentile(method="inverted_cdf") picks (the value at row ceil(q * n)), and the report's None.
--
-- Per reward, no members x rewards join: a member can reach the rewards whose cost is at most
-- available (now), available + floor(30 * earned / days) (within 30 days) or + floor(365 * earned / days)
-- (within a year); width_bucket over the sorted costs turns each into the number of rewards it reaches,
-- and the rewards are counted from a histogram of those numbers by tier rank.
WITH program AS (
    SELECT id, attainability_window_days AS window_days,
           %(now)s::timestamptz - attainability_window_days * interval '24 hours' AS window_start
    FROM members_program
    WHERE id = %(program)s
),
rewards AS (  -- on offer at `now`, cheapest first; `pos` is the place in that order
    SELECT r.id, r.name, r.points_cost AS cost, t.rank AS min_rank,
           row_number() OVER (ORDER BY r.points_cost, r.id) AS pos
    FROM program p
    JOIN rewards_reward r ON r.program_id = p.id
    LEFT JOIN loyalty_tier t ON t.id = r.min_tier_id
    WHERE r.is_active
      AND (r.stock IS NULL OR r.stock > 0)  -- sold-out rewards are left out of the report
      AND (r.active_from IS NULL OR r.active_from <= %(now)s)
      AND (r.active_until IS NULL OR r.active_until > %(now)s)
),
costs AS (
    SELECT coalesce(array_agg(cost::bigint ORDER BY pos), '{}') AS sorted FROM rewards
),
earned AS (
    SELECT e.member_id, sum(e.amount) AS points
    FROM program p
    JOIN loyalty_entry e ON e.program_id = p.id
    WHERE e.kind IN ('earn', 'reverse') AND e.occurred_at > p.window_start AND e.occurred_at <= %(now)s
    GROUP BY e.member_id
),
members AS (  -- the active members: available points, tier rank (-1: none), observed days, net earned
    SELECT m.id,
           coalesce(a.available, 0) AS available,
           coalesce(t.rank, -1) AS rank,
           least(p.window_days, greatest(floor(extract(epoch FROM %(now)s::timestamptz - m.enrolled_at) / 86400), 30))
               ::bigint AS days,
           greatest(coalesce(e.points, 0), 0)::bigint AS earned
    FROM program p
    JOIN members_member m ON m.program_id = p.id AND m.status = 'active'
    LEFT JOIN loyalty_account a ON a.member_id = m.id
    LEFT JOIN loyalty_tier t ON t.id = a.tier_id
    LEFT JOIN earned e ON e.member_id = m.id
),
cheapest AS (  -- the cheapest reward open to each tier rank present (none: no row)
    SELECT ranks.rank, min(r.cost) AS cost
    FROM (SELECT DISTINCT rank FROM members) ranks
    JOIN rewards r ON r.min_rank IS NULL OR ranks.rank >= r.min_rank
    GROUP BY ranks.rank
),
standing AS (
    SELECT m.*, c.cost AS cheapest,
           CASE WHEN c.cost IS NULL THEN 'Infinity'::float8
                WHEN m.available >= c.cost THEN 0
                WHEN m.earned = 0 THEN 'Infinity'::float8
                ELSE ((c.cost - m.available) * m.days + m.earned - 1) / m.earned  -- ceil, in integers
           END AS days_to_first,
           width_bucket(m.available, s.sorted) AS now_reach,
           width_bucket(m.available + 30 * m.earned / m.days, s.sorted) AS month_reach,
           width_bucket(m.available + 365 * m.earned / m.days, s.sorted) AS year_reach
    FROM members m
    CROSS JOIN costs s
    LEFT JOIN cheapest c ON c.rank = m.rank
),
summary AS (
    SELECT count(*) AS active_members,
           count(*) FILTER (WHERE available >= cheapest) AS redeemable_now,
           count(*) FILTER (WHERE available < cheapest AND 5 * available >= 4 * cheapest) AS within_20_percent,
           percentile_disc(0.5) WITHIN GROUP (ORDER BY days_to_first) AS median,
           percentile_disc(0.75) WITHIN GROUP (ORDER BY days_to_first) AS p75,
           count(*) FILTER (WHERE days_to_first = 'Infinity') AS never
    FROM standing
),
histogram AS (
    SELECT rank, now_reach, month_reach, year_reach, earned = 0 AS stalled, count(*) AS members
    FROM standing
    GROUP BY 1, 2, 3, 4, 5
),
per_reward AS (
    SELECT r.id, r.name, r.cost, r.pos,
           coalesce(sum(h.members) FILTER (WHERE o.open AND h.now_reach >= r.pos), 0) AS now,
           coalesce(sum(h.members) FILTER (WHERE o.open AND h.now_reach < r.pos AND h.month_reach >= r.pos), 0)
               AS days_1_30,
           coalesce(sum(h.members) FILTER (WHERE o.open AND h.month_reach < r.pos AND h.year_reach >= r.pos), 0)
               AS days_31_365,
           coalesce(sum(h.members) FILTER (WHERE o.open AND h.year_reach < r.pos AND NOT h.stalled), 0)
               AS over_a_year,
           coalesce(sum(h.members) FILTER (WHERE o.open AND h.now_reach < r.pos AND h.stalled), 0) AS never,
           coalesce(sum(h.members) FILTER (WHERE NOT o.open), 0) AS tier_locked
    FROM rewards r
    CROSS JOIN histogram h
    CROSS JOIN LATERAL (SELECT r.min_rank IS NULL OR h.rank >= r.min_rank AS open) o
    GROUP BY r.id, r.name, r.cost, r.pos
)
SELECT s.active_members, s.redeemable_now, s.within_20_percent, s.median, s.p75, s.never,
       (SELECT coalesce(json_agg(json_build_object(
                   'id', id, 'name', name, 'points_cost', cost, 'now', now, 'days_1_30', days_1_30,
                   'days_31_365', days_31_365, 'over_a_year', over_a_year, 'never', never,
                   'tier_locked', tier_locked) ORDER BY pos), '[]')
        FROM per_reward) AS rewards
FROM summary s
