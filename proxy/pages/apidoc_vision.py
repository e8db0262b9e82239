"""Descriptions of the vision and account routes (Frame glasses app, VisionAI web app) and of
the dashboard's form posts, for /docs and /openapi.json."""

from __future__ import annotations

from typing import Any

from proxy.pages.apidoc import ADMIN_AUTH, STR, error, json_body, path_param, ref

NUMBER = {"type": "number"}
BOOL = {"type": "boolean"}

VISION_SCHEMAS: dict[str, Any] = {
    "AuthOk": {"type": "object", "required": ["success"], "properties": {
        "success": {"const": True}, "username": STR, "session_ttl": NUMBER}},
    "AuthFailed": {"type": "object", "required": ["success", "error"], "properties": {
        "success": {"const": False},
        "error": {"type": "object", "required": ["code", "message"],
                  "properties": {"code": STR, "message": STR}}}},
    "PromptState": {"type": "object", "required": ["username", "prompt", "is_custom", "default_prompt"],
                    "properties": {"username": STR, "prompt": STR, "is_custom": BOOL, "default_prompt": STR}},
    "Answer": {"type": "object", "required": ["success", "answer"], "properties": {
        "success": BOOL, "answer": STR, "ai_responses": {}, "processing_time": NUMBER,
        "prompt_used": STR, "debug_messages": {"type": "array"}}},
    "Analysis": {"type": "object", "required": ["label", "confidence", "predictions"], "properties": {
        "label": STR, "confidence": NUMBER, "mode": STR, "message": STR,
        "predictions": {"type": "array",
                        "items": {"type": "object", "required": ["label", "confidence"]}}}},
    "Health": {"type": "object", "required": ["status", "model"], "properties": {
        "status": {"const": "healthy"}, "model": STR, "providers": {"type": "array", "items": STR}}},
}

# {}: the session POST /auth-{key} granted
USER_AUTH: list[dict[str, list[str]]] = [{"bearer": []}, {"userKey": []}, {}]
FORM = {"description": "HTML form post from the dashboard (session cookie and CSRF token)",
        "responses": {"303": {"description": "back to the dashboard"},
                      "401": error("no admin session"),
                      "403": error("a missing CSRF token or another origin")}}


def form_op(summary: str, **extra: Any) -> dict[str, Any]:
    return {"tags": ["dashboard"], "summary": summary, "security": [{"adminSession": []}], **FORM, **extra}


VISION_OPERATIONS: dict[str, dict[str, Any]] = {
    "auth": {"tags": ["vision"], "summary": "Log in with a profile's key (the glasses app's first call)",
             "description": "No body. Grants a session to the caller's address.",
             "parameters": [path_param("key", "the profile's auth key")],
             "responses": {"200": json_body(ref("AuthOk"), "`success: true`"),
                           "401": json_body(ref("AuthFailed"), "not a valid key"),
                           "403": json_body(ref("AuthFailed"), "sent by a page of another site"),
                           "415": json_body(ref("AuthFailed"), "a body, or a form's content type"),
                           "429": json_body(ref("AuthFailed"), "too many attempts")}},
    "get_prompt": {"tags": ["vision"], "summary": "A profile's prompt", "security": USER_AUTH,
                   "parameters": [path_param("username", "the profile")],
                   "responses": {"200": json_body(ref("PromptState"), "the prompt in use"),
                                 "401": error("no session or key for this user")}},
    "set_prompt": {"tags": ["vision"], "summary": "Set (or, empty, reset) a profile's prompt",
                   "security": USER_AUTH, "parameters": [path_param("username", "the profile")],
                   "description": 'JSON `{"prompt": "..."}` (`Content-Type: application/json`).',
                   "responses": {"200": json_body(ref("PromptState"), "the prompt now in use"),
                                 "400": error("not a JSON object, or too long"),
                                 "401": error("no session or key for this user"),
                                 "403": error("another user, or sent by a page of another site"),
                                 "415": error("not declared as application/json")}},
    "profile": {"tags": ["vision"], "summary": "Store a profile's own provider keys (never echoed)",
                "security": USER_AUTH,
                "description": 'JSON `{"username", "api_keys": {...}}` (`Content-Type: application/json`).',
                "responses": {"200": json_body({"type": "object", "required": ["success"]}, "stored"),
                              "400": error("a bad body"), "401": error("no session or key for this user"),
                              "403": error("another user, or sent by a page of another site"),
                              "415": error("not declared as application/json")}},
    "process": {"tags": ["vision"], "summary": "Answer a question about a camera frame (glasses app)",
                "description": "Multipart: `image` (the JPEG frame), `username` (the profile) and an "
                               "optional `prompt`.",
                "security": USER_AUTH,
                "responses": {"200": json_body(ref("Answer"), "the answer, 24 characters a line"),
                              "400": error("no frame, not an image, or no username"),
                              "401": error("not logged in"),
                              "403": error("another user, or sent by a page of another site"),
                              "413": error("the frame is too large"), "429": error("too many frames"),
                              "502": json_body(ref("Answer"), "every provider failed")}},
    "analyze": {"tags": ["vision"], "summary": "Label an image (VisionAI web app)",
                "description": 'JSON `{"image": "data:image/...;base64,..."}` with `X-API-Key`: a profile '
                               "key (the image access key only with ANALYZE_ACCESS_KEY=true). Browsers "
                               "may call it from ANALYZE_ORIGINS only.",
                "responses": {"200": json_body(ref("Analysis"), "the labels"),
                              "400": error("not an image"),
                              "401": error("a missing or wrong key, or the access key "
                                           "(`profile_key_required`)")}},
    "analyze_preflight": {"tags": ["vision"], "summary": "CORS preflight",
                          "responses": {"204": {"description": "allowed"},
                                        "200": {"description": "allowed"}}},
    "health": {"tags": ["vision"], "summary": "Vision health",
               "responses": {"200": json_body(ref("Health"), "healthy, with the providers that have keys")}},
    "health_preflight": {"tags": ["vision"], "summary": "CORS preflight",
                         "responses": {"204": {"description": "allowed"}, "200": {"description": "allowed"}}},
    "admin_login": {"tags": ["dashboard"], "summary": "Log in with the admin token (form field `token`)",
                    "responses": {"303": {"description": "to the dashboard, with the session cookie"},
                                  "401": {"description": "the login form again, with the error"}}},
    "admin_logout": form_op("Log out"),
    "admin_cache_delete": form_op("Delete a cache entry (form field `key`)"),
    "admin_thumb": {"tags": ["dashboard"], "summary": "A gallery thumbnail", "security": ADMIN_AUTH,
                    "parameters": [path_param("key", "the cache key")],
                    "responses": {"200": {"description": "a JPEG (or a placeholder when gone)"},
                                  "401": error("no admin session")}},
    "admin_profile_add": form_op("Add a profile; the answer shows its key once"),
    "admin_block": form_op("Block an address or CIDR range"),
    "admin_unblock": form_op("Unblock an address or range"),
}

VISION_SECURITY = {
    "userKey": {"type": "apiKey", "in": "query", "name": "key",
                "description": "the profile's auth key, as the `key` field of the form or JSON body; "
                               "or none within the session POST /auth-{key} granted to your address"},
    "adminSession": {"type": "apiKey", "in": "cookie", "name": "iris_admin"},
}
