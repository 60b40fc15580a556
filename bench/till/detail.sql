-- Ceiling of GET /api/pos/v1/members/{id}/: the member and its account, read by id (bench/till.py).
\set member random(:lo, :hi)
SELECT m.id, m.external_id, m.card, m.email, m.phone, m.first_name, m.last_name, m.status, m.enrolled_at,
       a.available, a.pending, a.debt, a.earned, a.tier_id, t.name
  FROM members_member m JOIN loyalty_account a ON a.member_id = m.id LEFT JOIN loyalty_tier t ON t.id = a.tier_id
 WHERE m.program_id = :program AND m.id = :member;
