"""Initial schema: every table of the data model (docs/reference/behaviour.md 3, minus SSO).

Revision ID: 0001
Revises:
Create Date: 2026-11-22

Written out in full (not generated at run time) so the schema this revision creates never changes when
``voidllm/store/tables.py`` does; ``tests/test_store_schema.py`` proves the two agree at head. Timestamps
are ``DateTime(timezone=True)`` here: the app-side ``UTCDateTime`` decorator changes only how Python values
are bound and read, not the DDL. Boolean defaults use ``sa.true()``/``sa.false()`` so each dialect renders
its own literal. Tables are created parents first and dropped children first.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0001"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "organizations",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("name", sa.Text(), nullable=False),
        sa.Column("slug", sa.Text(), nullable=False),
        sa.Column("timezone", sa.String(length=64), server_default=sa.text("'UTC'"), nullable=False),
        sa.Column("daily_token_limit", sa.BigInteger(), server_default=sa.text("0"), nullable=False),
        sa.Column("monthly_token_limit", sa.BigInteger(), server_default=sa.text("0"), nullable=False),
        sa.Column("requests_per_minute", sa.BigInteger(), server_default=sa.text("0"), nullable=False),
        sa.Column("requests_per_day", sa.BigInteger(), server_default=sa.text("0"), nullable=False),
        sa.Column("is_active", sa.Boolean(), server_default=sa.true(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("deleted_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_organizations")),
        sa.UniqueConstraint("slug", name=op.f("uq_organizations_slug")),
    )
    op.create_table(
        "users",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("email", sa.Text(), nullable=False),
        sa.Column("display_name", sa.Text(), server_default=sa.text("''"), nullable=False),
        sa.Column("password_hash", sa.Text(), nullable=True),
        sa.Column("auth_provider", sa.String(length=16), server_default=sa.text("'local'"), nullable=False),
        sa.Column("external_id", sa.Text(), nullable=True),
        sa.Column("is_system_admin", sa.Boolean(), server_default=sa.false(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("deleted_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_users")),
        sa.UniqueConstraint("auth_provider", "external_id", name=op.f("uq_users_auth_provider_external_id")),
        sa.UniqueConstraint("email", name=op.f("uq_users_email")),
    )
    op.create_table(
        "org_memberships",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("org_id", sa.String(length=36), nullable=False),
        sa.Column("user_id", sa.String(length=36), nullable=False),
        sa.Column("role", sa.String(length=32), server_default=sa.text("'member'"), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["org_id"],
            ["organizations.id"],
            name=op.f("fk_org_memberships_org_id_organizations"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["user_id"], ["users.id"], name=op.f("fk_org_memberships_user_id_users"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_org_memberships")),
        sa.UniqueConstraint("org_id", "user_id", name=op.f("uq_org_memberships_org_id_user_id")),
    )
    op.create_index(op.f("ix_org_memberships_user_id"), "org_memberships", ["user_id"])
    op.create_table(
        "teams",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("org_id", sa.String(length=36), nullable=False),
        sa.Column("name", sa.Text(), nullable=False),
        sa.Column("slug", sa.Text(), nullable=False),
        sa.Column("daily_token_limit", sa.BigInteger(), server_default=sa.text("0"), nullable=False),
        sa.Column("monthly_token_limit", sa.BigInteger(), server_default=sa.text("0"), nullable=False),
        sa.Column("requests_per_minute", sa.BigInteger(), server_default=sa.text("0"), nullable=False),
        sa.Column("requests_per_day", sa.BigInteger(), server_default=sa.text("0"), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("deleted_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["org_id"], ["organizations.id"], name=op.f("fk_teams_org_id_organizations"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_teams")),
        sa.UniqueConstraint("org_id", "slug", name=op.f("uq_teams_org_id_slug")),
    )
    op.create_table(
        "team_memberships",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("team_id", sa.String(length=36), nullable=False),
        sa.Column("user_id", sa.String(length=36), nullable=False),
        sa.Column("role", sa.String(length=32), server_default=sa.text("'member'"), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["team_id"], ["teams.id"], name=op.f("fk_team_memberships_team_id_teams"), ondelete="CASCADE"
        ),
        sa.ForeignKeyConstraint(
            ["user_id"], ["users.id"], name=op.f("fk_team_memberships_user_id_users"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_team_memberships")),
        sa.UniqueConstraint("team_id", "user_id", name=op.f("uq_team_memberships_team_id_user_id")),
    )
    op.create_index(op.f("ix_team_memberships_user_id"), "team_memberships", ["user_id"])
    op.create_table(
        "service_accounts",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("name", sa.Text(), nullable=False),
        sa.Column("org_id", sa.String(length=36), nullable=False),
        sa.Column("team_id", sa.String(length=36), nullable=True),
        sa.Column("created_by", sa.String(length=36), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("deleted_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["org_id"],
            ["organizations.id"],
            name=op.f("fk_service_accounts_org_id_organizations"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["team_id"], ["teams.id"], name=op.f("fk_service_accounts_team_id_teams"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_service_accounts")),
    )
    op.create_index(op.f("ix_service_accounts_org_id"), "service_accounts", ["org_id"])
    op.create_table(
        "api_keys",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("key_hash", sa.String(length=64), nullable=False),
        sa.Column("key_hint", sa.String(length=32), nullable=False),
        sa.Column("key_type", sa.String(length=16), nullable=False),
        sa.Column("name", sa.Text(), server_default=sa.text("''"), nullable=False),
        sa.Column("org_id", sa.String(length=36), nullable=False),
        sa.Column("team_id", sa.String(length=36), nullable=True),
        sa.Column("user_id", sa.String(length=36), nullable=True),
        sa.Column("service_account_id", sa.String(length=36), nullable=True),
        sa.Column("daily_token_limit", sa.BigInteger(), server_default=sa.text("0"), nullable=False),
        sa.Column("monthly_token_limit", sa.BigInteger(), server_default=sa.text("0"), nullable=False),
        sa.Column("requests_per_minute", sa.BigInteger(), server_default=sa.text("0"), nullable=False),
        sa.Column("requests_per_day", sa.BigInteger(), server_default=sa.text("0"), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("last_used_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("created_by", sa.String(length=36), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("deleted_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["org_id"],
            ["organizations.id"],
            name=op.f("fk_api_keys_org_id_organizations"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["service_account_id"],
            ["service_accounts.id"],
            name=op.f("fk_api_keys_service_account_id_service_accounts"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["team_id"], ["teams.id"], name=op.f("fk_api_keys_team_id_teams"), ondelete="CASCADE"
        ),
        sa.ForeignKeyConstraint(
            ["user_id"], ["users.id"], name=op.f("fk_api_keys_user_id_users"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_api_keys")),
        sa.UniqueConstraint("key_hash", name=op.f("uq_api_keys_key_hash")),
    )
    op.create_index(op.f("ix_api_keys_org_id"), "api_keys", ["org_id"])
    op.create_index(op.f("ix_api_keys_service_account_id"), "api_keys", ["service_account_id"])
    op.create_index(op.f("ix_api_keys_team_id"), "api_keys", ["team_id"])
    op.create_index(op.f("ix_api_keys_user_id"), "api_keys", ["user_id"])
    op.create_table(
        "invite_tokens",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("token_hash", sa.String(length=64), nullable=False),
        sa.Column("token_hint", sa.String(length=32), nullable=False),
        sa.Column("org_id", sa.String(length=36), nullable=False),
        sa.Column("email", sa.Text(), nullable=False),
        sa.Column("role", sa.String(length=32), server_default=sa.text("'member'"), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("redeemed_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("created_by", sa.String(length=36), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["org_id"],
            ["organizations.id"],
            name=op.f("fk_invite_tokens_org_id_organizations"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_invite_tokens")),
        sa.UniqueConstraint("token_hash", name=op.f("uq_invite_tokens_token_hash")),
    )
    op.create_index(
        "uq_invite_tokens_open_org_id_email",
        "invite_tokens",
        ["org_id", "email"],
        unique=True,
        sqlite_where=sa.text("redeemed_at IS NULL"),
        postgresql_where=sa.text("redeemed_at IS NULL"),
    )
    op.create_table(
        "models",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("name", sa.Text(), nullable=False),
        sa.Column("provider", sa.String(length=32), nullable=False),
        sa.Column("model_type", sa.String(length=32), server_default=sa.text("'chat'"), nullable=False),
        sa.Column("base_url", sa.Text(), server_default=sa.text("''"), nullable=False),
        sa.Column("api_key_encrypted", sa.Text(), nullable=True),
        sa.Column("max_context_tokens", sa.BigInteger(), server_default=sa.text("0"), nullable=False),
        sa.Column("input_price_per_1m", sa.Double(), server_default=sa.text("0"), nullable=False),
        sa.Column("output_price_per_1m", sa.Double(), server_default=sa.text("0"), nullable=False),
        sa.Column("azure_deployment", sa.Text(), nullable=True),
        sa.Column("azure_api_version", sa.Text(), nullable=True),
        sa.Column("gcp_project", sa.Text(), nullable=True),
        sa.Column("gcp_location", sa.Text(), nullable=True),
        sa.Column("aliases", sa.Text(), server_default=sa.text("''"), nullable=False),
        sa.Column("timeout", sa.String(length=32), nullable=True),
        sa.Column("strategy", sa.String(length=32), server_default=sa.text("''"), nullable=False),
        sa.Column("max_retries", sa.Integer(), server_default=sa.text("0"), nullable=False),
        sa.Column("fallback_model_id", sa.String(length=36), nullable=True),
        sa.Column("pii_filter", sa.Boolean(), nullable=True),
        sa.Column("is_active", sa.Boolean(), server_default=sa.true(), nullable=False),
        sa.Column("source", sa.String(length=16), server_default=sa.text("'api'"), nullable=False),
        sa.Column("created_by", sa.String(length=36), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("deleted_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["fallback_model_id"],
            ["models.id"],
            name=op.f("fk_models_fallback_model_id_models"),
            ondelete="SET NULL",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_models")),
        sa.UniqueConstraint("name", name=op.f("uq_models_name")),
    )
    op.create_table(
        "model_deployments",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("model_id", sa.String(length=36), nullable=False),
        sa.Column("name", sa.Text(), nullable=False),
        sa.Column("provider", sa.String(length=32), nullable=False),
        sa.Column("base_url", sa.Text(), server_default=sa.text("''"), nullable=False),
        sa.Column("api_key_encrypted", sa.Text(), nullable=True),
        sa.Column("azure_deployment", sa.Text(), nullable=True),
        sa.Column("azure_api_version", sa.Text(), nullable=True),
        sa.Column("gcp_project", sa.Text(), nullable=True),
        sa.Column("gcp_location", sa.Text(), nullable=True),
        sa.Column("weight", sa.Integer(), server_default=sa.text("1"), nullable=False),
        sa.Column("priority", sa.Integer(), server_default=sa.text("0"), nullable=False),
        sa.Column("pii_filter", sa.Boolean(), nullable=True),
        sa.Column("is_active", sa.Boolean(), server_default=sa.true(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("deleted_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["model_id"], ["models.id"], name=op.f("fk_model_deployments_model_id_models"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_model_deployments")),
        sa.UniqueConstraint("model_id", "name", name=op.f("uq_model_deployments_model_id_name")),
    )
    op.create_table(
        "model_aliases",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("alias", sa.Text(), nullable=False),
        sa.Column("model_name", sa.Text(), nullable=False),
        sa.Column("scope_type", sa.String(length=8), nullable=False),
        sa.Column("org_id", sa.String(length=36), nullable=False),
        sa.Column("team_id", sa.String(length=36), nullable=True),
        sa.Column("created_by", sa.String(length=36), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["org_id"],
            ["organizations.id"],
            name=op.f("fk_model_aliases_org_id_organizations"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["team_id"], ["teams.id"], name=op.f("fk_model_aliases_team_id_teams"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_model_aliases")),
    )
    op.create_index(
        "uq_model_aliases_org_alias",
        "model_aliases",
        ["org_id", "alias"],
        unique=True,
        sqlite_where=sa.text("team_id IS NULL"),
        postgresql_where=sa.text("team_id IS NULL"),
    )
    op.create_index(
        "uq_model_aliases_team_alias",
        "model_aliases",
        ["team_id", "alias"],
        unique=True,
        sqlite_where=sa.text("team_id IS NOT NULL"),
        postgresql_where=sa.text("team_id IS NOT NULL"),
    )
    op.create_table(
        "org_model_access",
        sa.Column("org_id", sa.String(length=36), nullable=False),
        sa.Column("model_name", sa.Text(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["org_id"],
            ["organizations.id"],
            name=op.f("fk_org_model_access_org_id_organizations"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("org_id", "model_name", name=op.f("pk_org_model_access")),
    )
    op.create_table(
        "team_model_access",
        sa.Column("team_id", sa.String(length=36), nullable=False),
        sa.Column("model_name", sa.Text(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["team_id"], ["teams.id"], name=op.f("fk_team_model_access_team_id_teams"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("team_id", "model_name", name=op.f("pk_team_model_access")),
    )
    op.create_table(
        "key_model_access",
        sa.Column("key_id", sa.String(length=36), nullable=False),
        sa.Column("model_name", sa.Text(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["key_id"], ["api_keys.id"], name=op.f("fk_key_model_access_key_id_api_keys"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("key_id", "model_name", name=op.f("pk_key_model_access")),
    )
    op.create_table(
        "usage_events",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("request_id", sa.String(length=64), nullable=True),
        sa.Column("key_id", sa.String(length=36), nullable=False),
        sa.Column("key_type", sa.String(length=16), nullable=False),
        sa.Column("org_id", sa.String(length=36), nullable=False),
        sa.Column("team_id", sa.String(length=36), nullable=True),
        sa.Column("user_id", sa.String(length=36), nullable=True),
        sa.Column("service_account_id", sa.String(length=36), nullable=True),
        sa.Column("model_name", sa.Text(), nullable=False),
        sa.Column("requested_model_name", sa.Text(), nullable=True),
        sa.Column("deployment_name", sa.Text(), nullable=True),
        sa.Column("provider", sa.String(length=32), server_default=sa.text("''"), nullable=False),
        sa.Column("prompt_tokens", sa.BigInteger(), server_default=sa.text("0"), nullable=False),
        sa.Column("completion_tokens", sa.BigInteger(), server_default=sa.text("0"), nullable=False),
        sa.Column("total_tokens", sa.BigInteger(), server_default=sa.text("0"), nullable=False),
        sa.Column("cost_estimate", sa.Double(), nullable=True),
        sa.Column("request_duration_ms", sa.BigInteger(), server_default=sa.text("0"), nullable=False),
        sa.Column("ttft_ms", sa.BigInteger(), nullable=True),
        sa.Column("tokens_per_second", sa.Double(), nullable=True),
        sa.Column("status_code", sa.Integer(), server_default=sa.text("0"), nullable=False),
        sa.Column("status", sa.String(length=32), server_default=sa.text("'ok'"), nullable=False),
        sa.Column("stream", sa.Boolean(), server_default=sa.false(), nullable=False),
        sa.Column("source", sa.String(length=64), nullable=True),
        sa.Column("project", sa.String(length=64), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_usage_events")),
    )
    op.create_index(op.f("ix_usage_events_created_at"), "usage_events", ["created_at"])
    op.create_index(op.f("ix_usage_events_key_id_created_at"), "usage_events", ["key_id", "created_at"])
    op.create_index(op.f("ix_usage_events_org_id_created_at"), "usage_events", ["org_id", "created_at"])
    op.create_index(op.f("ix_usage_events_team_id_created_at"), "usage_events", ["team_id", "created_at"])
    op.create_index(op.f("ix_usage_events_user_id_created_at"), "usage_events", ["user_id", "created_at"])
    op.create_table(
        "usage_hourly",
        sa.Column("bucket_hour", sa.DateTime(timezone=True), nullable=False),
        sa.Column("org_id", sa.String(length=36), nullable=False),
        sa.Column("team_id", sa.String(length=36), server_default=sa.text("''"), nullable=False),
        sa.Column("user_id", sa.String(length=36), server_default=sa.text("''"), nullable=False),
        sa.Column("key_id", sa.String(length=36), nullable=False),
        sa.Column("model_name", sa.Text(), nullable=False),
        sa.Column("request_count", sa.BigInteger(), server_default=sa.text("0"), nullable=False),
        sa.Column("prompt_tokens", sa.BigInteger(), server_default=sa.text("0"), nullable=False),
        sa.Column("completion_tokens", sa.BigInteger(), server_default=sa.text("0"), nullable=False),
        sa.Column("total_tokens", sa.BigInteger(), server_default=sa.text("0"), nullable=False),
        sa.Column("cost_sum", sa.Double(), server_default=sa.text("0"), nullable=False),
        sa.Column("duration_sum_ms", sa.BigInteger(), server_default=sa.text("0"), nullable=False),
        sa.Column("ttft_sum_ms", sa.BigInteger(), server_default=sa.text("0"), nullable=False),
        sa.Column("ttft_count", sa.BigInteger(), server_default=sa.text("0"), nullable=False),
        sa.Column("error_count", sa.BigInteger(), server_default=sa.text("0"), nullable=False),
        sa.PrimaryKeyConstraint(
            "bucket_hour",
            "org_id",
            "team_id",
            "user_id",
            "key_id",
            "model_name",
            name=op.f("pk_usage_hourly"),
        ),
    )
    op.create_index(op.f("ix_usage_hourly_key_id_bucket_hour"), "usage_hourly", ["key_id", "bucket_hour"])
    op.create_index(op.f("ix_usage_hourly_org_id_bucket_hour"), "usage_hourly", ["org_id", "bucket_hour"])
    op.create_index(op.f("ix_usage_hourly_team_id_bucket_hour"), "usage_hourly", ["team_id", "bucket_hour"])
    op.create_table(
        "audit_logs",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("request_id", sa.String(length=64), nullable=True),
        sa.Column("timestamp", sa.DateTime(timezone=True), nullable=False),
        sa.Column("org_id", sa.String(length=36), nullable=True),
        sa.Column("actor_id", sa.String(length=36), nullable=True),
        sa.Column("actor_type", sa.String(length=32), nullable=False),
        sa.Column("actor_key_id", sa.String(length=36), nullable=True),
        sa.Column("action", sa.String(length=64), nullable=False),
        sa.Column("resource_type", sa.String(length=64), nullable=False),
        sa.Column("resource_id", sa.Text(), nullable=True),
        sa.Column("description", sa.Text(), server_default=sa.text("''"), nullable=False),
        sa.Column("ip_address", sa.String(length=64), nullable=True),
        sa.Column("status_code", sa.Integer(), server_default=sa.text("0"), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_audit_logs")),
    )
    op.create_index(op.f("ix_audit_logs_org_id_timestamp"), "audit_logs", ["org_id", "timestamp"])
    op.create_index(op.f("ix_audit_logs_timestamp"), "audit_logs", ["timestamp"])
    op.create_table(
        "settings",
        sa.Column("key", sa.String(length=128), nullable=False),
        sa.Column("value", sa.Text(), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("key", name=op.f("pk_settings")),
    )
    op.create_table(
        "mcp_servers",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("name", sa.Text(), nullable=False),
        sa.Column("alias", sa.Text(), nullable=False),
        sa.Column("url", sa.Text(), nullable=False),
        sa.Column("auth_type", sa.String(length=16), server_default=sa.text("'none'"), nullable=False),
        sa.Column("auth_header", sa.Text(), nullable=True),
        sa.Column("auth_token_enc", sa.Text(), nullable=True),
        sa.Column("oauth_token_url", sa.Text(), nullable=True),
        sa.Column("oauth_client_id", sa.Text(), nullable=True),
        sa.Column("oauth_client_secret_enc", sa.Text(), nullable=True),
        sa.Column("oauth_scopes", sa.Text(), nullable=True),
        sa.Column("org_id", sa.String(length=36), nullable=True),
        sa.Column("team_id", sa.String(length=36), nullable=True),
        sa.Column("is_active", sa.Boolean(), server_default=sa.true(), nullable=False),
        sa.Column("code_mode_enabled", sa.Boolean(), server_default=sa.true(), nullable=False),
        sa.Column("source", sa.String(length=16), server_default=sa.text("'api'"), nullable=False),
        sa.Column("created_by", sa.String(length=36), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("deleted_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["org_id"],
            ["organizations.id"],
            name=op.f("fk_mcp_servers_org_id_organizations"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["team_id"], ["teams.id"], name=op.f("fk_mcp_servers_team_id_teams"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_mcp_servers")),
    )
    op.create_index(
        "uq_mcp_servers_global_alias",
        "mcp_servers",
        ["alias"],
        unique=True,
        sqlite_where=sa.text("org_id IS NULL AND team_id IS NULL"),
        postgresql_where=sa.text("org_id IS NULL AND team_id IS NULL"),
    )
    op.create_index(
        "uq_mcp_servers_org_alias",
        "mcp_servers",
        ["org_id", "alias"],
        unique=True,
        sqlite_where=sa.text("org_id IS NOT NULL AND team_id IS NULL"),
        postgresql_where=sa.text("org_id IS NOT NULL AND team_id IS NULL"),
    )
    op.create_index(
        "uq_mcp_servers_team_alias",
        "mcp_servers",
        ["team_id", "alias"],
        unique=True,
        sqlite_where=sa.text("team_id IS NOT NULL"),
        postgresql_where=sa.text("team_id IS NOT NULL"),
    )
    op.create_table(
        "org_mcp_access",
        sa.Column("org_id", sa.String(length=36), nullable=False),
        sa.Column("server_id", sa.String(length=36), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["org_id"],
            ["organizations.id"],
            name=op.f("fk_org_mcp_access_org_id_organizations"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["server_id"],
            ["mcp_servers.id"],
            name=op.f("fk_org_mcp_access_server_id_mcp_servers"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("org_id", "server_id", name=op.f("pk_org_mcp_access")),
    )
    op.create_table(
        "team_mcp_access",
        sa.Column("team_id", sa.String(length=36), nullable=False),
        sa.Column("server_id", sa.String(length=36), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["server_id"],
            ["mcp_servers.id"],
            name=op.f("fk_team_mcp_access_server_id_mcp_servers"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["team_id"], ["teams.id"], name=op.f("fk_team_mcp_access_team_id_teams"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("team_id", "server_id", name=op.f("pk_team_mcp_access")),
    )
    op.create_table(
        "key_mcp_access",
        sa.Column("key_id", sa.String(length=36), nullable=False),
        sa.Column("server_id", sa.String(length=36), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["key_id"], ["api_keys.id"], name=op.f("fk_key_mcp_access_key_id_api_keys"), ondelete="CASCADE"
        ),
        sa.ForeignKeyConstraint(
            ["server_id"],
            ["mcp_servers.id"],
            name=op.f("fk_key_mcp_access_server_id_mcp_servers"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("key_id", "server_id", name=op.f("pk_key_mcp_access")),
    )
    op.create_table(
        "mcp_tool_calls",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("request_id", sa.String(length=64), nullable=True),
        sa.Column("key_id", sa.String(length=36), nullable=True),
        sa.Column("org_id", sa.String(length=36), nullable=True),
        sa.Column("team_id", sa.String(length=36), nullable=True),
        sa.Column("user_id", sa.String(length=36), nullable=True),
        sa.Column("service_account_id", sa.String(length=36), nullable=True),
        sa.Column("server_alias", sa.Text(), nullable=False),
        sa.Column("tool_name", sa.Text(), nullable=False),
        sa.Column("duration_ms", sa.BigInteger(), server_default=sa.text("0"), nullable=False),
        sa.Column("status", sa.String(length=32), nullable=False),
        sa.Column("code_mode", sa.Boolean(), server_default=sa.false(), nullable=False),
        sa.Column("code_mode_execution_id", sa.String(length=36), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_mcp_tool_calls")),
    )
    op.create_index(op.f("ix_mcp_tool_calls_created_at"), "mcp_tool_calls", ["created_at"])
    op.create_index(op.f("ix_mcp_tool_calls_org_id_created_at"), "mcp_tool_calls", ["org_id", "created_at"])
    op.create_table(
        "mcp_tool_blocklist",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("server_id", sa.String(length=36), nullable=False),
        sa.Column("tool_name", sa.Text(), nullable=False),
        sa.Column("reason", sa.Text(), server_default=sa.text("''"), nullable=False),
        sa.Column("created_by", sa.String(length=36), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["server_id"],
            ["mcp_servers.id"],
            name=op.f("fk_mcp_tool_blocklist_server_id_mcp_servers"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_mcp_tool_blocklist")),
        sa.UniqueConstraint("server_id", "tool_name", name=op.f("uq_mcp_tool_blocklist_server_id_tool_name")),
    )
    op.create_table(
        "mcp_server_tools",
        sa.Column("server_id", sa.String(length=36), nullable=False),
        sa.Column("name", sa.Text(), nullable=False),
        sa.Column("description", sa.Text(), server_default=sa.text("''"), nullable=False),
        sa.Column("input_schema", sa.Text(), server_default=sa.text("'{}'"), nullable=False),
        sa.Column("fetched_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["server_id"],
            ["mcp_servers.id"],
            name=op.f("fk_mcp_server_tools_server_id_mcp_servers"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("server_id", "name", name=op.f("pk_mcp_server_tools")),
    )
    op.create_table(
        "output_schemas",
        sa.Column("server_id", sa.String(length=36), nullable=False),
        sa.Column("tool_name", sa.Text(), nullable=False),
        sa.Column("json_schema", sa.Text(), nullable=False),
        sa.Column("inferred_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["server_id"],
            ["mcp_servers.id"],
            name=op.f("fk_output_schemas_server_id_mcp_servers"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("server_id", "tool_name", name=op.f("pk_output_schemas")),
    )


def downgrade() -> None:
    op.drop_table("output_schemas")
    op.drop_table("mcp_server_tools")
    op.drop_table("mcp_tool_blocklist")
    op.drop_table("mcp_tool_calls")
    op.drop_table("key_mcp_access")
    op.drop_table("team_mcp_access")
    op.drop_table("org_mcp_access")
    op.drop_table("mcp_servers")
    op.drop_table("settings")
    op.drop_table("audit_logs")
    op.drop_table("usage_hourly")
    op.drop_table("usage_events")
    op.drop_table("key_model_access")
    op.drop_table("team_model_access")
    op.drop_table("org_model_access")
    op.drop_table("model_aliases")
    op.drop_table("model_deployments")
    op.drop_table("models")
    op.drop_table("invite_tokens")
    op.drop_table("api_keys")
    op.drop_table("service_accounts")
    op.drop_table("team_memberships")
    op.drop_table("teams")
    op.drop_table("org_memberships")
    op.drop_table("users")
    op.drop_table("organizations")
