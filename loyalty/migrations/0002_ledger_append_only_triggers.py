"""PostgreSQL triggers that keep the ledger append-only, even for manual SQL.

- entries: no DELETE; amount, kind, member, program, key and time never change;
  `uncovered` (the debt part of a debit) may only go down as debt is paid.
- lots: no DELETE; amount, member, entry, dates never change; `remaining` may
  only go down; a lot may leave `pending` but never return to it.
- allocations: neither UPDATE nor DELETE.

TRUNCATE is not covered (it fires no row triggers); it needs table ownership,
which the application's database role should not have in production.
SQLite gets the CHECK constraints only.
"""

from django.db import migrations

FORWARD = """
CREATE OR REPLACE FUNCTION loyalty_refuse_change() RETURNS trigger AS $$
BEGIN
    RAISE EXCEPTION 'the points ledger is append-only: % on % refused', TG_OP, TG_TABLE_NAME
        USING ERRCODE = 'integrity_constraint_violation';
END;
$$ LANGUAGE plpgsql;

CREATE OR REPLACE FUNCTION loyalty_entry_guard() RETURNS trigger AS $$
BEGIN
    IF NEW.amount IS DISTINCT FROM OLD.amount OR NEW.kind IS DISTINCT FROM OLD.kind
       OR NEW.member_id IS DISTINCT FROM OLD.member_id OR NEW.program_id IS DISTINCT FROM OLD.program_id
       OR NEW.key IS DISTINCT FROM OLD.key OR NEW.occurred_at IS DISTINCT FROM OLD.occurred_at
       OR NEW.created_at IS DISTINCT FROM OLD.created_at OR NEW.uncovered > OLD.uncovered THEN
        RAISE EXCEPTION 'posted ledger entry % cannot be changed', OLD.id
            USING ERRCODE = 'integrity_constraint_violation';
    END IF;
    RETURN NEW;
END;
$$ LANGUAGE plpgsql;

CREATE OR REPLACE FUNCTION loyalty_lot_guard() RETURNS trigger AS $$
BEGIN
    IF NEW.amount IS DISTINCT FROM OLD.amount OR NEW.member_id IS DISTINCT FROM OLD.member_id
       OR NEW.entry_id IS DISTINCT FROM OLD.entry_id OR NEW.program_id IS DISTINCT FROM OLD.program_id
       OR NEW.occurred_at IS DISTINCT FROM OLD.occurred_at OR NEW.available_at IS DISTINCT FROM OLD.available_at
       OR NEW.expires_at IS DISTINCT FROM OLD.expires_at OR NEW.remaining > OLD.remaining
       OR (NEW.pending AND NOT OLD.pending) THEN
        RAISE EXCEPTION 'lot % cannot be changed that way', OLD.id
            USING ERRCODE = 'integrity_constraint_violation';
    END IF;
    RETURN NEW;
END;
$$ LANGUAGE plpgsql;

CREATE TRIGGER loyalty_entry_no_delete BEFORE DELETE ON loyalty_entry
    FOR EACH ROW EXECUTE FUNCTION loyalty_refuse_change();
CREATE TRIGGER loyalty_entry_guard BEFORE UPDATE ON loyalty_entry
    FOR EACH ROW EXECUTE FUNCTION loyalty_entry_guard();
CREATE TRIGGER loyalty_lot_no_delete BEFORE DELETE ON loyalty_lot
    FOR EACH ROW EXECUTE FUNCTION loyalty_refuse_change();
CREATE TRIGGER loyalty_lot_guard BEFORE UPDATE ON loyalty_lot
    FOR EACH ROW EXECUTE FUNCTION loyalty_lot_guard();
CREATE TRIGGER loyalty_allocation_frozen BEFORE UPDATE OR DELETE ON loyalty_allocation
    FOR EACH ROW EXECUTE FUNCTION loyalty_refuse_change();
"""

BACKWARD = """
DROP TRIGGER IF EXISTS loyalty_allocation_frozen ON loyalty_allocation;
DROP TRIGGER IF EXISTS loyalty_lot_guard ON loyalty_lot;
DROP TRIGGER IF EXISTS loyalty_lot_no_delete ON loyalty_lot;
DROP TRIGGER IF EXISTS loyalty_entry_guard ON loyalty_entry;
DROP TRIGGER IF EXISTS loyalty_entry_no_delete ON loyalty_entry;
DROP FUNCTION IF EXISTS loyalty_lot_guard();
DROP FUNCTION IF EXISTS loyalty_entry_guard();
DROP FUNCTION IF EXISTS loyalty_refuse_change();
"""


def forward(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(FORWARD, params=None)


def backward(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(BACKWARD, params=None)


class Migration(migrations.Migration):
    dependencies = [("loyalty", "0001_initial")]

    operations = [migrations.RunPython(forward, backward, elidable=False)]
