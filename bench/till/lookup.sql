-- Ceiling of GET /api/pos/v1/members/lookup/?card=: the member and its account, read by card (bench/till.py).
-- Cards of the accrual benchmark's members are 9 and their index in 11 digits (bench/ledger.py).
\set i random(0, :count - 1)
SELECT m.id, m.external_id, m.card, m.email, m.phone, m.first_name, m.last_name, m.status, m.enrolled_at,
       a.available, a.pending, a.debt, a.earned, a.tier_id, t.name
  FROM members_member m JOIN loyalty_account a ON a.member_id = m.id LEFT JOIN loyalty_tier t ON t.id = a.tier_id
 WHERE m.program_id = :program AND m.card = '9' || lpad(:i::text, 11, '0');
