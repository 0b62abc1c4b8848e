"""The prompt guard's findings on usage events: kinds and counts (JSON) and the action taken.

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-07
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("usage_events") as batch:
        batch.add_column(sa.Column("guard_findings", sa.Text(), nullable=True))
        batch.add_column(sa.Column("guard_action", sa.String(length=16), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("usage_events") as batch:
        batch.drop_column("guard_action")
        batch.drop_column("guard_findings")
