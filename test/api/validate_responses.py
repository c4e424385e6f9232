#!/usr/bin/env python3
"""Checks HTTP responses against api/openapi.yaml.

Every response the integration tests receive through https_client::request is recorded (the
environment variable PORTAL_AUTH_RECORD_RESPONSES names the file; one JSON line each:
method, target, status, contentType, body, headers with lower-case names). Each one must be
described by the spec:

  - its path matches one of `paths` (a `{name}` segment matches one non-empty segment; among
    several matches the one with most literal segments wins, as in the server's router), and
    the path item has an operation for the method, whose `responses` has the status (or its
    `4XX` range, or `default`); a path that matches nothing is looked up in
    `x-portal-auth-unrouted.unknownPath`, a method the path lacks in `...unknownMethod`;
  - every header the response object declares `required` is present, and every declared header
    that is present validates against its schema (integers are compared as integers);
  - the media type of Content-Type is one the response object declares, and the body, parsed
    as JSON, validates against that media type's schema (JSON Schema 2020-12, $refs resolved
    in the spec); a response object without content must come with no body and no
    Content-Type; the body of a HEAD response is not checked.

Anything else is a failure. Responses to the raw bytes that tests send on purpose (send_raw,
raw_exchange) are not recorded, so they are not checked.

  validate_responses.py --spec api/openapi.yaml --run BINARY [ARG...]
      runs BINARY (the integration tests) with recording on, then checks what it recorded;
      fails if BINARY fails or records nothing
  validate_responses.py --spec api/openapi.yaml --responses FILE
      checks a recording made earlier
  validate_responses.py --spec api/openapi.yaml --self-test
      checks that the checker accepts described responses and rejects each kind of deviation

Needs PyYAML and jsonschema (Debian: python3-yaml, python3-jsonschema; 4.10 or later).
"""

import argparse
import collections
import json
import os
import re
import subprocess
import sys
import tempfile

import jsonschema
import yaml

SPEC_URI = "urn:portal-auth:openapi"
METHODS = ("get", "put", "post", "delete", "options", "head", "patch", "trace")
RECORD_VARIABLE = "PORTAL_AUTH_RECORD_RESPONSES"


def pointer_escape(token):
    return str(token).replace("~", "~0").replace("/", "~1")


def resolve_pointer(document, pointer):
    node = document
    for token in pointer.lstrip("/").split("/") if pointer else []:
        token = token.replace("~1", "/").replace("~0", "~")
        node = node[int(token)] if isinstance(node, list) else node[token]
    return node


class Spec:
    """The OpenAPI document, its path templates, and JSON Schema validators for it."""

    def __init__(self, document):
        self.doc = document
        self.paths = []  # (segments, template)
        for template in document.get("paths", {}):
            self.paths.append((template.strip("/").split("/"), template))
        self.unrouted = document.get("x-portal-auth-unrouted", {})
        self._validators = {}
        self._make_validator = self._validator_factory()

    def _validator_factory(self):
        cls = jsonschema.Draft202012Validator
        try:  # jsonschema >= 4.18
            import referencing
            import referencing.jsonschema

            resource = referencing.Resource.from_contents(
                self.doc, default_specification=referencing.jsonschema.DRAFT202012)
            registry = referencing.Registry().with_resource(SPEC_URI, resource)
            return lambda schema: cls(schema, registry=registry)
        except ImportError:  # Debian 12: jsonschema 4.10
            def make(schema):
                resolver = jsonschema.RefResolver(
                    base_uri=SPEC_URI, referrer=self.doc, store={SPEC_URI: self.doc})
                return cls(schema, resolver=resolver)
            return make

    def validator(self, pointer):
        """A validator for the schema at `pointer` in the document, its $refs resolved there."""
        if pointer not in self._validators:
            self._validators[pointer] = self._make_validator({"$ref": SPEC_URI + "#" + pointer})
        return self._validators[pointer]

    def deref(self, node, pointer):
        """Follows $ref (of responses and headers) to the object and its pointer."""
        seen = set()
        while isinstance(node, dict) and "$ref" in node:
            ref = node["$ref"]
            if not ref.startswith("#/") or ref in seen:
                raise ValueError(f"unsupported or circular $ref {ref} at {pointer}")
            seen.add(ref)
            pointer = ref[1:]
            node = resolve_pointer(self.doc, pointer)
        return node, pointer

    def match_path(self, path):
        """(template, path item) candidates of the request path, most literal segments first."""
        if not path.startswith("/"):
            return []
        segments = path[1:].split("/")
        found = []
        for template_segments, template in self.paths:
            if len(template_segments) != len(segments):
                continue
            literal = 0
            for want, have in zip(template_segments, segments):
                if want.startswith("{") and want.endswith("}"):
                    if not have:
                        break
                elif want == have:
                    literal += 1
                else:
                    break
            else:
                found.append((literal, template))
        found.sort(key=lambda item: -item[0])
        return [template for _, template in found]

    def locate(self, method, path):
        """Where the responses of this request are described: (label, {status key:
        (response object, its pointer)})."""
        method = method.lower()
        candidates = self.match_path(path)

        def described(node, pointer):
            return {key: (value, f"{pointer}/{pointer_escape(key)}")
                    for key, value in node.items()}

        for template in candidates:
            item = self.doc["paths"][template]
            if method in item:
                label = item[method].get("operationId", f"{method} {template}")
                return label, described(item[method].get("responses", {}),
                                        f"/paths/{pointer_escape(template)}/{method}/responses")
        which = "unknownMethod" if candidates else "unknownPath"
        responses = described(self.unrouted.get(which, {}), "/x-portal-auth-unrouted/" + which)
        if method == "options":
            responses.update(described(self.unrouted.get("preflight", {}),
                                       "/x-portal-auth-unrouted/preflight"))
        return f"({which})", responses


def media_type(content_type):
    return content_type.split(";", 1)[0].strip().lower()


def is_json_media(name):
    return name == "application/json" or name.endswith("+json")


def header_value(schema, text):
    """The header's text as the type its schema names (integer, number, boolean, string)."""
    kind = schema.get("type") if isinstance(schema, dict) else None
    if kind == "integer":
        if not re.fullmatch(r"-?[0-9]+", text.strip()):
            raise ValueError(f"{text!r} is not an integer")
        return int(text.strip())
    if kind == "number":
        return float(text)
    if kind == "boolean":
        if text not in ("true", "false"):
            raise ValueError(f"{text!r} is not a boolean")
        return text == "true"
    return text


def schema_errors(spec, pointer, instance):
    errors = []
    found = spec.validator(pointer).iter_errors(instance)
    for error in sorted(found, key=lambda e: [str(p) for p in e.path]):
        where = "/".join(str(p) for p in error.absolute_path) or "(root)"
        errors.append(f"{where}: {error.message}")
    return errors


def check(spec, record):
    """The operation label and the list of problems of one recorded response."""
    method = record["method"].upper()
    target = record["target"]
    path = target.split("?", 1)[0].split("#", 1)[0]
    status = str(record["status"])
    headers = {name.lower(): value for name, value in record.get("headers", {}).items()}
    body = record.get("body", "")
    content_type = record.get("contentType") or headers.get("content-type", "")

    label, responses = spec.locate(method, path)
    key = next((k for k in (status, status[0] + "XX", status[0] + "xx", "default")
                if k in responses), None)
    if key is None:
        declared = ", ".join(sorted(str(k) for k in responses)) or "none"
        return label, [f"status {status} is not described (described: {declared})"]
    response, response_pointer = spec.deref(*responses[key])
    problems = []

    for name, header in response.get("headers", {}).items():
        if name.lower() == "content-type":
            continue
        header, header_pointer = spec.deref(
            header, f"{response_pointer}/headers/{pointer_escape(name)}")
        value = headers.get(name.lower())
        if value is None:
            if header.get("required"):
                problems.append(f"header {name} is required but missing")
            continue
        if "schema" not in header:
            continue
        try:
            typed = header_value(header["schema"], value)
        except ValueError as error:
            problems.append(f"header {name}: {error}")
            continue
        for message in schema_errors(spec, header_pointer + "/schema", typed):
            problems.append(f"header {name}: {message.split(': ', 1)[1]}")

    content = response.get("content")
    if not content:
        if body:
            problems.append(f"a body of {len(body)} bytes where the response has no content")
        if content_type:
            problems.append(f"Content-Type {content_type!r} where the response has no content")
        return label, problems

    have = media_type(content_type)
    declared = None
    for name in content:
        wanted = name.lower()
        if wanted == have or (wanted.endswith("/*") and have.startswith(wanted[:-1])) \
                or wanted == "*/*":
            declared = name
            break
    if declared is None:
        problems.append(f"Content-Type {content_type!r} is not one of: {', '.join(content)}")
        return label, problems
    if method == "HEAD":
        if body:
            problems.append("a HEAD response with a body")
        return label, problems
    schema_pointer = f"{response_pointer}/content/{pointer_escape(declared)}/schema"
    if "schema" not in content[declared]:
        return label, problems
    if not is_json_media(have):
        problems.append(f"cannot check a body of media type {have}")
        return label, problems
    try:
        instance = json.loads(body)
    except ValueError as error:
        problems.append(f"the body is not JSON ({error}): {body[:200]!r}")
        return label, problems
    problems.extend(f"body {message}" for message in schema_errors(spec, schema_pointer, instance))
    return label, problems


def operation_ids(spec):
    """(operationId, method) of every operation."""
    for template, item in spec.doc.get("paths", {}).items():
        for method in METHODS:
            if method in item:
                yield item[method].get("operationId", f"{method} {template}"), method


def validate_file(spec, path):
    """Checks every line of a recording; prints a report; returns the number of failures."""
    per_label = collections.Counter()
    failures = []
    total = 0
    with open(path, encoding="utf-8", errors="surrogateescape") as lines:
        for number, line in enumerate(lines, 1):
            if not line.strip():
                continue
            total += 1
            try:
                record = json.loads(line)
            except ValueError as error:
                failures.append((f"line {number}", "?", [f"not a JSON line: {error}"]))
                continue
            label, problems = check(spec, record)
            per_label[label] += 1
            if problems:
                what = f"{record['method']} {record['target']} -> {record['status']}"
                failures.append((what, label, problems))

    print(f"{total} responses checked against the spec, {len(failures)} not as described")
    for label, count in sorted(per_label.items()):
        print(f"  {count:5}  {label}")
    unseen = [(op, method) for op, method in operation_ids(spec) if op not in per_label]
    if unseen:
        named = sorted(op for op, method in unseen if method != "options")
        preflights = len(unseen) - len(named)
        print(f"operations no response reached: {', '.join(named) or 'none'}"
              f" (and {preflights} CORS preflights)")
    # The same deviation is usually seen many times: each distinct one is listed once.
    distinct = collections.OrderedDict()
    for what, label, problems in failures:
        for problem in problems:
            distinct.setdefault((label, problem), []).append(what)
    for (label, problem), whats in distinct.items():
        more = f" (and {len(whats) - 1} more)" if len(whats) > 1 else ""
        print(f"FAIL {label}: {problem}\n     e.g. {whats[0]}{more}")
    if total == 0:
        print(f"FAIL no response was recorded: is {RECORD_VARIABLE} honoured by the test client?")
        return 1
    return len(failures)


def run_and_validate(spec, command):
    with tempfile.TemporaryDirectory(prefix="portal-auth-api-") as directory:
        recording = os.path.join(directory, "responses.jsonl")
        env = dict(os.environ, **{RECORD_VARIABLE: recording})
        print("running:", " ".join(command), flush=True)
        finished = subprocess.run(command, env=env, stdout=subprocess.PIPE,
                                  stderr=subprocess.STDOUT, text=True, errors="replace")
        if finished.returncode != 0:
            print(finished.stdout[-8000:])
            print(f"FAIL the tests exited with {finished.returncode}; "
                  "what they recorded is checked anyway")
        if not os.path.exists(recording):
            open(recording, "w").close()
        failures = validate_file(spec, recording)
        return 1 if failures or finished.returncode != 0 else 0


# --- self-test --------------------------------------------------------------------------------

COMMON = {
    "cache-control": "no-store",
    "strict-transport-security": "max-age=63072000",
    "x-content-type-options": "nosniff",
    "x-request-id": "7f3c2a",
}


def problem(status, title, type_, detail="detail"):
    return json.dumps({"type": type_, "title": title, "status": status, "detail": detail})


def response(method, target, status, body="", content_type="", **extra):
    headers = dict(COMMON)
    headers.update({k.replace("_", "-"): v for k, v in extra.items() if v is not None})
    for name in [k.replace("_", "-") for k, v in extra.items() if v is None]:
        headers.pop(name, None)
    if content_type:
        headers["content-type"] = content_type
    return {"method": method, "target": target, "status": status, "contentType": content_type,
            "body": body, "headers": headers}


def self_test(spec):
    """The checker's own test: described responses pass, each deviation is caught."""
    json_type, problem_type = "application/json", "application/problem+json"
    impersonator = {"customerId": 100, "profileId": 10, "operator": False,
                    "impersonationId": "3kT9pQ2vX8mN1bL7cR4wYg", "reason": None,
                    "startedAt": "2026-11-25T17:21:43Z", "expiresAt": "2026-11-25T17:51:43Z"}
    info = {"customerId": 102, "profileId": 12, "expiresAt": "2026-11-25T17:51:43Z",
            "impersonator": impersonator}
    row = {"Id": 10, "CustomerId": 100, "Name": "Alice Archer", "Email": "alice@acme.test",
           "TeamId": 1, "TeamName": "Acme Corp", "Role": "Owner", "IsCurrent": True,
           "IsOwn": True, "CanImpersonate": False}
    unauthorized = 'Bearer realm="portal-auth"'
    good = [
        response("GET", "/healthz", 200, '{"status":"ok"}', json_type),
        response("GET", "/api/public/auth/session", 200, json.dumps(info), json_type),
        response("GET", "/api/public/coworkers/profiles", 200,
                 json.dumps({"CurrentProfileId": 10, "Profiles": [row]}), json_type),
        response("POST", "/api/public/auth/logout", 204),
        response("HEAD", "/livez", 200, "", json_type),
        response("POST", "/api/public/auth/login", 401,
                 problem(401, "Unauthorized", "urn:portal-auth:problem:invalid-credentials"),
                 problem_type, www_authenticate=unauthorized),
        response("POST", "/api/public/auth/login", 429,
                 problem(429, "Too Many Requests", "urn:portal-auth:problem:rate-limited"),
                 problem_type, retry_after="300"),
        response("GET", "/api/public/coworkers/abc/impersonate?reason=x", 400,
                 problem(400, "Bad Request", "urn:portal-auth:problem:invalid-request"),
                 problem_type),
        response("GET", "/api/nope", 404,
                 problem(404, "Not Found", "about:blank", "no such endpoint"), problem_type),
        response("GET", "/api/public/coworkers/", 404,
                 problem(404, "Not Found", "about:blank", "no such endpoint"), problem_type),
        response("GET", "/api/public/auth/login", 405,
                 problem(405, "Method Not Allowed", "about:blank"), problem_type, allow="POST"),
        response("OPTIONS", "/api/sys/audit", 204, access_control_allow_origin="https://a.test",
                 access_control_max_age="600", vary="Origin"),
        response("OPTIONS", "/api/nope", 204, access_control_allow_origin="https://a.test"),
        response("GET", "/readyz", 503,
                 problem(503, "Service Unavailable", "urn:portal-auth:problem:not-ready"),
                 problem_type, retry_after="1"),
    ]
    bad = {
        "an undescribed status": response("GET", "/healthz", 418, '{"status":"ok"}', json_type),
        "a 200 for an unknown path": response("GET", "/api/nope", 200, "{}", json_type),
        "a 404 for a method the path lacks":
            response("GET", "/api/public/auth/login", 404,
                     problem(404, "Not Found", "about:blank"), problem_type),
        "an undeclared content type":
            response("GET", "/healthz", 200, '{"status":"ok"}', "text/plain"),
        "no Content-Type for a JSON body": response("GET", "/healthz", 200, '{"status":"ok"}'),
        "a body that is not JSON": response("GET", "/healthz", 200, "ok", json_type),
        "a wrong constant in the body":
            response("GET", "/healthz", 200, '{"status":"fine"}', json_type),
        "an undescribed member":
            response("GET", "/api/public/auth/session", 200,
                     json.dumps(dict(info, extra=1)), json_type),
        "a missing member":
            response("GET", "/api/public/auth/session", 200,
                     json.dumps({k: v for k, v in info.items() if k != "impersonator"}),
                     json_type),
        "an impersonator of the old shape":
            response("GET", "/api/public/auth/session", 200,
                     json.dumps(dict(info, impersonator={"customerId": 100, "profileId": 10,
                                                         "operator": False})), json_type),
        "a camelCase listing":
            response("GET", "/api/public/coworkers/profiles", 200,
                     json.dumps({"currentProfileId": 10, "profiles": []}), json_type),
        "a string where an integer id belongs":
            response("GET", "/api/public/coworkers/profiles", 200,
                     json.dumps({"CurrentProfileId": "10", "Profiles": [row]}), json_type),
        "a timestamp that is not RFC 3339":
            response("GET", "/api/public/auth/session", 200,
                     json.dumps(dict(info, expiresAt="25/11/2026 17:51")), json_type),
        "a missing X-Request-Id":
            response("GET", "/healthz", 200, '{"status":"ok"}', json_type, x_request_id=None),
        "a wrong Cache-Control":
            response("GET", "/healthz", 200, '{"status":"ok"}', json_type,
                     cache_control="public"),
        "a 401 without WWW-Authenticate":
            response("POST", "/api/public/auth/login", 401,
                     problem(401, "Unauthorized", "urn:portal-auth:problem:invalid-credentials"),
                     problem_type),
        "a problem type the response does not list":
            response("POST", "/api/public/auth/login", 401,
                     problem(401, "Unauthorized", "urn:portal-auth:problem:unauthenticated"),
                     problem_type, www_authenticate=unauthorized),
        "an unknown problem type":
            response("GET", "/api/nope", 404,
                     problem(404, "Not Found", "urn:portal-auth:problem:nope"), problem_type),
        "a problem whose status disagrees":
            response("GET", "/api/nope", 404, problem(400, "Not Found", "about:blank"),
                     problem_type),
        "a problem with an extra member":
            response("GET", "/api/nope", 404,
                     json.dumps({"type": "about:blank", "title": "Not Found", "status": 404,
                                 "detail": "x", "instance": "/api/nope"}), problem_type),
        "a problem as application/json":
            response("GET", "/api/nope", 404, problem(404, "Not Found", "about:blank"),
                     json_type),
        "a 429 whose Retry-After is not a number":
            response("POST", "/api/public/auth/login", 429,
                     problem(429, "Too Many Requests", "urn:portal-auth:problem:rate-limited"),
                     problem_type, retry_after="soon"),
        "a 429 without Retry-After":
            response("POST", "/api/public/auth/login", 429,
                     problem(429, "Too Many Requests", "urn:portal-auth:problem:rate-limited"),
                     problem_type),
        "a 204 with a body": response("POST", "/api/public/auth/logout", 204, "{}", json_type),
        "a 204 to a GET of an unknown path": response("GET", "/api/nope", 204),
        "a 405 without Allow":
            response("GET", "/api/public/auth/login", 405,
                     problem(405, "Method Not Allowed", "about:blank"), problem_type),
    }
    failed = 0
    for record in good:
        label, problems = check(spec, record)
        if problems:
            failed += 1
            print(f"FAIL a described response was rejected: {record['method']} "
                  f"{record['target']} -> {record['status']} ({label}): {problems}")
    for what, record in bad.items():
        label, problems = check(spec, record)
        if not problems:
            failed += 1
            print(f"FAIL not caught: {what} ({record['method']} {record['target']} -> "
                  f"{record['status']}, {label})")
        else:
            print(f"ok   caught {what}: {problems[0]}")
    # A recording with a wrong response fails as a whole, and an empty one too.
    with tempfile.TemporaryDirectory(prefix="portal-auth-api-") as directory:
        recording = os.path.join(directory, "responses.jsonl")
        with open(recording, "w", encoding="utf-8") as out:
            for record in good + [bad["an undescribed member"]]:
                out.write(json.dumps(record) + "\n")
        print("-- a recording with one wrong response; one failure expected:")
        if validate_file(spec, recording) != 1:
            failed += 1
            print("FAIL a recording with one wrong response did not count exactly one failure")
        open(recording, "w").close()
        print("-- an empty recording; a failure expected:")
        if validate_file(spec, recording) == 0:
            failed += 1
            print("FAIL an empty recording passed")
    print(f"self-test: {len(good)} described responses, {len(bad)} deviations, "
          f"{failed} failed")
    return 1 if failed else 0


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--spec", required=True, help="the OpenAPI document (YAML)")
    mode = parser.add_mutually_exclusive_group(required=True)
    mode.add_argument("--run", nargs=argparse.REMAINDER, metavar="COMMAND",
                      help="run COMMAND with recording on, then check the recording")
    mode.add_argument("--responses", metavar="FILE", help="check a recording made earlier")
    mode.add_argument("--self-test", action="store_true", help="test the checker itself")
    args = parser.parse_args()
    with open(args.spec, encoding="utf-8") as text:
        spec = Spec(yaml.safe_load(text))
    if args.self_test:
        return self_test(spec)
    if args.responses:
        return 1 if validate_file(spec, args.responses) else 0
    if not args.run:
        parser.error("--run needs a command")
    return run_and_validate(spec, args.run)


if __name__ == "__main__":
    sys.exit(main())
