"""``prepaid user add|passwd|remove|list``: logins in the store, hashed, audited; bad input named."""

from __future__ import annotations

import json

import pytest
import sqlalchemy as sa

from b2bua.node.cli import main
from webhook.portal.auth import verify_password


@pytest.fixture
def conf(tmp_path):
    """The example config with its store in tmp_path, and a password file."""
    text = open("conf/prepaid.toml", encoding="utf-8").read()
    text = text.replace('url = "sqlite:///../var/prepaid.db"', f'url = "sqlite:///{tmp_path}/p.db"')
    (tmp_path / "prepaid.toml").write_text(text)
    (tmp_path / "pw").write_text("correct horse battery\n")
    (tmp_path / "pw2").write_text("another long one\n")
    return tmp_path


def rows(tmp_path, sql: str):
    engine = sa.create_engine(f"sqlite:///{tmp_path}/p.db")
    try:
        with engine.connect() as conn:
            return conn.execute(sa.text(sql)).all()
    finally:
        engine.dispose()


def prepaid(conf, *args) -> int:
    return main([*args, "--config", str(conf / "prepaid.toml")])


def test_add_list_passwd_remove_with_an_audit_row_each(conf, capsys):
    """A provider added with a password file is listed (JSON, no hash), its hash verifies the password
    (scrypt, never the password itself), passwd replaces it, remove deletes it; four audit rows."""
    assert prepaid(conf, "user", "add", "anna", "--role", "provider", "--profiles", "demo", "--language", "en",
                   "--password-file", str(conf / "pw")) == 0
    capsys.readouterr()
    assert prepaid(conf, "user", "list", "--json") == 0
    listed = json.loads(capsys.readouterr().out)
    assert [(u["name"], u["role"], u["profiles"], u["language"]) for u in listed] == [("anna", "provider", ["demo"], "en")]
    assert "hash" not in json.dumps(listed)
    (stored,) = rows(conf, "select password_hash from portal_users")[0]
    assert stored.startswith("scrypt$") and "correct horse" not in stored
    assert verify_password("correct horse battery", stored) and not verify_password("wrong", stored)
    assert prepaid(conf, "user", "passwd", "anna", "--password-file", str(conf / "pw2")) == 0
    (stored,) = rows(conf, "select password_hash from portal_users")[0]
    assert verify_password("another long one", stored)
    assert prepaid(conf, "user", "remove", "anna") == 0
    assert rows(conf, "select count(*) from portal_users")[0][0] == 0
    actions = [r[0] for r in rows(conf, "select action from audit where subject = 'anna' order by id")]
    assert actions == ["portal_user_add", "portal_user_passwd", "portal_user_remove"]
    assert all("correct horse" not in r[0] for r in rows(conf, "select detail || before || after from audit"))


def test_a_profile_not_in_the_config_is_refused_by_name(conf, capsys):
    """--profiles naming a profile the config lacks: exit 2, the name and the profiles there are; no user."""
    assert prepaid(conf, "user", "add", "bob", "--role", "provider", "--profiles", "demo,nonesuch",
                   "--password-file", str(conf / "pw")) == 2
    err = capsys.readouterr().err
    assert "'nonesuch'" in err and "demo" in err
    assert prepaid(conf, "user", "list", "--json") == 0
    assert json.loads(capsys.readouterr().out) == []


def test_the_password_is_asked_twice_without_a_file(conf, capsys, monkeypatch):
    """Without --password-file: two prompts; different answers refuse, the same add the user."""
    answers = iter(["long enough one", "long enough two", "long enough one", "long enough one"])
    monkeypatch.setattr("getpass.getpass", lambda prompt="": next(answers))
    assert prepaid(conf, "user", "add", "olga", "--role", "operator") == 2
    assert "differ" in capsys.readouterr().err
    assert prepaid(conf, "user", "add", "olga", "--role", "operator") == 0


def test_a_second_user_of_one_name_and_an_unknown_user_are_errors(conf, capsys):
    """add of a taken name: exit 2; passwd and remove of a missing name: exit 1 with the name."""
    assert prepaid(conf, "user", "add", "olga", "--role", "operator", "--password-file", str(conf / "pw")) == 0
    assert prepaid(conf, "user", "add", "olga", "--role", "operator", "--password-file", str(conf / "pw")) == 2
    assert prepaid(conf, "user", "remove", "nobody") == 1
    assert "'nobody'" in capsys.readouterr().err
