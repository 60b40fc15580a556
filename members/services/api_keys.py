"""API keys of the tills: created (the plain key shown once), authenticated (cached), renamed, revoked."""

import hashlib
import secrets
from typing import Any

from django.conf import settings
from django.core.cache import cache
from django.db import transaction
from django.utils import timezone

from members.models import ApiKey, Program

API_KEY_PREFIX = "lk_"


def _api_key_hash(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def api_key_create(*, program: Program, name: str, store: str = "", created_by: Any = None) -> tuple[ApiKey, str]:
    """Creates a key and returns it with its plain text, which is never stored."""
    prefix = secrets.token_hex(4)
    plain = f"{API_KEY_PREFIX}{prefix}_{secrets.token_urlsafe(32)}"
    api_key = ApiKey.objects.create(
        program=program, name=name, store=store, prefix=prefix, key_hash=_api_key_hash(plain), created_by=created_by
    )
    return api_key, plain


def _api_key_cache_key(key_hash: str) -> str:
    return f"api-key:{key_hash}"


def api_key_authenticate(plain: str) -> ApiKey | None:
    """The active key matching `plain` (with its program), or None. Compared in constant time.

    A key found is kept in the cache for API_KEY_CACHE_SECONDS under its hash, so a busy till
    does not read it on every request. `api_key_revoke` drops it from the cache: with a shared
    cache (Redis) a revoked key is refused at once; with a per-process cache, other processes
    refuse it within API_KEY_CACHE_SECONDS. Its program comes from the cache too; `program_settings_save`
    drops the program's keys from it, so a deactivation or a setting change reaches the tills the same way.
    """
    parts = plain.removeprefix(API_KEY_PREFIX).split("_", 1)
    if not plain.startswith(API_KEY_PREFIX) or len(parts) != 2:
        return None
    key_hash = _api_key_hash(plain)
    cache_key = _api_key_cache_key(key_hash)
    api_key: ApiKey | None = cache.get(cache_key) if settings.API_KEY_CACHE_SECONDS else None
    cached = api_key is not None
    if api_key is None:  # not cached
        api_key = ApiKey.objects.select_related("program").filter(prefix=parts[0], revoked_at__isnull=True).first()
        if api_key is None or not secrets.compare_digest(api_key.key_hash, key_hash):
            return None
    now = timezone.now()
    # Touch at most once a minute: a busy till should not write on every request.
    touched = api_key.last_used_at is None or (now - api_key.last_used_at).total_seconds() > 60
    if touched:
        ApiKey.objects.filter(pk=api_key.pk).update(last_used_at=now)
        api_key.last_used_at = now
    if settings.API_KEY_CACHE_SECONDS and (touched or not cached):
        cache.set(cache_key, api_key, settings.API_KEY_CACHE_SECONDS)
    return api_key


def api_key_revoke(*, api_key: ApiKey) -> ApiKey:
    if api_key.revoked_at is None:
        api_key.revoked_at = timezone.now()
        api_key.save(update_fields=["revoked_at"])
    api_keys_uncache([api_key.key_hash])
    return api_key


def api_key_update(*, api_key: ApiKey, fields: list[str]) -> ApiKey:
    """Saves a key's changed name or store; a new store binds the till at once (the cached key is dropped)."""
    api_key.save(update_fields=fields)
    api_keys_uncache([api_key.key_hash])
    return api_key


def api_keys_uncache(key_hashes: list[str]) -> None:
    """Drops keys from the authentication cache, so the next request reads them (and their program) again.
    Now, and again once the change is committed: a request that read a key just before could have
    cached it again in between."""
    cache_keys = [_api_key_cache_key(key_hash) for key_hash in key_hashes]
    if not cache_keys:
        return
    cache.delete_many(cache_keys)
    transaction.on_commit(lambda: cache.delete_many(cache_keys))
