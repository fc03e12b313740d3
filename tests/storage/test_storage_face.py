"""storage's face is written out name by name (editors and type checkers follow it): it must
stay exactly the union of its modules' __all__, each name the object its module defines."""

from __future__ import annotations

import importlib
import pkgutil

import storage


def test_the_face_is_the_modules_all():
    modules = [importlib.import_module(f"storage.{m.name}") for m in pkgutil.iter_modules(storage.__path__)
               if not m.ispkg]
    exported = {name: module for module in modules for name in getattr(module, "__all__", ())}
    assert sorted(storage.__all__) == sorted(exported)
    assert {name: getattr(storage, name) for name in exported} == {
        name: getattr(module, name) for name, module in exported.items()}
