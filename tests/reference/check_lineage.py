#!/usr/bin/env python3
"""Check the OpenLineage run events that `exdep run` wrote.

Usage:
    check_lineage.py EVENTS.jsonl [--expect START,COMPLETE]

EVENTS.jsonl holds one JSON RunEvent per line. The check passes when
  - every event is a valid OpenLineage 2.x RunEvent (spec 2-0-2 schema),
  - every facet has `_producer` and `_schemaURL`; a standard facet (a `_schemaURL` under
    https://openlineage.io/spec/facets/) is valid against its own schema, sits where that facet
    belongs and under its standard key; a custom facet's key is `{prefix}_{name}` and it
    is valid against its schema in the repository's docs/lineage/, which its `_schemaURL` names,
  - all events share one runId and one job (namespace, name), with eventTimes not going back,
  - the eventTypes are exactly --expect, in order; without --expect, one START first and one
    COMPLETE, FAIL or ABORT last.

Where the schemas come from: no package ships OpenLineage's JSON schema files and the spec site
is out of reach, so the RunEvent schema below is transcribed from spec 2-0-2 OpenLineage.json,
and each standard facet's schema is derived from the openlineage-python model generated from
that facet's spec file (the model's `_get_schema()` is the facet's `_schemaURL`). A facet version
the installed client does not know is reported, not skipped.

Exit status: 0 when every check passes (a summary is printed), 1 when any fails (each problem
is printed), 2 when the check itself cannot run.
Needs Python 3.10+ and the `openlineage-python` and `jsonschema` packages.
"""

import argparse
import datetime
import importlib
import importlib.metadata
import json
import os
import pkgutil
import re
import sys
import types
import typing
from enum import Enum
from urllib.parse import urlsplit

try:
    import attr
    import jsonschema
    import openlineage.client.generated as generated_models
    from openlineage.client.generated.base import (
        BaseFacet,
        DatasetFacet,
        InputDatasetFacet,
        JobFacet,
        OutputDatasetFacet,
        RunFacet,
    )
except ImportError as error:
    print(f"check_lineage: cannot run: {error} (pip install openlineage-python jsonschema)", file=sys.stderr)
    sys.exit(2)

RUN_EVENT_SCHEMA_URL = re.compile(r"https://openlineage\.io/spec/2-\d+-\d+/OpenLineage\.json#/\$defs/RunEvent")
STANDARD_FACETS_PREFIX = "https://openlineage.io/spec/facets/"
CUSTOM_FACET_KEY = re.compile(r"[a-z][A-Za-z0-9]*_[a-z][A-Za-z0-9]*")
TERMINAL_EVENT_TYPES = {"COMPLETE", "FAIL", "ABORT"}
DOCS_LINEAGE = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "docs", "lineage")

# Keys come from each facet spec file's top-level `properties`; the Python models do not carry
# them. Only facets exdep may emit are listed: others are checked without their key.
STANDARD_FACET_KEYS = {
    "SchemaDatasetFacet": "schema",
    "DatasourceDatasetFacet": "dataSource",
    "OutputStatisticsOutputDatasetFacet": "outputStatistics",
    "InputStatisticsInputDatasetFacet": "inputStatistics",
    "DataQualityMetricsInputDatasetFacet": "dataQualityMetrics",
    "ErrorMessageRunFacet": "errorMessage",
    "ProcessingEngineRunFacet": "processing_engine",
    "NominalTimeRunFacet": "nominalTime",
    "ParentRunFacet": "parent",
    "JobTypeJobFacet": "jobType",
}

STRING = {"type": "string"}
URI = {"type": "string", "format": "uri"}
FACET = {
    "type": "object",
    "required": ["_producer", "_schemaURL"],
    "properties": {"_producer": URI, "_schemaURL": URI, "_deleted": {"type": "boolean"}},
}
FACETS = {"type": "object", "additionalProperties": FACET}
DATASET_PROPERTIES = {"namespace": STRING, "name": STRING, "facets": FACETS}

RUN_EVENT_SCHEMA = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "type": "object",
    "required": ["eventTime", "producer", "schemaURL", "run", "job"],
    "properties": {
        "eventType": {"enum": ["START", "RUNNING", "COMPLETE", "ABORT", "FAIL", "OTHER"]},
        "eventTime": {"type": "string", "format": "date-time"},
        "producer": URI,
        "schemaURL": URI,
        "run": {
            "type": "object",
            "required": ["runId"],
            "properties": {"runId": {"type": "string", "format": "uuid"}, "facets": FACETS},
        },
        "job": {
            "type": "object",
            "required": ["namespace", "name"],
            "properties": {"namespace": STRING, "name": STRING, "facets": FACETS},
        },
        "inputs": {
            "type": "array",
            "items": {
                "type": "object",
                "required": ["namespace", "name"],
                "properties": DATASET_PROPERTIES | {"inputFacets": FACETS},
            },
        },
        "outputs": {
            "type": "array",
            "items": {
                "type": "object",
                "required": ["namespace", "name"],
                "properties": DATASET_PROPERTIES | {"outputFacets": FACETS},
            },
        },
    },
}

# jsonschema checks "date-time" and "uri" only when optional packages happen to be installed;
# checking them here makes the result the same on every machine.
FORMATS = jsonschema.FormatChecker(["uuid"])
RFC3339 = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?(Z|[+-]\d\d:\d\d)", re.IGNORECASE)


@FORMATS.checks("date-time", raises=ValueError)
def is_rfc3339(value):
    if not isinstance(value, str):
        return True
    if not RFC3339.fullmatch(value):
        return False
    parse_time(value)  # raises ValueError on a date that does not exist, such as 2026-02-30
    return True


@FORMATS.checks("uri")
def is_uri(value):
    return not isinstance(value, str) or (urlsplit(value).scheme != "" and not re.search(r"\s", value))


def parse_time(value):
    return datetime.datetime.fromisoformat(value.upper().replace("Z", "+00:00"))


RUN_EVENT_VALIDATOR = jsonschema.Draft202012Validator(RUN_EVENT_SCHEMA, format_checker=FORMATS)


def standard_facet_models():
    """openlineage-python's facet models, by the `_schemaURL` they emit."""
    models = {}
    for module_info in pkgutil.iter_modules(generated_models.__path__):
        module = importlib.import_module(f"{generated_models.__name__}.{module_info.name}")
        for model in vars(module).values():
            if (
                isinstance(model, type)
                and model.__module__ == module.__name__
                and issubclass(model, BaseFacet)
                and model._get_schema().startswith(STANDARD_FACETS_PREFIX)
            ):
                models[model._get_schema()] = model
    return models


def facet_schema(model):
    """The JSON schema of a facet's own fields, read off its attrs model.

    A field without a default is required; `X | None` means the field may be left out, not that
    it may be null (the client drops None fields). The `_producer`-style base fields are left to
    the RunEvent schema."""
    definitions = {}

    def schema_of(annotation):
        origin, arguments = typing.get_origin(annotation), typing.get_args(annotation)
        if origin in (typing.Union, types.UnionType):
            choices = [schema_of(argument) for argument in arguments if argument is not type(None)]
            return choices[0] if len(choices) == 1 else {"anyOf": choices}
        if origin is list:
            return {"type": "array", "items": schema_of(arguments[0])}
        if origin is dict:
            return {"type": "object", "additionalProperties": schema_of(arguments[1])}
        if annotation in (str, int, float, bool):
            return {"type": {str: "string", int: "integer", float: "number", bool: "boolean"}[annotation]}
        if isinstance(annotation, type) and issubclass(annotation, Enum):
            return {"enum": [member.value for member in annotation]}
        if attr.has(annotation):
            name = annotation.__name__
            if name not in definitions:  # guards self-nesting models such as schema fields
                definitions[name] = {}
                definitions[name].update(object_schema(annotation))
            return {"$ref": f"#/$defs/{name}"}
        return {}

    def object_schema(model):
        annotations = typing.get_type_hints(model)
        fields = [field for field in attr.fields(model) if not field.name.startswith("_")]
        return {
            "type": "object",
            "properties": {field.name: schema_of(annotations[field.name]) for field in fields},
            "required": [field.name for field in fields if field.default is attr.NOTHING],
        }

    root = schema_of(model)
    return {"$defs": definitions} | root


def facets_by_place(event):
    """Yields (JSON path, facet key, facet, base model of facets allowed there)."""
    yield from facet_group("$.run.facets", event.get("run", {}).get("facets"), RunFacet)
    yield from facet_group("$.job.facets", event.get("job", {}).get("facets"), JobFacet)
    for side, own_facets, own_model in (
        ("inputs", "inputFacets", InputDatasetFacet),
        ("outputs", "outputFacets", OutputDatasetFacet),
    ):
        for index, dataset in enumerate(event.get(side) or []):
            yield from facet_group(f"$.{side}[{index}].facets", dataset.get("facets"), DatasetFacet)
            yield from facet_group(f"$.{side}[{index}].{own_facets}", dataset.get(own_facets), own_model)


def facet_group(path, facets, base_model):
    for key, facet in (facets or {}).items():
        yield f"{path}.{key}", key, facet, base_model


def event_problems(event, models, facet_validators, counts):
    problems = [f"{error.json_path}: {error.message}" for error in RUN_EVENT_VALIDATOR.iter_errors(event)]
    if problems:
        return problems  # the facet checks below rely on the event's shape
    if not RUN_EVENT_SCHEMA_URL.fullmatch(event["schemaURL"]):
        problems.append(f"$.schemaURL: {event['schemaURL']!r} is not an OpenLineage 2.x RunEvent schema URL")
    for path, key, facet, base_model in facets_by_place(event):
        schema_url = facet["_schemaURL"]
        if not schema_url.startswith(STANDARD_FACETS_PREFIX):
            counts["custom"] += 1
            if not CUSTOM_FACET_KEY.fullmatch(key):
                problems.append(f"{path}: a custom facet's key must be {{prefix}}_{{name}}, e.g. exdep_{key}")
            problems += [f"{path}: {problem}" for problem in own_facet_problems(schema_url, facet)]
            continue
        counts["standard"] += 1
        model = models.get(schema_url)
        if model is None:
            problems.append(f"{path}: {schema_url} is not a facet schema openlineage-python knows")
            continue
        if not issubclass(model, base_model):
            problems.append(f"{path}: {model.__name__} does not belong among {base_model.__name__}s")
        standard_key = STANDARD_FACET_KEYS.get(model.__name__, key)
        if key != standard_key:
            problems.append(f"{path}: {model.__name__} goes under the key {standard_key!r}")
        if model not in facet_validators:
            facet_validators[model] = jsonschema.Draft202012Validator(facet_schema(model), format_checker=FORMATS)
        for error in facet_validators[model].iter_errors(facet):
            problems.append(f"{path}{error.json_path[1:]}: {error.message}")
    return problems


def own_facet_problems(schema_url, facet):
    """Checks one of exdep's own facets against its schema in the repository's docs/lineage/
    (its `_schemaURL` names the file and the definition); the OpenLineage base facet it
    extends is checked for `_producer` and `_schemaURL` above, so its reference is dropped."""
    match = re.fullmatch(r".*/docs/lineage/(\w+)\.json#/\$defs/(\w+)", schema_url)
    if match is None:
        return [f"{schema_url} is not a schema in exdep's docs/lineage/"]
    file = os.path.join(DOCS_LINEAGE, f"{match[1]}.json")
    try:
        with open(file, encoding="utf-8") as text:
            definition = json.load(text)["$defs"][match[2]]
    except (OSError, KeyError) as error:
        return [f"{schema_url}: no such schema in {DOCS_LINEAGE}: {error}"]
    own_part = [part for part in definition["allOf"] if "$ref" not in part]
    validator = jsonschema.Draft202012Validator({"allOf": own_part}, format_checker=FORMATS)
    return [f"{error.json_path}: {error.message}" for error in validator.iter_errors(facet)]


def run_problems(events, expected_types):
    """Checks that the (individually valid) events tell one run of one job, in order."""
    problems = []
    run_ids = {event["run"]["runId"] for event in events}
    jobs = {(event["job"]["namespace"], event["job"]["name"]) for event in events}
    if len(run_ids) > 1:
        problems.append(f"events of more than one run: {sorted(run_ids)}")
    if len(jobs) > 1:
        problems.append(f"events of more than one job: {sorted(jobs)}")
    times = [parse_time(event["eventTime"]) for event in events]
    if times != sorted(times):
        problems.append(f"eventTimes go back: {[event['eventTime'] for event in events]}")
    event_types = [event.get("eventType") for event in events]
    if None in event_types:
        problems.append(f"event {event_types.index(None) + 1} has no eventType")
    elif expected_types is not None:
        if event_types != expected_types:
            problems.append(f"eventTypes are {event_types}, expected {expected_types}")
    elif event_types[:1] != ["START"] or event_types[-1] not in TERMINAL_EVENT_TYPES or (
        sum(event_type in TERMINAL_EVENT_TYPES for event_type in event_types) != 1
    ):
        problems.append(f"eventTypes are {event_types}: expected one START first and one COMPLETE, FAIL or ABORT last")
    return problems


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("events", metavar="EVENTS.jsonl")
    parser.add_argument("--expect", type=lambda text: text.split(","), metavar="TYPE,TYPE,...")
    args = parser.parse_args()
    try:
        with open(args.events, encoding="utf-8") as lines:
            numbered_lines = [(number, line) for number, line in enumerate(lines, 1) if line.strip()]
    except OSError as error:
        print(f"check_lineage: cannot read events: {error}", file=sys.stderr)
        return 2

    models = standard_facet_models()
    facet_validators = {}
    counts = {"standard": 0, "custom": 0}
    events, problems = [], []
    for number, line in numbered_lines:
        try:
            event = json.loads(line)
        except json.JSONDecodeError as error:
            problems.append(f"line {number}: not JSON: {error}")
            continue
        line_problems = event_problems(event, models, facet_validators, counts)
        problems += [f"line {number}: {problem}" for problem in line_problems]
        if not line_problems:
            events.append(event)
    if not numbered_lines:
        problems.append("no events")
    elif not problems:
        problems += run_problems(events, args.expect)

    if problems:
        for problem in problems:
            print(f"check_lineage: {problem}", file=sys.stderr)
        print(f"check_lineage: {len(problems)} problem(s) in {args.events}", file=sys.stderr)
        return 1
    job = events[0]["job"]
    print(
        f"check_lineage: ok, {len(events)} events {','.join(event.get('eventType') for event in events)}"
        f" of run {events[0]['run']['runId']}, job {job['namespace']}/{job['name']};"
        f" {counts['standard']} standard and {counts['custom']} custom facets"
        f" (openlineage-python {importlib.metadata.version('openlineage-python')})"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
