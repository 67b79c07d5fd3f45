"""The Alembic migrations and the models describe the same schema, on both backends."""
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

from lifecycle.core.db import make_engine, upgrade
from lifecycle.core.models import Base


def test_migrations_match_models(db_url):
    engine = make_engine(db_url)
    assert upgrade(engine) == "created"
    with engine.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn), Base.metadata)
    engine.dispose()
    assert diff == [], f"models and migrations differ: {diff}"


def test_one_head():
    """Parallel branches are merged, so `alembic upgrade head` has one meaning."""
    from alembic.script import ScriptDirectory

    from lifecycle.core.db import alembic_config

    script = ScriptDirectory.from_config(alembic_config(make_engine("sqlite://")))
    assert len(script.get_heads()) == 1


def test_upgrade_is_idempotent(db_url):
    engine = make_engine(db_url)
    upgrade(engine)
    assert upgrade(engine) == "upgraded"
    engine.dispose()
