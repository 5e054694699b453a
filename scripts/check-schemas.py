#!/usr/bin/env python3
"""Validates manifests and environment files against credops's JSON Schemas.

Usage: check-schemas.py SCHEMA_DIR FILE...   (environment files are those under an
`environments/` folder, provider profiles those under `providers/`, policies those under `policies/`; every other file is a manifest, checked against the schema of the
provider it names: manifest.PROVIDER.schema.json, or manifest.schema.json for Apinizer). YAML is read the way credops reads
it: timestamps stay strings (YAML 1.1 would turn them into dates). Exits 1 on any problem.
"""
import json
import os
import sys

import jsonschema
import yaml


class Loader(yaml.SafeLoader):
    pass


# Keep ISO timestamps as text, as credops does.
Loader.yaml_implicit_resolvers = {
    key: [(tag, regexp) for tag, regexp in resolvers if tag != "tag:yaml.org,2002:timestamp"]
    for key, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}


def main() -> int:
    schema_dir, files = sys.argv[1], sys.argv[2:]
    schemas = {}
    for name in sorted(os.listdir(schema_dir)):
        if not name.endswith(".schema.json"):
            continue
        with open(os.path.join(schema_dir, name)) as f:
            schema = json.load(f)
        jsonschema.Draft7Validator.check_schema(schema)
        schemas[name[: -len(".schema.json")]] = jsonschema.Draft7Validator(schema, format_checker=jsonschema.FormatChecker())
    failures = 0
    for path in files:
        parts = path.split(os.sep)
        kind = ("environment" if "environments" in parts else "profile" if "providers" in parts
                else "policy" if "policies" in parts else "manifest")
        with open(path) as f:
            documents = [d for d in yaml.load_all(f, Loader=Loader) if d is not None]
        errors = []
        for document in documents:
            key = kind
            provider = document.get("provider") if isinstance(document, dict) else None
            if kind == "manifest" and isinstance(provider, str) and provider != "apinizer":
                key = f"manifest.{provider}"
            if key not in schemas:
                print(f"{path}: no schema {key}.schema.json in {schema_dir}")
                failures += 1
                continue
            errors += list(schemas[key].iter_errors(document))
        for error in errors:
            where = "/".join(str(p) for p in error.absolute_path) or "(top)"
            print(f"{path}: {where}: {error.message}")
        print(f"{'FAIL' if errors else 'ok'} {kind} {path}")
        failures += len(errors)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
