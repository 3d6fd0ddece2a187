"""SIGHUP reload: a bad file is reported and the running config stays; a good one takes over."""

from __future__ import annotations

import shutil

from twisted.logger import globalLogPublisher

from b2bua.config import load_config
from b2bua.reload import ConfigHolder


def test_reload_keeps_running_config_when_new_file_is_bad(tmp_path):
    """A reload of a file with an error logs file:key: reason and keeps the old tariff in force."""
    path = tmp_path / "prepaid.toml"
    shutil.copy("conf/prepaid.toml", path)
    holder = ConfigHolder(load_config(str(path)))
    seen = []
    holder.listen(lambda old, new: seen.append((old, new)))
    logged = []
    globalLogPublisher.addObserver(logged.append)
    try:
        path.write_text(path.read_text().replace('"1.99"', '"one"'))
        assert holder.reload() is False
    finally:
        globalLogPublisher.removeObserver(logged.append)
    assert str(holder.current.profiles["demo"].billing.landline_per_minute) == "1.99"
    assert seen == []
    texts = [e.get("problem", "") for e in logged]
    assert f"{path}:profiles.demo.landline_per_minute: not a decimal number: 'one'" in texts


def test_reload_applies_good_file_and_tells_listeners(tmp_path):
    """An edited tariff is in force after the reload, and listeners get (old, new)."""
    path = tmp_path / "prepaid.toml"
    shutil.copy("conf/prepaid.toml", path)
    holder = ConfigHolder(load_config(str(path)))
    seen = []
    holder.listen(lambda old, new: seen.append((old.profiles["demo"].billing.landline_per_minute,
                                                new.profiles["demo"].billing.landline_per_minute)))
    path.write_text(path.read_text().replace('"1.99"', '"2.09"'))
    assert holder.reload() is True
    assert str(holder.current.profiles["demo"].billing.landline_per_minute) == "2.09"
    assert [(str(a), str(b)) for a, b in seen] == [("1.99", "2.09")]
