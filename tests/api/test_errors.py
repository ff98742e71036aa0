"""Exception → response mapping details not covered through the routes."""

from __future__ import annotations

import json

from mxproxy.api.errors import BASIC_CHALLENGE, response_for
from mxproxy.provisioning import ProvisioningError


def test_provisioning_401_is_passed_through_with_a_basic_challenge() -> None:
    response = response_for(ProvisioningError(401, "Unauthorized"))
    assert response.status_code == 401
    assert response.headers["www-authenticate"] == BASIC_CHALLENGE["WWW-Authenticate"]
    assert json.loads(response.body) == {"error": "Unauthorized"}


def test_other_provisioning_statuses_carry_no_challenge() -> None:
    for status, message in [(403, "Forbidden"), (404, "Not Found"), (502, "bad json"), (504, "timeout")]:
        response = response_for(ProvisioningError(status, message))
        assert response.status_code == status and "www-authenticate" not in response.headers
        assert json.loads(response.body) == {"error": message}
