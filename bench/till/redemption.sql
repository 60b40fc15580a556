-- Ceiling of POST /api/pos/v1/members/{id}/redemptions/: lock the account, spend 100 points from one lot (entry,
-- allocation, lot, balances), issue the voucher, two events (bench/till.py). Members funded at set-up.
\set member random(:funded_lo, :funded_hi)
\set n :n + 1
BEGIN;
SELECT available FROM loyalty_account WHERE member_id = :member FOR UPDATE \gset
SELECT id AS lot FROM loyalty_lot
 WHERE member_id = :member AND remaining >= 100 AND NOT pending ORDER BY expires_at NULLS LAST, id LIMIT 1 \gset
INSERT INTO loyalty_entry (program_id, member_id, kind, amount, uncovered, key, occurred_at, created_at, actor_id,
                           reason, counterpart_id, details)
VALUES (:program, :member, 'redeem', -100, 0, 'pgb:' || :run::text || '-' || :client_id::text || '-' || :n::text,
        now(), now(), NULL, '', NULL, jsonb_build_object('reward', :reward::bigint))
RETURNING id AS entry \gset
INSERT INTO loyalty_allocation (member_id, entry_id, lot_id, amount, created_at) VALUES (:member, :entry, :lot, 100, now());
UPDATE loyalty_lot SET remaining = remaining - 100 WHERE id = :lot;
UPDATE loyalty_account SET available = available - 100, redeemed = redeemed + 100, updated_at = now()
 WHERE member_id = :member;
INSERT INTO rewards_voucher (program_id, member_id, reward_id, code, kind, value, status, issued_at, expires_at,
                             points_cost, redemption_entry_id, redeemed_reference, campaign, scope_skus,
                             scope_categories)
VALUES (:program, :member, :reward, upper(substr(md5(random()::text), 1, 12)), 'fixed_discount', 5, 'issued', now(),
        now() + interval '30 days', 100, :entry, '', '', '[]', '[]')
RETURNING id AS voucher \gset
INSERT INTO members_outboxevent (event_id, program_id, member_id, type, version, data, occurred_at, created_at)
VALUES ('evt_' || md5(random()::text), :program, :member, 'reward.redeemed', 1,
        jsonb_build_object('reward_id', :reward::bigint, 'points', 100, 'voucher_id', :voucher::bigint), now(), now()),
       ('evt_' || md5(random()::text), :program, :member, 'voucher.issued', 1,
        jsonb_build_object('voucher_id', :voucher::bigint, 'value', '5.00'), now(), now());
COMMIT;
