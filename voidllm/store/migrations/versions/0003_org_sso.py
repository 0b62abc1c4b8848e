"""Single sign-on: per-organisation OpenID Connect providers (``org_sso_config``) and the mark of the teams
made from an SSO groups claim (``teams.external_group``).

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-06
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "org_sso_config",
        sa.Column("org_id", sa.String(length=36), nullable=False),
        sa.Column("enabled", sa.Boolean(), server_default=sa.true(), nullable=False),
        sa.Column("issuer", sa.Text(), nullable=False),
        sa.Column("client_id", sa.Text(), nullable=False),
        sa.Column("client_secret_enc", sa.Text(), nullable=True),
        sa.Column("redirect_url", sa.Text(), nullable=True),
        sa.Column("scopes", sa.Text(), nullable=False),
        sa.Column("allowed_domains", sa.Text(), nullable=False),
        sa.Column("auto_provision", sa.Boolean(), server_default=sa.true(), nullable=False),
        sa.Column("default_role", sa.String(length=32), server_default=sa.text("'member'"), nullable=False),
        sa.Column("group_sync", sa.String(length=16), server_default=sa.text("'additive'"), nullable=False),
        sa.Column("group_claim", sa.Text(), server_default=sa.text("'groups'"), nullable=False),
        sa.Column("local_login", sa.Boolean(), server_default=sa.true(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["org_id"],
            ["organizations.id"],
            name=op.f("fk_org_sso_config_org_id_organizations"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("org_id", name=op.f("pk_org_sso_config")),
    )
    with op.batch_alter_table("teams") as batch:
        batch.add_column(sa.Column("external_group", sa.Text(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("teams") as batch:
        batch.drop_column("external_group")
    op.drop_table("org_sso_config")
