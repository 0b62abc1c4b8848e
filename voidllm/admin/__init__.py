"""Management use cases (organisations, users, teams, keys, models, access), shared by the REST API, the CLI
and the built-in MCP tools.

Every use case is an ``async`` function taking the process's :class:`~voidllm.admin.services.Services`, the
acting :class:`~voidllm.admin.context.Actor` (role and org checks happen here, not in the HTTP layer) and an
attrs request object, and returning attrs response objects. Database work runs as one synchronous function
per transaction through ``Store.run``. Nothing here imports Quart.
"""
