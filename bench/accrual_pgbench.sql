-- The hand-written ceiling of POST /api/pos/v1/purchases/, run by bench/accrual.py with pgbench.
--
-- One transaction per purchase, the same rows in the same tables as the purchase service
-- (so the same indexes, CHECK constraints and append-only triggers apply), no Python:
-- lock the member's account, insert the ledger entry and its lot, move the cached balances,
-- insert the purchase. The rows stay ledger-consistent (ledger_audit finds no mismatch).
-- Not written here, unlike the API: purchase lines, award rows, the idempotency record.
--
-- Variables, from pgbench -D: program, currency, lo and hi (the program's member ids, contiguous),
-- run (a tag that makes the external ids unique across runs), n (0; a per-client counter that
-- persists across the client's transactions), pending_days and expiry_days (the program's policy).
-- (No colon may precede a name inside a string literal: pgbench would take it for a variable.)
\set member random(:lo, :hi)
\set n :n + 1
\set cents random(2000, 300000)
\set points :cents / 1000 + random(0, 60)
BEGIN;
SELECT available AS acc_available, pending AS acc_pending, debt AS acc_debt
  FROM loyalty_account WHERE member_id = :member FOR UPDATE \gset
INSERT INTO loyalty_entry (program_id, member_id, kind, amount, uncovered, key, occurred_at, created_at,
                           actor_id, reason, counterpart_id, details)
VALUES (:program, :member, 'earn', :points, 0,
        'purchase' || ':' || 'PGB-' || :run::text || '-' || :client_id::text || '-' || :n::text,
        now(), now(), NULL, '', NULL,
        jsonb_build_object('purchase', 'PGB-' || :run::text || '-' || :client_id::text || '-' || :n::text,
                           'awards', jsonb_build_array(jsonb_build_object('rule', 'Base rate', 'rule_id', NULL,
                                                                          'points', :points::int))))
RETURNING id AS entry_id \gset
INSERT INTO loyalty_lot (program_id, member_id, entry_id, amount, remaining, pending, occurred_at, available_at,
                         expires_at, warned_at)
VALUES (:program, :member, :entry_id, :points, :points, :pending_days > 0, now(),
        now() + make_interval(days => :pending_days), now() + make_interval(days => :expiry_days), NULL);
UPDATE loyalty_account
   SET available = available + CASE WHEN :pending_days > 0 THEN 0 ELSE :points END,
       pending = pending + CASE WHEN :pending_days > 0 THEN :points ELSE 0 END,
       earned = earned + :points, purchases = purchases + 1, updated_at = now()
 WHERE member_id = :member;
INSERT INTO loyalty_purchase (program_id, member_id, external_id, store, channel, occurred_at, currency, total,
                              eligible_amount, points_awarded, points_reversed, returned_total, returned_eligible,
                              entry_id, awards, outcome, created_at)
VALUES (:program, :member, 'PGB-' || :run::text || '-' || :client_id::text || '-' || :n::text, 'PGBENCH', 'pos', now(),
        :currency, :cents::numeric / 100, :cents::numeric / 100, :points, 0, 0, 0, :entry_id,
        jsonb_build_array(jsonb_build_object('rule', 'Base rate', 'rule_id', NULL, 'points', :points::int)),
        jsonb_build_object('balances', jsonb_build_object('available', :acc_available::bigint,
                                                          'pending', :acc_pending::bigint + :points,
                                                          'debt', :acc_debt::bigint),
                           'tier', jsonb_build_object('before', NULL, 'after', NULL),
                           'pending_until', now() + make_interval(days => :pending_days)),
        now());
COMMIT;
