"""The module rules of docs/architecture.md hold, and the checks that guard them can fail."""

from __future__ import annotations

import ast
import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest
from django.apps import apps
from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Permission
from django.contrib.contenttypes.models import ContentType
from django.db import connections, models
from django.test.utils import isolate_apps

from kernel.db import ModuleRouter, db_for_module
from tests.conftest import statement_modules
from tests.factories import make_category, make_product

ROOT = Path(__file__).resolve().parent.parent
MODULES = ["config", *settings.SHOP_MODULES]
CHECKOUT_DETAILS = {"email": "guest@example.com", "saved_address": "new", "full_name": "Gus Guest",
                    "line1": "1 Market St", "postal_code": "10115", "city": "Berlin", "country": "DE",
                    "shipping_method": "standard"}  # fmt: skip
LINT_IMPORTS = shutil.which("lint-imports", path=str(ROOT / ".venv" / "bin")) or shutil.which("lint-imports")


def cross_module_relations(model_classes) -> list[str]:
    """Relations from one shop module to another, the user model (accounts') included."""
    found = []
    for model in model_classes:
        own = model._meta.app_label
        for field in model._meta.get_fields(include_hidden=True):
            if not field.is_relation or field.auto_created or field.related_model is None:
                continue
            target = field.related_model._meta
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

    assert cross_module_relations([OrderLine]) == [
        "orders.OrderLine.product -> catalog.Product",
        "orders.OrderLine.customer -> accounts.User",
    ]


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


# ---------------------------------------------------------------- databases: one module's tables per statement
@pytest.mark.filterwarnings("ignore:Overriding setting DATABASES")
def test_router_keeps_identity_and_djangos_auth_tables_together(settings):
    settings.DATABASES = {**settings.DATABASES, "accounts": settings.DATABASES["default"]}
    router = ModuleRouter()
    for label in ("accounts", "auth", "contenttypes", "admin", "sessions"):
        assert router.db_for_write(next(iter(apps.get_app_config(label).get_models()))) == "accounts", label
        assert router.allow_migrate("accounts", label) is True, label
        assert router.allow_migrate("default", label) is False, label
    assert router.allow_migrate("accounts", "kernel") is True, "every database carries its own outbox"
    assert router.db_for_read(Permission) == "accounts"
    assert router.allow_relation(Permission(), ContentType()) is True


@pytest.mark.modules
@pytest.mark.django_db
def test_the_query_check_catches_a_statement_joining_two_modules(module_queries):
    statement = "SELECT o.id FROM orders_order o JOIN catalog_product p ON p.id = o.id"
    with pytest.raises(AssertionError, match="catalog and orders"), connections[db_for_module("orders")].cursor() as c:
        c.execute(statement)
    assert module_queries.crossings, "recorded, so the test fails at teardown even if the error was swallowed"
    module_queries.crossings.clear()  # planted: this test must not fail for it
    assert statement_modules('SELECT * FROM "django_session" JOIN "accounts_user" ON true') == {"accounts"}
    assert statement_modules('SELECT * FROM "kernel_delivery", "orders_order"') == {"orders"}, "kernel: anyone's"


@pytest.mark.modules
@pytest.mark.django_db
def test_a_purchase_reaches_several_modules_and_no_statement_joins_two(
    client, module_queries, django_capture_on_commit_callbacks
):
    variants = [{"options": {"Colour": "Brass"}, "price": "80.00", "stock": 3}]
    variant = make_product("Brass Lamp", make_category("Lighting"), variants=variants).variants.get()
    client.post("/cart/add", {"variant": variant.pk, "quantity": "1"})
    assert client.post("/checkout/", CHECKOUT_DETAILS)["Location"] == "/checkout/review/"
    page = client.get("/checkout/review/").content.decode()
    token = re.search(r'name="token" value="([^"]+)"', page).group(1)
    with django_capture_on_commit_callbacks(execute=True):
        placed = client.post("/checkout/place/", {"token": token})
    assert placed["Location"].startswith("/payments/test-gateway/pay/")
    assert {"accounts", "catalog", "orders", "payments"} <= set(module_queries.statements)  # the cart: a session
    assert module_queries.crossings == []


# ---------------------------------------------------------------- no import circles, no second retry system


@pytest.mark.parametrize(
    ("lower", "upper"),
    [("kernel.bus", "kernel.tasks"), ("catalog.demo", "catalog.services")],
)
def test_no_import_circle_between(lower, upper):
    """Counting imports inside functions too: `upper` may import `lower`, never the other way round."""
    import grimp

    graph = grimp.build_graph(lower.split(".")[0], cache_dir=None)
    assert graph.find_shortest_chain(importer=upper, imported=lower) is not None, f"{upper} uses {lower}"
    assert graph.find_shortest_chain(importer=lower, imported=upper) is None, f"{lower} imports {upper} back"


def test_the_delivery_task_has_no_retries_of_its_own():
    """One retry mechanism: a failed delivery waits for the outbox sweep, with its back-off and attempt limit."""
    from kernel.tasks import run_handler

    assert run_handler.max_retries == 0
    assert not getattr(run_handler, "autoretry_for", ())
    assert run_handler.acks_late
    assert run_handler.reject_on_worker_lost, "a task whose worker dies goes back to the queue"


def test_the_readme_links_only_to_files_in_the_repository():
    """A clone has no ../shared: whatever the README links must be in the repository."""
    text = (ROOT / "README.md").read_text()
    targets = [t.split("#")[0] for t in re.findall(r"\]\(([^)\s]+)\)", text) if "://" not in t and t[0] != "#"]
    assert targets, "the README links to docs/architecture.md at least"
    missing = [t for t in targets if not (ROOT / t).resolve().is_relative_to(ROOT) or not (ROOT / t).exists()]
    assert missing == []


@pytest.mark.django_db
def test_every_model_change_has_its_migration():
    from django.core.management import call_command

    try:
        call_command("makemigrations", "--check", "--dry-run", verbosity=0)
    except SystemExit as exc:
        pytest.fail(f"a model changed without a migration (makemigrations --check exited {exc.code})")
