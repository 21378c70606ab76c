"""`python main.py state check|show NAME|repair NAME`: tagship's own records in the state bucket, for people: find
each record that does not read as its type, print one as stored, mend one (only the version that was read)."""
from __future__ import annotations

import json
import sys
from typing import Any

SMALL_RECORDS = ("pointer.json", "lease.json", "queue.json", "watchdog.json", "gates.json")


def _corrupt_in(store: Any, name: str, data: Any) -> str | None:
    """What is wrong with record `name`, or None when it reads as its type."""
    from shared.core.watchdog import WatchdogState
    from shared.errors import CorruptRecord, InputError
    from shared.record_shape import LEASE_FIELDS, QUEUE_FIELDS, check_shape
    from shared.release import Release
    from shared.state import Pointer

    try:
        if name == "pointer.json":
            Pointer.from_dict(data)
        elif name == "lease.json":
            check_shape(name, data, LEASE_FIELDS)
        elif name == "queue.json":
            check_shape(name, data, QUEUE_FIELDS)
        elif name == "watchdog.json":
            WatchdogState.from_dict(data)
        elif name == "gates.json":
            from shared.core.gates import GateState

            GateState.from_dict(data)
        else:
            release = Release.from_dict(data, name)
            if f"releases/{release.tag}.json" != name:
                return f"it holds the release {release.tag[:80]!r}"
    except CorruptRecord as error:
        return error.detail
    except (InputError, ValueError) as error:
        return str(error)
    return None


def state(config: Any, args: Any) -> int:
    import getpass
    import time

    from cli import _store
    from shared.core.repair import repaired

    store = _store(config)
    records = store.records
    if args.verb == "check":
        names = [*SMALL_RECORDS, *records.list("releases/")]
        bad = 0
        for name in names:
            record = records.read(name)
            problem = _corrupt_in(store, name, record.data) if record else None
            if problem:
                bad += 1
                print(f"corrupt  {name}: {problem}")
        print(f"{len(names)} records checked, {bad} corrupt" + (": mend each with `python main.py state repair NAME`" if bad else ""))
        return 1 if bad else 0
    record = records.read(args.name)
    if record is None:
        print(f"tagship: {args.name}: no such record in gs://{config.state.bucket}", file=sys.stderr)
        return 1
    if args.verb == "show":
        from shared.record_shape import Unreadable

        shown = record.data
        print(f"(not JSON) {shown.excerpt}" if isinstance(shown, Unreadable) else json.dumps(shown, indent=2, sort_keys=True))
        problem = _corrupt_in(store, args.name, record.data)
        print(f"# generation {record.generation}; " + (f"corrupt: {problem}" if problem else "reads as its type"))
        return 0
    problem = _corrupt_in(store, args.name, record.data)
    if problem is None:
        print(f"tagship: {args.name} is not corrupt: nothing mended", file=sys.stderr)
        return 1
    who = args.by or getpass.getuser()
    mended = repaired(args.name, record.data, store.releases(), time.time(), who)
    records.swap(args.name, mended, record.generation)  # only the version that was read: never over a newer one
    from shared.log import logger

    tag = args.name[len("releases/"):-len(".json")] if args.name.startswith("releases/") else None
    logger.bind(function="cli", tag=tag).warning("corrupt record mended", record=args.name, was=problem, by=who)
    print(f"mended {args.name} (was: {problem})")
    return 0
