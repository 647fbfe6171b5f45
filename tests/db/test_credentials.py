"""Owners' provider credentials in the app database, on each backend: stored encrypted (the
key never in the table), listed without keys, replaced, deleted, rotated to a new key, bound
to their row, refused clearly without a key or with the wrong one; and checked before
anything is stored."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest
from pydantic import SecretStr

from crewchief.config import ProviderConfig, Settings, load_settings
from crewchief.db.credentials import new_key
from crewchief.db.migrate import app_store
from crewchief.db.writer import Writer
from crewchief.errors import ConfigError, CredentialsUnavailable, InvalidRequest
from crewchief.runtime import credentials as book_module
from crewchief.runtime.credentials import CredentialBook

SECRET = "sk-test-0123456789abcdefghijKLMNOPQRSTuvwxyz"


def _with(settings: Settings, keys: list[str], **more: Any) -> Settings:
    return settings.model_copy(update={"secret_keys": [SecretStr(k) for k in keys], **more})


@pytest.fixture
async def store(backend_settings: Settings) -> AsyncIterator[Writer]:
    async with app_store(backend_settings.resolved_database_url) as opened:
        yield opened


async def _raw(store: Writer) -> list[tuple]:
    return await store.read(
        lambda tx: tx.execute(
            "SELECT owner, provider, base_url, ciphertext, fingerprint FROM credentials"
            " ORDER BY owner, provider"
        ).fetchall()
    )


async def test_a_credential_is_stored_encrypted_listed_without_its_key_and_deleted(
    backend_settings: Settings, store: Writer
) -> None:
    book = CredentialBook(_with(backend_settings, [new_key()]), store)
    row = await book.put("alice", "openai", SECRET, "https://llm.example.com/v1/")
    assert (row.provider, row.base_url, row.fingerprint) == (
        "openai",
        "https://llm.example.com/v1",
        "…wxyz",
    )
    ((owner, provider, url, ciphertext, shown),) = await _raw(store)
    assert (owner, provider, url, shown) == (
        "alice",
        "openai",
        "https://llm.example.com/v1",
        "…wxyz",
    )
    assert SECRET not in ciphertext and SECRET[8:24] not in ciphertext
    creds = await book.for_owner("alice")
    assert creds.get("openai").api_key.get_secret_value() == SECRET
    assert SECRET not in repr(creds) and SECRET not in str(creds.get("openai"))
    assert not await book.for_owner("bob")  # another owner has none
    # Replacing keeps one row, with the new key; an owner's list never holds a key.
    await book.put("alice", "openai", SECRET[::-1])
    await book.put("alice", "google", "AIza" + SECRET[4:])
    listed = await book.list("alice")
    assert [(r.provider, r.base_url) for r in listed] == [("google", None), ("openai", None)]
    assert (await book.for_owner("alice")).get("openai").api_key.get_secret_value() == SECRET[::-1]
    assert await book.delete("alice", "openai") == 1
    assert await book.delete("alice", "openai") == 0
    assert [r.provider for r in await book.list("alice")] == ["google"]
    assert (await book.for_owner("alice")).get("openai") is None


async def test_rotation_moves_every_credential_to_the_first_key(
    backend_settings: Settings, store: Writer
) -> None:
    old, new = new_key(), new_key()
    first = CredentialBook(_with(backend_settings, [old]), store)
    await first.put("alice", "openai", SECRET)
    await first.put(None, "google", "AIza-" + SECRET)  # the keyless owner's ("")
    before = {r[:2]: r[3] for r in await _raw(store)}
    both = CredentialBook(_with(backend_settings, [new, old]), store)
    assert await both.rotate() == 2
    after = {r[:2]: r[3] for r in await _raw(store)}
    assert after.keys() == before.keys() and all(after[k] != before[k] for k in after)
    # The old key can go: the new one alone decrypts everything; the old alone nothing.
    only_new = CredentialBook(_with(backend_settings, [new]), store)
    assert (
        (await only_new.for_owner(None))
        .get("google")
        .api_key.get_secret_value()
        .startswith("AIza-")
    )
    assert (await only_new.for_owner("alice")).get("openai").fingerprint == "…wxyz"
    with pytest.raises(CredentialsUnavailable, match="cannot be decrypted") as caught:
        await CredentialBook(_with(backend_settings, [old]), store).for_owner("alice")
    assert SECRET not in str(caught.value)
    # A rotation with keys that miss one credential changes nothing.
    with pytest.raises(CredentialsUnavailable):
        await CredentialBook(_with(backend_settings, [old]), store).rotate()
    assert {r[:2]: r[3] for r in await _raw(store)} == after


async def test_without_a_key_credentials_cannot_be_stored_or_used(
    backend_settings: Settings, store: Writer
) -> None:
    keyless = CredentialBook(backend_settings, store)
    with pytest.raises(CredentialsUnavailable, match="crewchief credentials keygen"):
        await keyless.put("alice", "openai", SECRET)
    assert await _raw(store) == []
    assert not await keyless.for_owner("alice")  # nothing stored: nothing to decrypt
    await CredentialBook(_with(backend_settings, [new_key()]), store).put("alice", "openai", SECRET)
    keyless = CredentialBook(backend_settings, store)  # a process without the key
    with pytest.raises(CredentialsUnavailable, match="CREWCHIEF_SECRET_KEYS"):
        await keyless.for_owner("alice")
    # Listing and deleting need no key: an owner can always remove theirs.
    assert [r.fingerprint for r in await keyless.list("alice")] == ["…wxyz"]
    assert await keyless.delete("alice") == 1


async def test_a_row_changed_by_hand_is_refused(backend_settings: Settings, store: Writer) -> None:
    book = CredentialBook(_with(backend_settings, [new_key()]), store)
    await book.put("alice", "openai", SECRET)
    await book.put("bob", "openai", "sk-bob-" + SECRET)

    def point_elsewhere(tx: Any) -> None:
        tx.execute(
            "UPDATE credentials SET base_url = 'https://evil.example.com' WHERE owner = 'alice'"
        )

    await store.run(point_elsewhere)
    fresh = CredentialBook(book.settings, store)
    with pytest.raises(CredentialsUnavailable, match="does not match its row"):
        await fresh.for_owner("alice")

    def steal(tx: Any) -> None:  # bob's ciphertext under carol's name
        tx.execute(
            "INSERT INTO credentials (owner, provider, base_url, ciphertext, fingerprint,"
            " created_at, updated_at) SELECT 'carol', provider, base_url, ciphertext,"
            " fingerprint, created_at, updated_at FROM credentials WHERE owner = 'bob'"
        )

    await store.run(steal)
    with pytest.raises(CredentialsUnavailable, match="does not match its row"):
        await fresh.for_owner("carol")


async def test_a_change_through_another_process_is_seen_within_the_cache_time(
    backend_settings: Settings, store: Writer, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings = _with(backend_settings, [new_key()])
    here, elsewhere = CredentialBook(settings, store), CredentialBook(settings, store)
    await here.put("alice", "openai", SECRET)
    assert (await here.for_owner("alice")).get("openai") is not None
    await elsewhere.delete("alice", "openai")
    assert (await here.for_owner("alice")).get("openai") is not None  # cached meanwhile
    monkeypatch.setattr(book_module, "CACHE_SECONDS", 0.0)
    assert (await here.for_owner("alice")).get("openai") is None


def _refusal(settings: Settings, provider: Any, key: Any, url: Any = None) -> InvalidRequest:
    with pytest.raises(InvalidRequest) as caught:
        book_module.check_credential(settings, provider, key, url)
    return caught.value


@pytest.mark.parametrize(
    ("provider", "key", "url", "path", "says"),
    [
        ("ollama", SECRET, None, "provider", "expected one of ['deepseek', 'google', 'openai',"),
        ("nope", SECRET, None, "provider", "unknown provider 'nope'"),
        ("openai", "", None, "api_key", "non-empty"),
        ("openai", SECRET + " tail", None, "api_key", "printable ASCII without spaces"),
        ("openai", SECRET + "\n", None, "api_key", "printable ASCII without spaces"),
        ("openai", "k" * 4097, None, "api_key", "at most 4096"),
        ("openai", SECRET, "ftp://files.example.com", "base_url", "http(s) URL"),
        ("openai", SECRET, "https://user:pw@llm.example.com", "base_url", "no user or password"),
        ("openai", SECRET, "https://llm.example.com/v1?key=1", "base_url", "no query string"),
        ("openai", SECRET, "http://127.0.0.1:8000/v1", "base_url", "loopback, private"),
        ("openai", SECRET, "http://[::ffff:10.0.0.1]/v1", "base_url", "loopback, private"),
        ("openai", SECRET, "http://169.254.169.254/latest", "base_url", "loopback, private"),
        ("openai", SECRET, "http://api.localhost/v1", "base_url", "loopback, private"),
        ("google", SECRET, "https://llm.example.com", "base_url", "only an OpenAI-compatible"),
    ],
)
def test_bad_fields_are_refused_naming_the_field_and_never_the_key(
    settings: Settings, provider: str, key: str, url: str | None, path: str, says: str
) -> None:
    providers = {
        "deepseek": ProviderConfig(type="openai", base_url="https://api.deepseek.com"),
        "mine": ProviderConfig(type="ollama"),
    }
    refused = _refusal(settings.model_copy(update={"providers": providers}), provider, key, url)
    assert refused.details[0]["path"] == path
    assert says in str(refused)
    assert SECRET not in str(refused)


def test_private_addresses_are_allowed_when_the_operator_says_so(settings: Settings) -> None:
    allowed = settings.model_copy(update={"credential_private_urls": True})
    name, key, url = book_module.check_credential(
        allowed, "openai", SECRET, "http://127.0.0.1:9/v1/"
    )
    assert (name, key.get_secret_value(), url) == ("openai", SECRET, "http://127.0.0.1:9/v1")


def test_secret_keys_come_from_the_environment_and_a_bad_one_names_the_setting() -> None:
    good = new_key()
    settings = load_settings(config_file=None, env={"CREWCHIEF_SECRET_KEYS": f" {good} ,"})
    assert [k.get_secret_value() for k in settings.secret_keys] == [good]
    assert good not in repr(settings) and good not in settings.model_dump_json()
    with pytest.raises(ConfigError, match=r"secret_keys \(CREWCHIEF_SECRET_KEYS\): key 2") as bad:
        load_settings(config_file=None, env={"CREWCHIEF_SECRET_KEYS": f"{good},hunter2-not-a-key"})
    assert "hunter2" not in str(bad.value) and "keygen" in str(bad.value)
