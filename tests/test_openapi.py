"""/openapi.json: built from the route table, and true of the real responses."""

from __future__ import annotations

from typing import Any

from jsonschema import Draft202012Validator

from tests.conftest import ACCESS_KEY, ADMIN_TOKEN

ADMIN = {"X-Admin-Token": ADMIN_TOKEN}


def documented(spec: dict[str, Any], path: str, method: str, status: int) -> dict[str, Any]:
    operation = spec["paths"][path][method]
    assert str(status) in operation["responses"], f"{method.upper()} {path} answered an undocumented {status}"
    return operation["responses"][str(status)]


async def check(client: Any, spec: dict[str, Any], path: str, method: str, url: str, **kw: Any) -> Any:
    """Makes the real request and validates its answer against the documented one."""
    resp = await client.request(method.upper(), url, allow_redirects=False, **kw)
    doc = documented(spec, path, method, resp.status)
    content = doc.get("content", {})
    ctype = resp.headers.get("Content-Type", "").split(";")[0]
    if "application/json" in content:
        assert ctype == "application/json", url
        schema = {**content["application/json"]["schema"], "components": spec["components"]}
        Draft202012Validator(schema).validate(await resp.json())
    elif content:
        family = ctype.split("/")[0] + "/*"
        assert ctype in content or family in content, (url, ctype)
    return resp


async def test_every_route_of_the_app_is_in_the_document(iris, backend):
    client = await iris(BACKEND_API_URLS=backend.url)
    spec = await (await client.get("/openapi.json")).json()
    assert spec["openapi"].startswith("3.1")
    for resource in client.app.router.resources():
        path = resource.canonical
        if path.startswith("/static"):
            assert path not in spec["paths"]
            continue
        methods = {r.method.lower() for r in resource if r.method not in ("HEAD", "*")}
        assert methods <= set(spec["paths"][path]), path
    for schema in spec["components"]["schemas"].values():
        Draft202012Validator.check_schema(schema)
    documented_ops = [op for ops in spec["paths"].values() for op in ops.values() if "operationId" in op]
    assert len({op["operationId"] for op in documented_ops}) == len(documented_ops)


async def test_real_answers_match_the_document(iris, backend):
    client = await iris(BACKEND_API_URLS=backend.url)
    spec = await (await client.get("/openapi.json")).json()
    prompt = "/prompt/{description}"
    ok = await check(client, spec, prompt, "get", f"/prompt/a%20fox?key={ACCESS_KEY}&seed=5")
    etag = ok.headers["ETag"]
    key = etag.strip('"')
    await check(client, spec, prompt, "get", f"/prompt/a%20fox?key={ACCESS_KEY}&seed=5",
                headers={"If-None-Match": etag})
    await check(client, spec, prompt, "get", "/prompt/a%20fox")
    await check(client, spec, prompt, "get", f"/prompt/a%20fox?key={ACCESS_KEY}&width=abc")
    await check(client, spec, "/status", "get", "/status")
    await check(client, spec, "/status", "get", "/status", headers=ADMIN)
    await check(client, spec, "/metrics", "get", "/metrics")
    await check(client, spec, "/metrics", "get", "/metrics", headers=ADMIN)
    await check(client, spec, "/openapi.json", "get", "/openapi.json")
    for path in ("/", "/docs", "/admin"):
        await check(client, spec, path, "get", path)
    delete = "/cache/delete"
    await check(client, spec, delete, "post", delete, json={"description": "a fox"})
    await check(client, spec, delete, "post", delete, data=b"{not json", headers=ADMIN)
    await check(client, spec, delete, "post", delete, json={"description": "a fox", "seed": 5}, headers=ADMIN)
    await check(client, spec, delete, "post", delete, json={"description": "a fox", "seed": 5}, headers=ADMIN)
    by_key = "/cache/{key}"
    await check(client, spec, by_key, "delete", "/cache/nothex", headers=ADMIN)
    await check(client, spec, by_key, "delete", f"/cache/{key}", headers=ADMIN)
    await check(client, spec, by_key, "delete", f"/cache/{key}")


async def test_vision_account_and_dashboard_answers_match_the_document(iris, backend):
    from tests.support.account_helpers import add_profile

    client = await iris(BACKEND_API_URLS=backend.url)
    spec = await (await client.get("/openapi.json")).json()
    await check(client, spec, "/health", "get", "/health")
    await check(client, spec, "/auth-{key}", "post", "/auth-not-a-real-key-000")
    await check(client, spec, "/prompt-{username}", "get", "/prompt-bob")
    await check(client, spec, "/process", "post", "/process", data={"username": "bob"})
    await check(client, spec, "/analyze", "post", "/analyze", json={"image": "not a data url"})
    key = await add_profile(client, "bob")
    await check(client, spec, "/auth-{key}", "post", f"/auth-{key}")
    await check(client, spec, "/prompt-{username}", "get", "/prompt-bob")
    await check(client, spec, "/prompt-{username}", "post", "/prompt-bob", json={"prompt": "Describe it."})
    await check(client, spec, "/prompt-{username}", "post", "/prompt-bob", data=b"[1]")
    await check(client, spec, "/admin/thumb/{key}", "get", "/admin/thumb/" + "0" * 64)
    await check(client, spec, "/admin/cache/delete", "post", "/admin/cache/delete", data={"key": "0" * 64})
    await check(client, spec, "/admin/login", "post", "/admin/login", data={"token": "wrong"})
    await check(client, spec, "/admin/login", "post", "/admin/login", data={"token": ADMIN_TOKEN})
    await check(client, spec, "/admin/cache/delete", "post", "/admin/cache/delete", data={"key": "0" * 64})


async def test_signing_and_limit_answers_match_the_document(iris, backend):
    client = await iris(BACKEND_API_URLS=backend.url, RATE_LIMIT_GENERATE="1/minute", REQUIRE_SIGNED="true")
    spec = await (await client.get("/openapi.json")).json()
    bearer = {"Authorization": f"Bearer {ACCESS_KEY}"}
    signed = await check(client, spec, "/sign", "post", "/sign", json={"path": "/prompt/a%20fox"}, headers=bearer)
    url = (await signed.json())["url"]
    await check(client, spec, "/sign", "post", "/sign", json={"path": "/status"}, headers=bearer)
    await check(client, spec, "/sign", "post", "/sign", json={"path": "/prompt/a%20fox"})
    prompt = "/prompt/{description}"
    await check(client, spec, prompt, "get", url)
    await check(client, spec, prompt, "get", url.replace("fox", "cat"))  # 403 bad_signature
    await check(client, spec, prompt, "get", f"/prompt/a%20fox?key={ACCESS_KEY}")  # 401 signature_required
    await check(client, spec, prompt, "get", "/prompt/a%20cat", headers=bearer)  # 429 generate_limited


async def test_openai_and_pollinations_answers_match_the_document(iris, backend):
    from proxy.pages.apidoc_openai import REQUEST_EXAMPLE

    client = await iris(BACKEND_API_URLS=backend.url, MODEL_MAP=f'{{"{backend.url}": {{"flux": "flux-dev"}}}}')
    spec = await (await client.get("/openapi.json")).json()
    bearer = {"Authorization": f"Bearer {ACCESS_KEY}"}
    images = "/v1/images/generations"
    made = await check(client, spec, images, "post", images, json=REQUEST_EXAMPLE, headers=bearer)  # the example
    assert len((await made.json())["data"]) == REQUEST_EXAMPLE["n"]
    await check(client, spec, images, "post", images, json={"prompt": "x", "size": "9x9"}, headers=bearer)
    await check(client, spec, images, "post", images, json={"prompt": "x"})
    await check(client, spec, "/v1/models", "get", "/v1/models", headers=bearer)
    await check(client, spec, "/v1/models", "get", "/v1/models")
    await check(client, spec, "/v1/models/{model}", "get", "/v1/models/flux", headers=bearer)
    await check(client, spec, "/v1/models/{model}", "get", "/v1/models/nope", headers=bearer)
    await check(client, spec, "/models", "get", "/models")
    alias = "/image/{description}"
    await check(client, spec, alias, "get", f"/image/a%20fox?key={ACCESS_KEY}&format=webp")
    await check(client, spec, alias, "get", f"/image/a%20fox?key={ACCESS_KEY}&format=gif")


async def test_every_documented_example_fits_its_schema(iris, backend):
    client = await iris(BACKEND_API_URLS=backend.url)
    spec = await (await client.get("/openapi.json")).json()
    found = 0
    for methods in spec["paths"].values():
        for op in methods.values():
            bodies = [op.get("requestBody", {}), *op["responses"].values()]
            for holder in bodies:
                media = holder.get("content", {}).get("application/json", {})
                if "example" in media:
                    found += 1
                    Draft202012Validator({**media["schema"], "components": spec["components"]}).validate(media["example"])
    for schema in spec["components"]["schemas"].values():
        if "example" in schema:
            Draft202012Validator({**schema, "components": spec["components"]}).validate(schema["example"])
    assert found >= 5
    html = await (await client.get("/docs")).text()
    assert "Example request body:" in html and "Example answer:" in html and "Use it from code" in html
