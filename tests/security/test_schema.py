"""The OpenAPI schema declares the console's bearer tokens (opsconsole.schema)."""

from __future__ import annotations

import pytest
import yaml

from opsconsole.models import ApiToken

pytestmark = pytest.mark.django_db


def test_schema_declares_bearer_auth_on_token_routes(api_client, admin_user):
    _, raw = ApiToken.issue(admin_user, name="schema")
    api_client.credentials(HTTP_AUTHORIZATION=f"Bearer {raw}")
    response = api_client.get("/api/v0/schema/")
    assert response.status_code == 200
    schema = yaml.safe_load(response.content)
    assert schema["components"]["securitySchemes"]["bearerAuth"]["type"] == "http"
    assert schema["components"]["securitySchemes"]["bearerAuth"]["scheme"] == "bearer"
    configs = schema["paths"]["/api/v0/director/configs"]["get"]
    assert {"bearerAuth": []} in configs["security"]
    # info and the token route take no credentials
    assert schema["paths"]["/api/v0/info"]["get"].get("security") in (None, [], [{}])
    token = schema["paths"]["/api/v0/auth/token"]["post"]
    ref = token["requestBody"]["content"]["application/json"]["schema"]["$ref"]
    assert ref.endswith("/TokenRequest")
    assert set(schema["components"]["schemas"]["Token"]["properties"]) == {
        "access_token",
        "token_type",
        "username",
        "id",
        "expires_in",
        "expires_at",
    }
