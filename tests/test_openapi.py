"""The OpenAPI document describes what the API really answers: every route, every field."""

from __future__ import annotations

import copy
from collections.abc import Iterator
from typing import Any

import jsonschema
import pytest
from jsonschema import Draft202012Validator, FormatChecker
from openapi_spec_validator import OpenAPIV31SpecValidator, validate
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT202012
from schemathesis.specs.openapi.definitions import OPENAPI_31
from sqlalchemy import update
from starlette.routing import Route
from starlette.testclient import TestClient

from cite_live.auth import COOKIE
from cite_live.models import Production
from cite_live.services import Services
from cite_live.web.app import create_app
from tests.account_fixtures import login, make_user, session_cookie, token_for
from tests.test_api import describe_artist, publish_fake

DOCUMENT_URI = "urn:cite-live:openapi"


@pytest.fixture
def client(services: Services) -> Iterator[TestClient]:
    with TestClient(create_app(services.settings, services), base_url="http://testserver") as c:
        yield c


@pytest.fixture
def document(client: TestClient) -> dict[str, Any]:
    response = client.get("/api/v1/openapi.json")
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/json"
    body: dict[str, Any] = response.json()
    return body


def validator_for(document: dict[str, Any], schema: dict[str, Any]) -> Draft202012Validator:
    """A validator of ``schema`` whose ``#/components/...`` references reach into ``document``."""
    registry: Registry[Any] = Registry().with_resource(
        DOCUMENT_URI, Resource.from_contents(document, default_specification=DRAFT202012)
    )
    rebased = copy.deepcopy(schema)
    rebased["$ref"] = DOCUMENT_URI + rebased.pop("$ref")
    return Draft202012Validator(rebased, registry=registry, format_checker=FormatChecker())


def response_schema(document: dict[str, Any], path: str, status: int) -> dict[str, Any]:
    responses = document["paths"][path]["get"]["responses"]
    assert str(status) in responses, f"{path} does not document a {status} answer"
    schema: dict[str, Any] = responses[str(status)]["content"]["application/json"]["schema"]
    return schema


def check(client: TestClient, document: dict[str, Any], template: str, url: str) -> Any:
    """GET ``url`` and validate its body against what ``template`` documents for its status."""
    response = client.get(url)
    schema = response_schema(document, template, response.status_code)
    errors = list(validator_for(document, schema).iter_errors(response.json()))
    assert not errors, f"{url}: " + "; ".join(e.message for e in errors[:5])
    return response.json()


@pytest.fixture
def catalogue(services: Services) -> dict[str, str]:
    """A little of everything the schemas describe: audio and video, failed, setlists…"""
    cite = ("Cité de la Musique", "cite-de-la-musique", "Romans-sur-Isère")
    audio = publish_fake(
        services,
        "Nuit Électro",
        artists=["Élodie Fauré", ("Noé Chabert", "composer")],
        venue=cite,
        chapters=[("Ouverture", 0.0), ("Final", 30.5)],
        download=True,
        title_en="Electro Night",
        description="Une nuit.",
    )
    video = publish_fake(services, "Clip", kind="video", tags=[], picture=(320, 180))
    failed = publish_fake(services, "Raté", status="failed")
    unlisted = publish_fake(services, "Lien", visibility="unlisted")
    describe_artist(
        services,
        "elodie-faure",
        commune="Romans-sur-Isère",
        disciplines=["piano"],
        links=[{"label": "Site", "url": "https://elodie.example"}],
        featured=True,
    )
    with services.sessions() as session:
        production = session.get(Production, unlisted)
        assert production is not None
        address = production.slug
    return {
        "audio": audio,
        "video": video,
        "failed": failed,
        "unlisted": unlisted,
        "unlisted_address": address,
    }


def test_document_is_openapi_3_1_with_valid_schemas(document: dict[str, Any]) -> None:
    assert document["openapi"].startswith("3.1.")
    assert document["info"]["title"] and document["info"]["version"]
    assert document["servers"] == [{"url": "http://testserver"}]
    for schema in document["components"]["schemas"].values():
        Draft202012Validator.check_schema(schema)
    for path, item in document["paths"].items():
        operation = item["get"]
        assert operation["operationId"] and operation["summary"], path
        assert "200" in operation["responses"], path
        names = [p.get("name") for p in [*item.get("parameters", []), *operation["parameters"]]]
        for placeholder in path.split("{")[1:]:
            assert placeholder.split("}")[0] in names, f"{path} documents its path parameter"


def test_openapi_spec_validator_finds_nothing_to_say(document: dict[str, Any]) -> None:
    # The validator most OpenAPI tooling runs first (schemas, references, parameters).
    validate(document, cls=OpenAPIV31SpecValidator)


def test_the_document_is_valid_by_the_openapi_3_1_schema(document: dict[str, Any]) -> None:
    # The OpenAPI Initiative's schema of 3.1 documents, as schemathesis bundles it to check the
    # documents it reads.
    Draft202012Validator.check_schema(OPENAPI_31)
    errors = [e.message for e in Draft202012Validator(OPENAPI_31).iter_errors(document)]
    assert not errors
    # What that schema cannot see: references that lead nowhere, operation ids used twice.
    refs: list[str] = []

    def collect(node: Any) -> None:
        if isinstance(node, dict):
            if isinstance(node.get("$ref"), str):
                refs.append(node["$ref"])
            for value in node.values():
                collect(value)
        elif isinstance(node, list):
            for value in node:
                collect(value)

    collect(document)
    assert refs
    for ref in refs:
        target: Any = document
        for part in ref.removeprefix("#/").split("/"):
            assert isinstance(target, dict) and part in target, f"{ref} leads nowhere"
            target = target[part]
    ids = [item["get"]["operationId"] for item in document["paths"].values()]
    assert len(ids) == len(set(ids))


def test_each_operation_declares_the_security_it_needs(
    client: TestClient, services: Services, document: dict[str, Any]
) -> None:
    schemes = document["components"]["securitySchemes"]
    assert schemes["bearerToken"] == {**schemes["bearerToken"], "type": "http", "scheme": "bearer"}
    # The scheme names the cookie a signed-in browser really holds.
    assert schemes["session"] == {**schemes["session"], "type": "apiKey", "in": "cookie"}
    assert schemes["session"]["name"] == COOKIE
    make_user(services, "artiste@example.org")
    token = token_for(services, "artiste@example.org")
    signed_in = []
    for path, item in document["paths"].items():
        security = item["get"]["security"]
        for requirement in security:
            assert set(requirement) <= set(schemes), path
        url = path.replace("{production_id}", "x").replace("{slug}", "x")
        url = url.replace("{collection_id}", "x")
        if path == "/oembed":
            url += "?url=http://testserver/productions/x"
        anonymous = client.get(url)
        if {} in security:
            # Open to anyone: no scheme is needed (a token, when sent, is checked: see below).
            assert anonymous.status_code != 401, path
            continue
        signed_in.append(path)
        assert anonymous.status_code == 401, path
        assert anonymous.headers["www-authenticate"].startswith("Bearer"), path
        assert set(security[0]) | set(security[1]) == {"bearerToken", "session"}, path
        bearer = client.get(url, headers={"Authorization": f"Bearer {token}"})
        assert bearer.status_code == 200, path
    assert signed_in == ["/api/v1/me/productions", "/api/v1/me/stats"]
    # The session cookie alone opens them too.
    login(client, "artiste@example.org")
    assert session_cookie(client)
    for path in signed_in:
        assert client.get(path).status_code == 200, path


def test_every_json_route_is_documented_and_nothing_else(
    client: TestClient, document: dict[str, Any]
) -> None:
    routes = {
        route.path
        for route in client.app.routes  # type: ignore[attr-defined]
        if isinstance(route, Route) and route.path.startswith(("/api/", "/oembed"))
    }
    routes.discard("/api/v1/openapi.json")
    # Uploads speak tus 1.0 (https://tus.io/protocols/resumable-upload), not this JSON API.
    routes -= {"/api/v1/uploads", "/api/v1/uploads/", "/api/v1/uploads/{upload_id}"}
    # The player's beacon counts plays (tests/test_plays.py): the page's, not an API's.
    routes.discard("/api/v1/plays")
    assert set(document["paths"]) == routes


def test_real_responses_of_every_endpoint_match_the_document(
    client: TestClient, services: Services, document: dict[str, Any], catalogue: dict[str, str]
) -> None:
    productions = "/api/v1/productions"
    one = "/api/v1/productions/{production_id}"
    artists = "/api/v1/artists"
    artist = "/api/v1/artists/{slug}"
    listed = check(client, document, productions, f"{productions}?per_page=1")
    assert listed["items"] and listed["next"]
    check(client, document, productions, f"{productions}?per_page=1&page=2&kind=audio&q=nuit")
    check(client, document, productions, f"{productions}?kind=nothing")
    for production_id in (catalogue["audio"], catalogue["video"]):
        body = check(client, document, one, f"{productions}/{production_id}")
        assert body["id"] == production_id
    # An unlisted production by the address of its page; by its id, the documented 404.
    body = check(client, document, one, f"{productions}/{catalogue['unlisted_address']}")
    assert body["id"] == catalogue["unlisted"]
    check(client, document, one, f"{productions}/{catalogue['unlisted']}")
    # A failed one, as its managers see it.
    check(client, document, one, f"{productions}/{catalogue['failed']}")
    make_user(services, "admin@example.org", "admin")
    client.headers["Authorization"] = f"Bearer {token_for(services, 'admin@example.org')}"
    assert "error" in check(client, document, one, f"{productions}/{catalogue['failed']}")
    del client.headers["Authorization"]
    check(client, document, one, f"{productions}/nothing-here")
    check(client, document, artists, f"{artists}?per_page=1&discipline=piano")
    check(client, document, artists, f"{artists}?per_page=1000")
    detail = check(client, document, artist, f"{artist.replace('{slug}', 'elodie-faure')}")
    assert detail["productions"] and detail["links"]
    check(client, document, artist, f"{artists}/nobody")
    page = f"http://testserver/productions/{'nuit-electro'}"
    check(client, document, "/oembed", f"/oembed?url={page}&format=json")
    clip = "http://testserver/productions/clip"
    oembed = check(client, document, "/oembed", f"/oembed?url={clip}&maxwidth=400")
    assert "thumbnail_url" in oembed
    check(client, document, "/oembed", "/oembed?url=https://elsewhere.example/productions/clip")
    check(client, document, "/oembed", f"/oembed?url={clip}&format=xml")
    check(client, document, "/oembed", f"/oembed?url={clip}&maxwidth=wide")


def test_what_a_token_reads_of_its_own_productions_matches_the_document(
    client: TestClient, document: dict[str, Any], services: Services
) -> None:
    # The fuzzing run cannot guess a production's identifier: the owner's private production
    # (signed media links) and the account's own list are checked here.
    owner = make_user(services, "artiste@example.org")
    private = publish_fake(services, "Secret", visibility="private", picture=(64, 64))
    publish_fake(services, "Raté", status="failed")
    with services.sessions.begin() as session:
        session.execute(update(Production).values(owner_id=owner))
    client.headers["Authorization"] = f"Bearer {token_for(services, 'artiste@example.org')}"
    body = check(
        client, document, "/api/v1/productions/{production_id}", f"/api/v1/productions/{private}"
    )
    assert body["visibility"] == "private" and body["hls_url"]
    mine = check(client, document, "/api/v1/me/productions", "/api/v1/me/productions")
    assert {item["status"] for item in mine["items"]} == {"ready", "failed"}


def test_a_refused_token_is_a_documented_401_on_every_operation(
    client: TestClient, document: dict[str, Any]
) -> None:
    # The token is checked before any route, so every operation may answer 401 with its
    # challenge; the document said so only of /api/v1/me/productions.
    schemes = document["components"]["securitySchemes"]
    assert schemes["bearerToken"]["type"] == "http"
    assert schemes["bearerToken"]["scheme"] == "bearer"
    for path, item in document["paths"].items():
        url = path.replace("{production_id}", "x").replace("{slug}", "x")
        if path == "/oembed":
            url += "?url=http://testserver/productions/x"
        response = client.get(url, headers={"Authorization": "Bearer not-a-token"})
        assert response.status_code == 401, path
        assert response.headers["www-authenticate"].startswith("Bearer"), path
        refused = item["get"]["responses"].get("401")
        assert refused is not None, f"{path} does not document a 401 answer"
        assert "WWW-Authenticate" in refused["headers"], path
        schema = response_schema(document, path, 401)
        validator_for(document, schema).validate(response.json())
        assert {"bearerToken": []} in item["get"]["security"], path


def parameter_schema(document: dict[str, Any], path: str, name: str) -> dict[str, Any]:
    for parameter in document["paths"][path]["get"]["parameters"]:
        if "$ref" in parameter:
            parameter = document["components"]["parameters"][parameter["$ref"].split("/")[-1]]
        if parameter["name"] == name:
            schema: dict[str, Any] = parameter["schema"]
            return schema
    raise AssertionError(f"{path} does not document {name}")


@pytest.mark.parametrize(
    ("path", "name", "value"),
    [
        ("/api/v1/productions", "page", "1000000"),
        ("/api/v1/productions", "page", "1000001"),
        ("/api/v1/artists", "page", "2147483648"),
        ("/api/v1/me/productions", "page", "100000"),
        ("/api/v1/me/productions", "page", "100001"),
        ("/api/v1/productions", "artist", "élodie"),
        ("/api/v1/productions", "artist", "a\x00"),
        ("/api/v1/artists", "commune", "\x00"),
        ("/oembed", "url", "http://testserver/productions/nothing"),
        ("/oembed", "url", ""),
    ],
)
def test_the_document_allows_a_parameter_value_exactly_when_the_api_does(
    client: TestClient,
    document: dict[str, Any],
    services: Services,
    path: str,
    name: str,
    value: str,
) -> None:
    # Found by schemathesis (positive_data_acceptance): pages past the limits and filters with
    # a NUL were valid by the document and refused by the API, an empty oEmbed url too.
    make_user(services, "artiste@example.org")
    token = token_for(services, "artiste@example.org")
    response = client.get(path, params={name: value}, headers={"Authorization": f"Bearer {token}"})
    accepted = response.status_code != 400
    schema = parameter_schema(document, path, name)
    instance = int(value) if schema["type"] == "integer" else value
    assert Draft202012Validator(schema).is_valid(instance) == accepted, response.text


def boundary_values(schema: dict[str, Any]) -> list[Any]:
    """The values at and just past each bound ``schema`` states: where the document and the
    server's checks must agree to the unit."""
    if "enum" in schema:
        return [*schema["enum"], "other"]
    values: list[Any] = []
    if schema.get("type") == "integer":
        low, high = schema.get("minimum"), schema.get("maximum")
        values += [low - 1, low] if low is not None else [-1]
        values += [high, high + 1] if high is not None else [2**31]
    elif schema.get("type") == "string":
        values += ["x" * schema.get("minLength", 0)]
        if schema.get("minLength", 0) > 0:
            values += ["x" * (schema["minLength"] - 1)]
        if "maxLength" in schema:
            values += ["x" * schema["maxLength"], "x" * (schema["maxLength"] + 1)]
    return values


def test_every_bound_the_document_states_is_the_one_the_api_applies(
    client: TestClient, document: dict[str, Any], services: Services
) -> None:
    # page ≤ 1000000 (≤ 100000 for the account's list), per_page ≤ 100, days among 7, 30, 90,
    # a non-empty url on /oembed of at most 2000 characters, filters of at most 200: each at
    # and just past its bound, sent to the server, which refuses it (400) exactly when the
    # document calls it invalid.
    make_user(services, "artiste@example.org")
    token = {"Authorization": f"Bearer {token_for(services, 'artiste@example.org')}"}
    base = {"/oembed": {"url": "http://testserver/productions/nothing"}}
    probed: dict[tuple[str, str], list[Any]] = {}
    for path, item in document["paths"].items():
        if "{" in path:
            continue
        for name in [p.get("name") or p["$ref"].split("/")[-1] for p in item["get"]["parameters"]]:
            schema = parameter_schema(document, path, name)
            for value in boundary_values(schema):
                sent = {**base.get(path, {}), name: str(value)}
                response = client.get(path, params=sent, headers=token)
                assert response.status_code != 500, (path, name, value)
                valid = Draft202012Validator(schema).is_valid(value)
                refusal = {400}
                if path == "/oembed" and value != "":
                    # oEmbed's own answers: an address too long to be one of our pages is not
                    # ours (404), a format we do not offer is a 501, as the document says.
                    refusal = {"url": {400, 404}, "format": {400, 501}}.get(name, refusal)
                refused = response.status_code in refusal
                if valid:
                    refused = response.status_code == 400
                assert refused != valid, (path, name, value, response.text)
                probed.setdefault((path, name), []).append(value)
    assert probed[("/api/v1/productions", "page")][-2:] == [1_000_000, 1_000_001]
    assert probed[("/api/v1/artists", "per_page")][-2:] == [100, 101]
    assert probed[("/api/v1/me/productions", "page")][-2:] == [100_000, 100_001]
    assert probed[("/oembed", "url")][:2] == ["x", ""]
    # Without url, oEmbed is refused: the document says it is required.
    url = next(p for p in document["paths"]["/oembed"]["get"]["parameters"] if p["name"] == "url")
    assert url["required"] is True and url["schema"]["minLength"] == 1
    assert client.get("/oembed").status_code == 400


def test_schemas_are_closed_so_an_undocumented_field_fails(
    client: TestClient, document: dict[str, Any], catalogue: dict[str, str]
) -> None:
    body = client.get(f"/api/v1/productions/{catalogue['audio']}").json()
    schema = response_schema(document, "/api/v1/productions/{production_id}", 200)
    validator = validator_for(document, schema)
    validator.validate(body)
    with pytest.raises(jsonschema.ValidationError, match="additional"):
        validator.validate({**body, "undocumented": 1})
    missing = {k: v for k, v in body.items() if k != "hls_url"}
    with pytest.raises(jsonschema.ValidationError, match="hls_url"):
        validator.validate(missing)
    relative = {**body, "page_url": "/productions/nuit-electro"}
    with pytest.raises(jsonschema.ValidationError):
        validator.validate(relative)
