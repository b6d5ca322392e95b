"""The public surface named in `wahealth/__init__.py` exists and says what it exports."""

from __future__ import annotations

import importlib

import wahealth

PUBLIC = {
    "wahealth.app": {"Components", "Overrides", "create_app", "prepare_storage"},
    "wahealth.settings": {"Settings", "load_settings"},
    "wahealth.testing": {"DEMO", "demo_settings", "running_app", "RunningApp"},
    "wahealth.testing_server": {"serve_in_thread", "RunningServer"},
    "wahealth.upstream.graph": {"GraphClient"},
    "wahealth.upstream.emulator": {"create_emulator", "load_scenario"},
}


def test_every_public_name_is_importable() -> None:
    for module_name, names in PUBLIC.items():
        module = importlib.import_module(module_name)
        missing = {name for name in names if not hasattr(module, name)}
        assert not missing, f"{module_name} lacks {missing}"


def test_the_app_module_exports_exactly_its_public_names() -> None:
    import wahealth.app

    assert set(wahealth.app.__all__) == PUBLIC["wahealth.app"]


def test_the_package_docstring_names_every_public_module() -> None:
    assert wahealth.__doc__ is not None
    for module_name in PUBLIC:
        assert module_name.removeprefix("wahealth.").split(".")[0] in wahealth.__doc__
