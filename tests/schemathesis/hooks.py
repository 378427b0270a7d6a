"""Schemathesis hooks for the /hub/api suite (loaded via SCHEMATHESIS_HOOKS).

jupyterhub-rest-api.yml is JupyterHub's published spec, kept verbatim. It has
mistakes of its own: it describes less than JupyterHub itself does. This hook
corrects exactly those, in memory, before schemathesis reads the spec, so that
the checks measure berth against what JupyterHub really answers. Each fix names
the JupyterHub code (jupyterhub/apihandlers/*.py, 6.0.0b2) that shows it. A
second, separate group (BERTH_*) narrows the spec where berth deliberately
accepts less than JupyterHub (name rules, no roles), or where a valid request
would strand the rest of the run (renaming the token's owner). Berth's own spec
(docs/openapi.json) is never touched: the hook only acts on a document titled
"JupyterHub REST API".
"""

from __future__ import annotations

import os

import schemathesis

# Fields the spec types as plain strings/objects although JupyterHub sends null.
NULLABLE = {
    # APIHandler.user_model: 'server': user.url if running else None,
    # 'pending': None (then the default spawner's .pending, None when idle),
    # 'last_activity': isoformat(user.last_activity) -> None when never active,
    # 'auth_state': None placeholder. The spec's own text even says "null if not".
    # 'user_info': user.user_info, None unless the authenticator sets it (what
    # JupyterHub 6.1.1 answers in the differential test, berth/tests/it/hub_diff).
    "User": ["server", "pending", "last_activity", "auth_state", "user_info"],
    # APIHandler.server_model: 'last_activity'/'started': isoformat(...) -> None
    # for a server never started/active; 'pending': spawner.pending -> None.
    "Server": ["pending", "started", "last_activity"],
    # APIHandler.token_model: 'expires_at'/'last_activity': isoformat(...) -> None.
    "Token": ["expires_at", "last_activity"],
    "NewToken": ["expires_at", "last_activity"],
}

# Error statuses every JupyterHub API handler raises (web.HTTPError) but the spec
# lists for almost no operation: 400 bad body/name/query, 401 no credentials,
# 403 missing scope, 404 no such user/server, 409 conflict (e.g. already running).
# 415 and 422 are deliberately NOT added: JupyterHub never sends them (bad JSON,
# wrong types, bad names are all 400 there), so berth sending them is flagged.
JUPYTERHUB_ERROR_STATUSES = ["400", "401", "403", "404", "409"]

# components/parameters/serverName says in prose (changed in 6.0): lowercase
# letters, digits, single hyphens, starts with a letter, ends with a letter or
# digit, at most 30 characters. Without it in the schema, positive tests almost
# never produce a valid server name and never reach the start/stop logic.
SERVER_NAME_PATTERN = "^[a-z](-?[a-z0-9])*$"
SERVER_NAME_MAX_LENGTH = 30

# components/parameters/pagination{Offset,Limit} say `type: number`, but
# APIHandler.get_api_pagination does abs(int(arg)) and answers 400 "offset and
# limit must be integers" for 1.5 or 1e308. (It also abs()es negative values;
# berth answering 400 to offset=-1 is taken as intended, hence minimum: 0.)
PAGINATION_PARAMETERS = ["paginationOffset", "paginationLimit"]
# Beyond 64 bits berth answers 400 where JupyterHub clamps; taken as intended.
PAGINATION_MAXIMUM = 2**53

# Request bodies JupyterHub checks with APIHandler._check_model (unknown keys and
# missing required keys are a 400 there, so they are not valid input):
#   POST /users: 400 "Must specify at least one user to create" without usernames;
#   PATCH /users/{name}: _check_user_model; POST/DELETE /groups/{name}/users:
#   _check_group_model, 400 "Must specify users to add/delete" without users.
STRICT_BODIES = {
    ("/users", "post"): {"required": ["usernames"], "minItems": ("usernames", 1)},
    ("/users/{name}", "patch"): {"minProperties": 1},
    ("/groups/{name}/users", "post"): {"required": ["users"]},
    ("/groups/{name}/users", "delete"): {"required": ["users"]},
}

# berth's own rules, where it deliberately accepts less than JupyterHub. These are
# not JupyterHub mistakes; they are here so the suite checks everything else:
# - user and group names: model::name::NAME_PATTERN (JupyterHub takes almost any);
#   applied only where a name is created, so lookups still see arbitrary names;
# - tokens: berth has no roles (hub_admin.rs refuses any), only scopes;
# - PATCH /users/{name} sends no `name`: a rename of the token's owner would
#   strand the rest of the run, and new names follow berth's rule; renames are
#   compared with JupyterHub's in crates/berth/tests/it/hub_diff.steps.
# And one fact of the run: members added to or removed from a group must exist
# (JupyterHub: 400 "No such user"), so they are drawn from the token's owner,
# whose name run.sh passes in ST_HUB_USER.
BERTH_SCOPES = [
    "list:users", "read:users:name", "read:users:activity", "read:users:groups",
    "read:users", "users:activity", "read:servers", "delete:servers", "servers",
    "access:servers", "read:tokens", "tokens", "list:groups", "read:groups", "inherit",
]
BERTH_NAME = {"type": "string", "pattern": "^[a-z]([a-z0-9-]{0,30}[a-z0-9])?$"}
BERTH_NAMED_CREATIONS = [("/users/{name}", "post"), ("/groups/{name}", "post")]


def _make_nullable(prop: dict) -> None:
    t = prop.get("type")
    if isinstance(t, str):
        prop["type"] = [t, "null"]
    elif isinstance(t, list) and "null" not in t:
        prop["type"] = [*t, "null"]
    if "enum" in prop and None not in prop["enum"]:
        prop["enum"] = [*prop["enum"], None]


@schemathesis.hook
def before_load_schema(context, raw_schema: dict) -> None:
    if raw_schema.get("info", {}).get("title") != "JupyterHub REST API":
        return
    schemas = raw_schema.get("components", {}).get("schemas", {})
    for name, fields in NULLABLE.items():
        props = schemas.get(name, {}).get("properties", {})
        for field in fields:
            if field in props:
                _make_nullable(props[field])

    server_name = raw_schema.get("components", {}).get("parameters", {}).get("serverName")
    if server_name is not None:
        server_name["schema"] = {
            "type": "string",
            "pattern": SERVER_NAME_PATTERN,
            "maxLength": SERVER_NAME_MAX_LENGTH,
        }

    parameters = raw_schema.get("components", {}).get("parameters", {})
    for name in PAGINATION_PARAMETERS:
        if name in parameters:
            parameters[name]["schema"] = {
                "type": "integer",
                "minimum": 0,
                "maximum": PAGINATION_MAXIMUM,
            }

    paths = raw_schema.get("paths", {})
    for (path, method), rules in STRICT_BODIES.items():
        operation = paths.get(path, {}).get(method)
        if operation is None:
            continue
        schema = operation["requestBody"]["content"]["application/json"]["schema"]
        schema["additionalProperties"] = False
        if "required" in rules:
            schema["required"] = rules["required"]
        if "minProperties" in rules:
            schema["minProperties"] = rules["minProperties"]
        if "minItems" in rules:
            prop, n = rules["minItems"]
            schema["properties"][prop]["minItems"] = n

    # berth's rules (see BERTH_NAME above).
    users_post = paths.get("/users", {}).get("post")
    if users_post is not None:
        props = users_post["requestBody"]["content"]["application/json"]["schema"]["properties"]
        props["usernames"]["items"] = dict(BERTH_NAME)
    user_patch = paths.get("/users/{name}", {}).get("patch")
    if user_patch is not None:
        props = user_patch["requestBody"]["content"]["application/json"]["schema"]["properties"]
        del props["name"]
    for path, method in BERTH_NAMED_CREATIONS:
        operation = paths.get(path, {}).get(method)
        if operation is None:
            continue
        operation["parameters"] = [
            {"name": "name", "in": "path", "required": True, "schema": dict(BERTH_NAME)}
            if p.get("$ref", "").endswith(("/userName", "/groupName"))
            else p
            for p in operation.get("parameters", [])
        ]
    owner = os.environ.get("ST_HUB_USER")
    if owner:
        for method in ("post", "delete"):
            operation = paths.get("/groups/{name}/users", {}).get(method)
            if operation is not None:
                schema = operation["requestBody"]["content"]["application/json"]["schema"]
                schema["properties"]["users"]["items"] = {"type": "string", "enum": [owner]}
    # Shares: JupyterHub's ShareGrantRequest/ShareRevokeRequest forbid other
    # keys (pydantic extra='forbid') and need exactly one of user and group that
    # exists (400 "No such user"); berth shares access:servers only. So: the
    # token's owner, and that one scope.
    for method in ("post", "patch"):
        operation = paths.get("/shares/{owner}/{server_name}", {}).get(method)
        if operation is None:
            continue
        schema = operation["requestBody"]["content"]["application/json"]["schema"]
        schema["additionalProperties"] = False
        schema["properties"].pop("group", None)
        schema["required"] = ["user"]
        if owner:
            schema["properties"]["user"] = {"type": "string", "enum": [owner]}
        schema["properties"]["scopes"]["items"] = {"type": "string", "enum": ["access:servers"]}

    tokens_post = paths.get("/users/{name}/tokens", {}).get("post")
    if tokens_post is not None:
        props = tokens_post["requestBody"]["content"]["application/json"]["schema"]["properties"]
        props["roles"]["maxItems"] = 0
        # Unknown scopes are a 400 in JupyterHub too; berth knows fewer scopes
        # than JupyterHub (model::scope), so ask only for those.
        props["scopes"]["items"] = {"type": "string", "enum": BERTH_SCOPES}
        # berth keeps notes printable: no control characters (Unicode's Cc,
        # as Rust's char::is_control), at most 1000 bytes.
        props["note"] = {"type": "string", "maxLength": 250,
                         "pattern": "^[^\\x00-\\x1f\\x7f-\\x9f]*$"}
        # JupyterHub's mistake: `expires_in: number`, but UserTokenListAPIHandler
        # answers 400 "token expires_in must be null or integer" to 1.5. (berth
        # refuses negative lifetimes, which JupyterHub turns into expired tokens.)
        props["expires_in"] = {"type": ["integer", "null"], "minimum": 0,
                               "maximum": 10 * 365 * 24 * 3600}

    # GET /users: `sort` is typed as any string, but UserListAPIHandler.get
    # answers 400 "sort must be 'id', 'name', or 'last_activity'" (a leading
    # '-' sorts descending).
    users_get = paths.get("/users", {}).get("get")
    if users_get is not None:
        for p in users_get.get("parameters", []):
            if p.get("name") == "sort":
                p["schema"] = {
                    "type": "string",
                    "enum": ["id", "name", "last_activity", "-id", "-name", "-last_activity"],
                }

    # POST /users/{name}/activity says `required: false` for its body, but
    # ActivityAPIHandler.post answers 400 "body must be a json dict" without one
    # and 400 "body must contain at least one of `last_activity` or `servers`".
    activity = raw_schema.get("paths", {}).get("/users/{name}/activity", {}).get("post")
    if activity is not None:
        body = activity["requestBody"]
        body["required"] = True
        schema = body["content"]["application/json"]["schema"]
        schema["anyOf"] = [{"required": ["last_activity"]}, {"required": ["servers"]}]
        # The keys of `servers` are server names ('' for the default server);
        # JupyterHub answers 400 "No such server" for any other key.
        # _parse_timestamp answers 400 "Rejecting activity from more than an
        # hour in the future": valid times are in the past (years up to 2025).
        past = {"type": "string", "format": "date-time",
                "pattern": "^(1[0-9]{3}|20[01][0-9]|202[0-5])-"}
        props = schema.get("properties", {})
        if "last_activity" in props:
            props["last_activity"] = dict(past)
        # Each key of `servers` must name a server the user has (even '' is
        # 400 "No such server" for a user who never started one), which a
        # schema cannot say: valid input carries only `last_activity`. The
        # differential test (hub_diff.steps) sends `servers`, to both hubs.
        props.pop("servers", None)
        schema["anyOf"] = [{"required": ["last_activity"]}]
        schema["additionalProperties"] = False

    for path_item in raw_schema.get("paths", {}).values():
        for method, operation in path_item.items():
            if method not in {"get", "put", "post", "delete", "patch"}:
                continue
            responses = operation.setdefault("responses", {})
            for status in JUPYTERHUB_ERROR_STATUSES:
                # YAML keys like `404:` load as ints.
                if status not in responses and int(status) not in responses:
                    responses[status] = {"description": "JupyterHub APIHandler error"}
