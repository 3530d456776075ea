"""The module rules of docs/architecture.md hold, and the checks that guard them can fail."""

from __future__ import annotations

import ast
import os
import shutil
import subprocess
from pathlib import Path

import pytest
from django.apps import apps
from django.conf import settings
from django.contrib.auth import get_user_model
from django.db import models
from django.test.utils import isolate_apps

ROOT = Path(__file__).resolve().parent.parent
MODULES = ["config", *settings.SHOP_MODULES]
LINT_IMPORTS = shutil.which("lint-imports", path=str(ROOT / ".venv" / "bin")) or shutil.which("lint-imports")


def cross_module_relations(model_classes) -> list[str]:
    """Relations from one shop module to another, the user model excepted."""
    user_model = settings.AUTH_USER_MODEL.lower()
    found = []
    for model in model_classes:
        own = model._meta.app_label
        for field in model._meta.get_fields(include_hidden=True):
            if not field.is_relation or field.auto_created or field.related_model is None:
                continue
            target = field.related_model._meta
            if target.label_lower == user_model:
                continue
            if target.app_label in settings.SHOP_MODULES and target.app_label != own:
                found.append(f"{model._meta.label}.{field.name} -> {target.label}")
    return found


def test_no_foreign_key_crosses_a_module_boundary():
    shop_models = [m for m in apps.get_models() if m._meta.app_label in settings.SHOP_MODULES]
    assert shop_models, "the check must look at something"
    assert cross_module_relations(shop_models) == []


@isolate_apps("catalog", "orders")
def test_the_foreign_key_check_catches_a_crossing():
    class Product(models.Model):
        class Meta:
            app_label = "catalog"

    class OrderLine(models.Model):
        product = models.ForeignKey(Product, on_delete=models.PROTECT)
        customer = models.ForeignKey(get_user_model(), on_delete=models.PROTECT)

        class Meta:
            app_label = "orders"

    assert cross_module_relations([OrderLine]) == ["orders.OrderLine.product -> catalog.Product"]


def test_every_module_has_a_public_face():
    for module in settings.SHOP_MODULES[1:]:
        assert (ROOT / module / "services.py").is_file(), module
        assert (ROOT / module / "events.py").is_file(), module


def _lint_imports(cwd: Path) -> subprocess.CompletedProcess:
    assert LINT_IMPORTS, "lint-imports is installed with the dev requirements"
    return subprocess.run(
        [LINT_IMPORTS, "--no-cache"],
        cwd=cwd,
        env={**os.environ, "COLUMNS": "250"},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_import_contracts_are_kept():
    result = _lint_imports(ROOT)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "0 broken" in result.stdout


@pytest.fixture
def tree_copy(tmp_path: Path) -> Path:
    for module in MODULES:
        shutil.copytree(ROOT / module, tmp_path / module, ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(ROOT / "pyproject.toml", tmp_path / "pyproject.toml")
    return tmp_path


@pytest.mark.parametrize(
    ("module", "offending_import", "broken_contract"),
    [
        ("catalog", "from accounts.models import User", "Other modules import only accounts.services"),
        ("orders", "from catalog import models", "Other modules import only catalog.services"),
        ("shop", "from kernel.models import OutboxEvent", "kernel's public parts"),
        ("accounts", "from orders import services", "Modules are layered"),
        ("catalog", "from payments import services", "Modules are layered"),
    ],
)
def test_import_contracts_catch_a_violation(tree_copy, module, offending_import, broken_contract):
    (tree_copy / module / "offender.py").write_text(offending_import + "\n")
    result = _lint_imports(tree_copy)
    assert result.returncode != 0
    broken = [line for line in result.stdout.splitlines() if "BROKEN" in line]
    assert any(broken_contract in line for line in broken), result.stdout


def _imports_catalog_services(node: ast.AST) -> bool:
    if isinstance(node, ast.Import):
        return any(alias.name.startswith("catalog.services") for alias in node.names)
    if isinstance(node, ast.ImportFrom) and node.level == 0:
        if node.module == "catalog":
            return any(alias.name == "services" for alias in node.names)
        return (node.module or "").startswith("catalog.services")
    return False


def test_catalogs_own_modules_never_import_its_public_face():
    """catalog.services only gathers catalog's private modules: none of them imports it back (no import circle)."""
    face = ROOT / "catalog" / "services.py"
    offenders = sorted(
        str(path.relative_to(ROOT))
        for path in (ROOT / "catalog").rglob("*.py")
        if path != face and any(_imports_catalog_services(n) for n in ast.walk(ast.parse(path.read_text())))
    )
    assert offenders == []
