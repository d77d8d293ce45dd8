"""Secrets at rest: AES-GCM under a key derived from the secret key, with key ids for rotation."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from partnerpay.kit.crypto import SecretBox, SecretBoxError
from partnerpay.settings import Settings

KEY = "k" * 40
OTHER = "o" * 40
IBAN = "DE89370400440532013000"


class TestEncrypt:
    def test_a_token_opens_to_the_same_object(self) -> None:
        box = SecretBox(KEY)
        data = {"iban": IBAN, "holder": "Jürgen Müller", "n": 3, "none": None}
        assert box.decrypt(box.encrypt(data)) == data

    def test_the_clear_value_is_nowhere_in_the_token(self) -> None:
        token = SecretBox(KEY).encrypt({"iban": IBAN})
        assert IBAN not in token and "3000" not in token

    def test_the_same_data_never_gives_the_same_token_twice(self) -> None:
        box = SecretBox(KEY)
        assert box.encrypt({"iban": IBAN}) != box.encrypt({"iban": IBAN})

    def test_a_token_names_its_version_and_key_but_not_the_key_itself(self) -> None:
        box = SecretBox(KEY)
        version, key_id, _ = box.encrypt({}).split(".")
        assert version == "pp1" and key_id == box.key_id and KEY not in key_id

    def test_an_empty_secret_key_is_refused(self) -> None:
        with pytest.raises(ValueError, match="non-empty"):
            SecretBox("")

    @given(st.dictionaries(st.text(max_size=20), st.text(max_size=40) | st.integers() | st.booleans(), max_size=8))
    def test_any_json_object_survives_a_round_trip(self, data: dict[str, object]) -> None:
        box = SecretBox(KEY)
        assert box.decrypt(box.encrypt(data)) == data


class TestDecrypt:
    def test_another_installations_key_cannot_open_a_token(self) -> None:
        token = SecretBox(KEY).encrypt({"iban": IBAN})
        with pytest.raises(SecretBoxError, match="does not have"):
            SecretBox(OTHER).decrypt(token)

    def test_a_tampered_token_is_refused(self) -> None:
        token = SecretBox(KEY).encrypt({"iban": IBAN})
        head, body = token.rsplit(".", 1)
        flipped = body[:-2] + ("A" if body[-2] != "A" else "B") + body[-1]
        with pytest.raises(SecretBoxError, match="altered"):
            SecretBox(KEY).decrypt(f"{head}.{flipped}")

    def test_a_token_relabelled_to_another_key_id_is_refused(self) -> None:
        box = SecretBox(KEY, retired=[OTHER])
        token = box.encrypt({"iban": IBAN})
        other_id = SecretBox(OTHER).key_id
        _, _, body = token.split(".")
        with pytest.raises(SecretBoxError):
            box.decrypt(f"pp1.{other_id}.{body}")

    @pytest.mark.parametrize("token", ["", "plain text", "pp1..", "pp2.abc.def", "pp1.abc", "pp1.{kid}.!!!"])
    def test_text_that_is_not_a_token_is_refused_without_echoing_it(self, token: str) -> None:
        box = SecretBox(KEY)
        with pytest.raises(SecretBoxError) as raised:
            box.decrypt(token.replace("{kid}", box.key_id))
        assert "plain text" not in str(raised.value)


class TestRotation:
    def test_a_retired_key_still_opens_old_tokens(self) -> None:
        old_token = SecretBox(OTHER).encrypt({"tin": "123456789"})
        assert SecretBox(KEY, retired=[OTHER]).decrypt(old_token) == {"tin": "123456789"}

    def test_rotate_reseals_an_old_token_under_the_current_key(self) -> None:
        box = SecretBox(KEY, retired=[OTHER])
        old_token = SecretBox(OTHER).encrypt({"tin": "123456789"})
        assert box.needs_rotation(old_token)
        new_token = box.rotate(old_token)
        assert not box.needs_rotation(new_token)
        assert SecretBox(KEY).decrypt(new_token) == {"tin": "123456789"}

    def test_new_tokens_always_use_the_current_key(self) -> None:
        box = SecretBox(KEY, retired=[OTHER])
        assert box.encrypt({}).split(".")[1] == SecretBox(KEY).key_id


class TestFingerprint:
    def test_the_same_data_gives_the_same_fingerprint_whatever_the_key_order(self) -> None:
        box = SecretBox(KEY)
        assert box.fingerprint({"a": 1, "iban": IBAN}) == box.fingerprint({"iban": IBAN, "a": 1})

    def test_a_fingerprint_depends_on_the_key_so_it_cannot_be_guessed_offline(self) -> None:
        assert SecretBox(KEY).fingerprint({"iban": IBAN}) != SecretBox(OTHER).fingerprint({"iban": IBAN})


class TestSettingsSecretBox:
    def test_the_settings_box_opens_tokens_of_retired_keys(self) -> None:
        settings = Settings(secret_key=KEY, retired_secret_keys=[OTHER])
        old_token = SecretBox(OTHER).encrypt({"x": 1})
        assert settings.secret_box().decrypt(old_token) == {"x": 1}

    def test_a_short_secret_key_is_refused(self) -> None:
        with pytest.raises(RuntimeError, match="at least 32"):
            Settings(secret_key="short").secret_box()
